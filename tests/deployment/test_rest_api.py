"""The real multi-process Airflow (PostgreSQL metadata DB, CeleryExecutor on Redis, two
workers), driven through its REST API v2. Every process is stopped by PID at the end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

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


def test_a_seven_day_backfill_publishes_seven_partitions_across_both_workers(running, api):
    _wait_for_dag(api, "daily_customer_features")
    api.patch("/dags/daily_customer_features", json={"is_paused": False})
    response = api.post(
        "/backfills",
        json={
            "dag_id": "daily_customer_features",
            "from_date": "2026-01-15T03:00:00Z",
            "to_date": "2026-01-21T03:00:00Z",
            "max_active_runs": 3,
        },
    )
    assert response.is_success, response.text
    backfill_id = response.json()["id"]

    deadline = time.monotonic() + 400
    states: list[str] = []
    while time.monotonic() < deadline:
        runs = api.get(
            "/dags/daily_customer_features/dagRuns", params={"run_type": "backfill", "limit": 50}
        ).json()["dag_runs"]
        states = [r["state"] for r in runs]
        if len(runs) == 7 and all(s in ("success", "failed") for s in states):
            break
        time.sleep(3)
    assert states == ["success"] * 7, f"backfill {backfill_id}: {states}"
    # the backfill itself completes a little after its last run (one per DAG at a time)
    while time.monotonic() < deadline + 60:
        if api.get(f"/backfills/{backfill_id}").json().get("completed_at"):
            break
        time.sleep(2)

    days = [f"2026-01-{d}" for d in range(14, 21)]
    store_root = json.loads(running["env"]["AIRFLOW_CONN_FEATURE_STORE_DEFAULT"])["extra"]["root"]
    store = FeatureStore(store_root)
    assert set(days) <= set(store.list_partitions("customer_features"))
    with psycopg.connect(f"{stack.PG}/{stack.WAREHOUSE_DB}") as con:
        for day in days:
            (customers,) = con.execute(
                "SELECT count(*) FROM customers WHERE signup_date <= %s", (day,)
            ).fetchone()
            assert store.manifest("customer_features", day)["row_count"] == customers, day

    workdir = Path(running["env"]["AIRFLOW_HOME"]).parent
    finished = {
        worker: (workdir / f"{worker}.log").read_bytes().count(b"succeeded in")
        for worker in ("worker-1", "worker-2")
    }
    assert all(count > 0 for count in finished.values()), finished


def test_the_same_backfill_through_the_cli_gives_identical_partitions(running, api):
    days = [f"2026-01-{d}" for d in range(14, 21)]
    store_root = json.loads(running["env"]["AIRFLOW_CONN_FEATURE_STORE_DEFAULT"])["extra"]["root"]
    store = FeatureStore(store_root)
    before = {day: store.manifest("customer_features", day) for day in days}

    airflow = str(Path(sys.executable).with_name("airflow"))
    created = subprocess.run(
        [airflow, "backfill", "create", "--dag-id", "daily_customer_features",
         "--from-date", "2026-01-15T03:00:00+00:00", "--to-date", "2026-01-21T03:00:00+00:00",
         "--reprocess-behavior", "completed", "--max-active-runs", "3"],
        env={**os.environ, **running["env"]}, capture_output=True, text=True,
    )  # fmt: skip
    assert created.returncode == 0, created.stdout[-2000:] + created.stderr[-2000:]

    deadline = time.monotonic() + 400
    after = before
    while time.monotonic() < deadline:
        after = {day: store.manifest("customer_features", day) for day in days}
        if all(after[d]["version"] != before[d]["version"] for d in days):
            break
        time.sleep(3)
    assert all(after[d]["version"] != before[d]["version"] for d in days), "no new versions"
    assert {d: after[d]["content_sha256"] for d in days} == {
        d: before[d]["content_sha256"] for d in days
    }
