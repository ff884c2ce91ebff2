"""One real multi-process Airflow for the whole package (PostgreSQL metadata DB,
CeleryExecutor on Redis, two workers), stopped by PID at the end, also on failure."""

from __future__ import annotations

import json
import subprocess
import time
from typing import TYPE_CHECKING, Any

import httpx
import psycopg
import pytest

from airflow_mlops.demo import stack
from airflow_mlops.models.registry import ModelRegistry
from airflow_mlops.store.feature_store import FeatureStore

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture(scope="package")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The stack; after the package's tests, no output of it may hold the warehouse
    password: task and component logs, feature store, registry, metadata DB."""
    workdir = tmp_path_factory.mktemp("stack")
    try:
        yield stack.start(workdir, customers=2_000)
        _assert_password_never_written(workdir)
    finally:
        stack.stop(workdir)


def _assert_password_never_written(workdir: Path) -> None:
    secret = stack.WAREHOUSE_PASSWORD.encode()
    # stack.json is the stack's own configuration (its env), as airflow.cfg would be
    files = [p for p in workdir.rglob("*") if p.is_file() and p.name != "stack.json"]
    leaks = [str(p) for p in files if secret in p.read_bytes()]
    dump = subprocess.run(
        ["pg_dump", "--data-only", f"{stack.PG}/{stack.METADATA_DB}"],
        capture_output=True,
        check=True,
    ).stdout
    if secret in dump:
        leaks.append(f"metadata database {stack.METADATA_DB}")
    task_logs = [p for p in files if "dag_id=" in str(p)]
    assert len(task_logs) > 50, f"only {len(task_logs)} task logs under {workdir}"
    assert b"xcom" in dump  # the dump holds the tables, XCom included
    assert leaks == [], leaks


@pytest.fixture(scope="package")
def base_url(running: dict[str, Any]) -> str:
    return f"http://127.0.0.1:{running['port']}"


@pytest.fixture(scope="package")
def admin_password(running: dict[str, Any]) -> str:
    with open(running["passwords"]) as handle:
        return str(json.load(handle)["admin"])


@pytest.fixture(scope="package")
def api(base_url: str, admin_password: str) -> Iterator[httpx.Client]:
    """A REST API v2 client holding a token from ``/auth/token``."""
    token = httpx.post(
        f"{base_url}/auth/token",
        json={"username": "admin", "password": admin_password},
        timeout=30,
    ).json()["access_token"]
    with httpx.Client(
        base_url=f"{base_url}/api/v2", headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        yield client


@pytest.fixture(scope="package")
def store(running: dict[str, Any]) -> FeatureStore:
    """The feature store the stack's ``feature_store_default`` connection points at."""
    extra = json.loads(running["env"]["AIRFLOW_CONN_FEATURE_STORE_DEFAULT"])["extra"]
    return FeatureStore(extra["root"])


@pytest.fixture(scope="package")
def registry(running: dict[str, Any]) -> ModelRegistry:
    extra = json.loads(running["env"]["AIRFLOW_CONN_MODEL_REGISTRY_DEFAULT"])["extra"]
    return ModelRegistry(extra["root"])


def customers_on(day: str) -> int:
    """What the PostgreSQL warehouse says a day's feature partition must hold."""
    with psycopg.connect(f"{stack.PG}/{stack.WAREHOUSE_DB}") as con:
        row = con.execute(
            "SELECT count(*) FROM customers WHERE signup_date <= %s", (day,)
        ).fetchone()
    assert row is not None
    return int(row[0])


def wait_for_dag(api: httpx.Client, dag_id: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if api.get(f"/dags/{dag_id}").status_code == 200:
            return
        time.sleep(2)
    raise AssertionError(f"{dag_id} was not parsed within {timeout} s")


def unpause(api: httpx.Client, dag_id: str) -> None:
    wait_for_dag(api, dag_id)
    response = api.patch(f"/dags/{dag_id}", json={"is_paused": False})
    assert response.is_success, response.text


def wait_for_run(api: httpx.Client, dag_id: str, run_id: str, timeout: float = 240) -> str:
    deadline = time.monotonic() + timeout
    state = "unknown"
    while time.monotonic() < deadline:
        state = api.get(f"/dags/{dag_id}/dagRuns/{run_id}").json()["state"]
        if state in ("success", "failed"):
            return str(state)
        time.sleep(2)
    raise AssertionError(f"{dag_id} run {run_id} still {state} after {timeout} s")


def trigger(api: httpx.Client, dag_id: str, partition: str) -> dict[str, Any]:
    """A manual run of ``dag_id`` for ``partition``, as the trigger form's date param sets."""
    response = api.post(
        f"/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": {"partition": partition}}
    )
    assert response.is_success, response.text
    return dict(response.json())
