"""Shared fixtures. An embedded Airflow home is set up before Airflow is first imported."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from airflow_mlops.demo.environment import REPO, airflow_env, migrate
from airflow_mlops.demo.object_store import SeaweedS3
from airflow_mlops.demo.warehouse import WarehouseSpec, write_sqlite

if TYPE_CHECKING:
    from collections.abc import Iterator

# Airflow reads its configuration when first imported: point it at a throw-away home now.
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="airflow-mlops-tests-"))
_SMALL_SPEC = WarehouseSpec(customers=2_000, transactions_per_day=0.6, seed=7)
# The DAGs Airflow sees: the project's examples plus the tests' fixture DAGs.
_DAGS = _SESSION_DIR / "dags"
_DAGS.mkdir()
for _dag_file in [*(REPO / "dags").glob("*.py"), *(REPO / "tests" / "dag_fixtures").glob("*.py")]:
    (_DAGS / _dag_file.name).symlink_to(_dag_file)
_ENV = airflow_env(
    _SESSION_DIR / "airflow_home",
    warehouse_db=_SESSION_DIR / "warehouse.db",
    store_root=_SESSION_DIR / "feature_store",
    registry_root=_SESSION_DIR / "model_registry",
    dags_folder=_DAGS,
)
os.environ.update(_ENV)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """The session's Airflow home, warehouse, store and registry go with the session."""
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)


POSTGRES_URI = os.environ.get(
    "AIRFLOW_MLOPS_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def small_warehouse() -> tuple[Path, WarehouseSpec]:
    """The small deterministic SQLite warehouse the ``warehouse`` connection points at."""
    path = _SESSION_DIR / "warehouse.db"
    if not path.exists():
        write_sqlite(str(path), _SMALL_SPEC)
    return path, _SMALL_SPEC


@pytest.fixture(scope="session")
def airflow_db() -> dict[str, str]:
    """A migrated SQLite metadata DB in the session's Airflow home; the Airflow env vars."""
    migrate(_ENV)
    return dict(_ENV)


@pytest.fixture
def store_root() -> Path:
    """The root of the feature store the ``feature_store_default`` connection points at."""
    return _SESSION_DIR / "feature_store"


@pytest.fixture
def registry_root() -> Path:
    """The root of the model registry ``model_registry_default`` points at."""
    return _SESSION_DIR / "model_registry"


_BUCKETS = itertools.count()


@pytest.fixture(scope="session")
def s3_server() -> Iterator[SeaweedS3]:
    """A real S3 server (SeaweedFS, :class:`~airflow_mlops.demo.object_store.SeaweedS3`)
    for the whole session, under the session directory (its log: ``s3/weed.log``), stopped
    at the end. ``s3_server.storage_options()`` for delta-rs, ``s3_server.filesystem()``
    for a pyarrow ``S3FileSystem``; take a bucket of your own with ``s3_bucket``. A server
    that does not start is an error (its log in the message), never a skip."""
    with SeaweedS3(_SESSION_DIR / "s3") as server:
        yield server


@pytest.fixture
def s3_bucket(s3_server: SeaweedS3, request: pytest.FixtureRequest) -> Iterator[str]:
    """The name of a new, empty bucket on ``s3_server`` for this test only (made from the
    test's name), deleted with its objects afterwards: write to ``f"s3://{s3_bucket}/..."``
    with ``s3_server.storage_options()``, or to ``f"{s3_bucket}/..."`` on
    ``s3_server.filesystem()``."""
    words = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())
    name = f"t{next(_BUCKETS)}-{words}"[:63].strip("-")
    s3_server.create_bucket(name)
    yield name
    s3_server.filesystem().delete_dir(name)


@pytest.fixture(scope="session")
def postgres_uri() -> str:
    """The real PostgreSQL the postgres-marked tests use (database ``test``)."""
    return POSTGRES_URI


@pytest.fixture(scope="session")
def dags_folder() -> Path:
    """The folder Airflow parses: the project's DAGs and the tests' fixture DAGs."""
    return _DAGS


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO
