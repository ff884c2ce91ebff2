"""Fixtures for calling operators' ``execute`` directly, outside Airflow's task runner.

Connections are injected through ``AIRFLOW_CONN_*`` environment variables; every test gets
its own feature-store root and its own tiny SQLite warehouse under ``tmp_path``.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from airflow.sdk.bases.operator import ExecutorSafeguard
from airflow.sdk.execution_time.context import MacrosAccessor

from airflow_mlops.demo.environment import connection_json
from airflow_mlops.models.registry import ModelRegistry
from airflow_mlops.store.feature_store import FeatureStore
from tests.operators.support import (
    CUSTOMERS,
    DAG_ID,
    LOGICAL_DATE,
    RUN_ID,
    TRANSACTIONS,
    WAREHOUSE_CONN_ID,
)

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Callable
    from pathlib import Path


@pytest.fixture(autouse=True)
def _allow_direct_execute(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let tests call ``execute`` directly, as Airflow's own unit tests do (test mode)."""
    monkeypatch.setattr(ExecutorSafeguard, "test_mode", True)


@pytest.fixture
def feature_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FeatureStore:
    """A fresh store that the ``feature_store_default`` connection points at."""
    root = tmp_path / "feature_store"
    monkeypatch.setenv(
        "AIRFLOW_CONN_FEATURE_STORE_DEFAULT",
        connection_json("feature_store", extra={"root": str(root), "keep_versions": 3}),
    )
    return FeatureStore(str(root), keep_versions=3)


@pytest.fixture
def model_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ModelRegistry:
    """A fresh registry that the ``model_registry_default`` connection points at."""
    root = tmp_path / "model_registry"
    monkeypatch.setenv(
        "AIRFLOW_CONN_MODEL_REGISTRY_DEFAULT",
        connection_json("model_registry", extra={"root": str(root)}),
    )
    return ModelRegistry(str(root))


@pytest.fixture(scope="session")
def credit_data() -> tuple[pa.Table, pa.Table]:
    """300 customers' features and their 0/1 ``defaulted`` labels (deterministic, both classes).

    Features: ``customer_id`` (int64 key), ``income``, ``debt`` (float64), ``age``,
    ``txn_count`` (int64), ``region`` (string).
    """
    rng = np.random.default_rng(7)
    rows = 300
    income = rng.normal(50_000, 15_000, rows).clip(8_000).round(2)
    debt = rng.gamma(2.0, 10_000, rows).round(2)
    age = rng.integers(21, 75, rows)
    region = rng.choice(["north", "south", "east", "west"], rows)
    logit = -1.0 + 2.5 * debt / income - 0.03 * (age - 45) + 0.8 * (region == "south")
    defaulted = (rng.random(rows) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    customer_id = pa.array(np.arange(1_000, 1_000 + rows), pa.int64())
    features = pa.table(
        {
            "customer_id": customer_id,
            "income": income,
            "debt": debt,
            "age": age,
            "txn_count": rng.poisson(4, rows),
            "region": pa.array(region.tolist(), pa.string()),
        }
    )
    return features, pa.table({"customer_id": customer_id, "defaulted": defaulted})


@pytest.fixture
def warehouse(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny SQLite warehouse behind the ``tiny_warehouse`` connection."""
    path = tmp_path / "warehouse.db"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE customers (customer_id INTEGER, name TEXT)")
        con.execute("CREATE TABLE transactions (customer_id INTEGER, day TEXT, amount REAL)")
        con.executemany("INSERT INTO customers VALUES (?, ?)", CUSTOMERS)
        con.executemany("INSERT INTO transactions VALUES (?, ?, ?)", TRANSACTIONS)
    con.close()
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{WAREHOUSE_CONN_ID.upper()}", connection_json("sqlite", host=str(path))
    )
    return path


class OutletEvent(SimpleNamespace):
    """Stands in for Airflow's outlet event accessor: the operator sets ``extra``."""

    extra: dict[str, Any] | None = None


@pytest.fixture
def make_context() -> Callable[..., dict[str, Any]]:
    """Build the context Airflow's task runner would pass to ``execute`` (the parts used)."""

    def make(
        *,
        task_id: str = "task",
        params: dict[str, Any] | None = None,
        logical_date: dt.datetime | None = LOGICAL_DATE,
        run_after: dt.datetime | None = LOGICAL_DATE,
        run_id: str = RUN_ID,
        try_number: int = 1,
    ) -> dict[str, Any]:
        return {
            "ti": SimpleNamespace(
                dag_id=DAG_ID, run_id=run_id, task_id=task_id, try_number=try_number
            ),
            "params": dict(params or {}),
            "logical_date": logical_date,
            "dag_run": SimpleNamespace(run_id=run_id, run_after=run_after),
            "macros": MacrosAccessor(),
            "outlet_events": defaultdict(OutletEvent),
        }

    return make


@pytest.fixture
def write_parquet(tmp_path: Path) -> Callable[[str, pa.Table], str]:
    """Write ``table`` as ``<tmp_path>/<name>.parquet``; its path (a staged input)."""

    def write(name: str, table: pa.Table) -> str:
        path = tmp_path / f"{name}.parquet"
        pq.write_table(table, path)
        return str(path)

    return write
