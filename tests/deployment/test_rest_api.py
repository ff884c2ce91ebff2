"""The real multi-process Airflow (PostgreSQL metadata DB, CeleryExecutor on Redis, two
workers), driven through its REST API v2. Every process is stopped by PID at the end."""

from __future__ import annotations

import json
import time

import httpx
import psycopg
import pytest

from airflow_mlops.demo import stack
from airflow_mlops.store import FeatureStore

pytestmark = pytest.mark.deployment

PARTITION = "2026-01-20"


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("stack")
    try:
        state = stack.start(workdir, customers=2_000)
        yield state
    finally:
        stack.stop(workdir)


@pytest.fixture(scope="module")
def api(running):
    base = f"http://127.0.0.1:{running['port']}"
    with open(running["passwords"]) as handle:
        password = json.load(handle)["admin"]
    token = httpx.post(
        f"{base}/auth/token", json={"username": "admin", "password": password}, timeout=30
    ).json()["access_token"]
    with httpx.Client(
        base_url=f"{base}/api/v2", headers={"Authorization": f"Bearer {token}"}, timeout=30
    ) as client:
        yield client


def _wait_for_dag(api, dag_id: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if api.get(f"/dags/{dag_id}").status_code == 200:
            return
        time.sleep(2)
    raise AssertionError(f"{dag_id} was not parsed within {timeout} s")


def _wait_for_run(api, dag_id: str, run_id: str, timeout: float = 240) -> str:
    deadline = time.monotonic() + timeout
    state = "unknown"
    while time.monotonic() < deadline:
        state = api.get(f"/dags/{dag_id}/dagRuns/{run_id}").json()["state"]
        if state in ("success", "failed"):
            return state
        time.sleep(2)
    raise AssertionError(f"{dag_id} run {run_id} still {state} after {timeout} s")


def test_a_partition_triggered_through_the_rest_api_is_published(running, api):
    _wait_for_dag(api, "daily_customer_features")
    assert api.patch("/dags/daily_customer_features", json={"is_paused": False}).is_success
    response = api.post(
        "/dags/daily_customer_features/dagRuns",
        json={"logical_date": None, "conf": {"partition": PARTITION}},
    )
    assert response.is_success, response.text
    run = response.json()
    assert run["triggered_by"] == "rest_api"

    assert _wait_for_run(api, "daily_customer_features", run["dag_run_id"]) == "success"

    with psycopg.connect(f"{stack.PG}/{stack.WAREHOUSE_DB}") as con:
        (customers,) = con.execute(
            "SELECT count(*) FROM customers WHERE signup_date <= %s", (PARTITION,)
        ).fetchone()
    store_root = json.loads(running["env"]["AIRFLOW_CONN_FEATURE_STORE_DEFAULT"])["extra"]["root"]
    manifest = FeatureStore(store_root).manifest("customer_features", PARTITION)
    assert manifest["row_count"] == customers
    assert manifest["lineage"]["run_id"] == run["dag_run_id"]
    assert manifest["lineage"]["sources"]["extract_customers"]["source"].startswith("postgresql")
