"""The real multi-process Airflow (PostgreSQL metadata DB, CeleryExecutor on Redis, two
workers), driven through its REST API v2 and its CLI. The tests run in order: a triggered
partition, a model trained on it, a 7-day backfill that the asset-triggered scoring
follows, and the same days again (plus one) as an 8-run parallel backfill from the CLI."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_mlops.demo.credit_model import MODEL_NAME
from tests.deployment.conftest import customers_on, trigger, unpause, wait_for_run

if TYPE_CHECKING:
    import httpx

    from airflow_mlops.store.feature_store import FeatureStore

pytestmark = pytest.mark.deployment

PARTITION = "2026-01-20"
#: the backfill's logical dates (03:00) and the partitions they publish (the day before)
BACKFILL = ("2026-01-15T03:00:00Z", "2026-01-21T03:00:00Z")
DAYS = [f"2026-01-{d}" for d in range(14, 21)]
PROGRESS = re.compile(r"\d+ rows, \d+ rows/s, [\d.]+ s elapsed")


def _task_log(api: httpx.Client, dag_id: str, run_id: str, task_id: str) -> list[str]:
    response = api.get(
        f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/1",
        headers={"Accept": "application/json"},
    )
    assert response.is_success, response.text
    return [str(line.get("event", "")) for line in response.json()["content"]]


def _runs(api: httpx.Client, dag_id: str, **params: Any) -> list[dict[str, Any]]:
    response = api.get(f"/dags/{dag_id}/dagRuns", params={"limit": 100, **params})
    return list(response.json()["dag_runs"])


def test_a_partition_triggered_through_the_rest_api_is_published(api, store):
    unpause(api, "daily_customer_features")
    run = trigger(api, "daily_customer_features", PARTITION)
    assert run["triggered_by"] == "rest_api"

    assert wait_for_run(api, "daily_customer_features", run["dag_run_id"]) == "success"

    manifest = store.manifest("customer_features", PARTITION)
    assert manifest["row_count"] == customers_on(PARTITION)
    assert manifest["lineage"]["run_id"] == run["dag_run_id"]
    assert manifest["lineage"]["sources"]["extract_customers"]["source"].startswith("postgresql")
    # long work reports rows, rows/s and elapsed time in the task log the UI shows
    for task_id in ("extract_customers", "extract_transactions", "build_features", "publish"):
        lines = _task_log(api, "daily_customer_features", run["dag_run_id"], task_id)
        assert any(PROGRESS.search(line) for line in lines), (task_id, lines[-10:])


def test_a_model_trained_through_the_rest_api_becomes_the_scoring_champion(api, registry):
    unpause(api, "train_credit_model")
    run = trigger(api, "train_credit_model", PARTITION)
    assert wait_for_run(api, "train_credit_model", run["dag_run_id"], timeout=300) == "success"

    aliases = registry.aliases(MODEL_NAME)
    assert set(aliases) >= {"champion", "challenger"}
    assert aliases["champion"] != aliases["challenger"]
    # from now on every published feature partition is scored (asset-triggered)
    unpause(api, "daily_customer_scoring")


def test_a_seven_day_backfill_is_published_and_scored_across_both_workers(api, store):
    unpause(api, "daily_customer_features")
    response = api.post(
        "/backfills",
        json={
            "dag_id": "daily_customer_features",
            "from_date": BACKFILL[0],
            "to_date": BACKFILL[1],
            "max_active_runs": 3,
        },
    )
    assert response.is_success, response.text
    backfill_id = response.json()["id"]

    deadline = time.monotonic() + 400
    runs: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        runs = _runs(api, "daily_customer_features", run_type="backfill")
        if len(runs) == 7 and all(r["state"] in ("success", "failed") for r in runs):
            break
        time.sleep(3)
    assert [r["state"] for r in runs] == ["success"] * 7, f"backfill {backfill_id}: {runs}"
    assert set(DAYS) <= set(store.list_partitions("customer_features"))
    for day in DAYS:
        assert store.manifest("customer_features", day)["row_count"] == customers_on(day), day

    # scale-out: the workers report their own host names (w1@…, w2@…) for the tasks they ran
    hosts = {
        ti["hostname"].split("@")[0]
        for run in runs
        for ti in api.get(
            f"/dags/daily_customer_features/dagRuns/{run['dag_run_id']}/taskInstances"
        ).json()["task_instances"]
    }
    assert hosts == {"w1", "w2"}, hosts

    # each publish is an asset event; daily_customer_scoring scores every day it names
    scored: set[str] = set()
    while time.monotonic() < deadline + 300:
        scored = set(DAYS) & set(store.list_partitions("customer_scores"))
        scoring = _runs(api, "daily_customer_scoring")
        if scored == set(DAYS) and all(r["state"] in ("success", "failed") for r in scoring):
            break
        time.sleep(3)
    assert scored == set(DAYS)
    assert scoring, "daily_customer_scoring never ran"
    assert all(r["state"] == "success" for r in scoring), scoring
    assert {r["run_type"] for r in scoring} == {"asset_triggered"}
    for day in DAYS:
        scores = store.manifest("customer_scores", day)
        features = store.manifest("customer_features", day)
        assert scores["row_count"] == features["row_count"], day

    # the backfill itself completes a little after its last run
    while time.monotonic() < deadline + 360:
        if api.get(f"/backfills/{backfill_id}").json().get("completed_at"):
            break
        time.sleep(2)


class _Reader(threading.Thread):
    """Reads every published day in a loop: a day once seen must stay readable and whole."""

    def __init__(self, store: FeatureStore, expected: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.store, self.expected = store, expected
        self.reads = 0
        self.errors: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        seen: set[str] = set()
        while not self.stop.is_set():
            present = set(self.store.list_partitions("customer_features"))
            if missing := seen - present:
                self.errors.append(f"published partitions vanished: {sorted(missing)}")
            seen |= present & set(self.expected)
            for day in sorted(seen):
                try:
                    rows = self.store.read_partition("customer_features", day).num_rows
                except Exception as exc:  # any failure is what this test is about
                    self.errors.append(f"{day}: {type(exc).__name__}: {exc}")
                    continue
                self.reads += 1
                if rows != self.expected[day]:
                    self.errors.append(f"{day}: {rows} rows, expected {self.expected[day]}")


def test_an_eight_run_parallel_cli_backfill_republishes_identical_partitions(running, api, store):
    """The same 7 days plus one, 8 runs at once, through ``airflow backfill create``, while
    a reader reads throughout: the 7 days come out byte-identical in content."""
    days = [*DAYS, "2026-01-21"]
    before = {day: store.manifest("customer_features", day) for day in DAYS}
    reader = _Reader(store, {day: customers_on(day) for day in days})
    reader.start()

    airflow = str(Path(sys.executable).with_name("airflow"))
    asked = dt.datetime.now(dt.UTC)
    created = subprocess.run(
        [airflow, "backfill", "create", "--dag-id", "daily_customer_features",
         "--from-date", "2026-01-15T03:00:00+00:00", "--to-date", "2026-01-22T03:00:00+00:00",
         "--reprocess-behavior", "completed", "--max-active-runs", "8"],
        env={**os.environ, **running["env"]}, capture_output=True, text=True,
    )  # fmt: skip
    assert created.returncode == 0, created.stdout[-2000:] + created.stderr[-2000:]

    def republished(day: str) -> bool:
        if day not in store.list_partitions("customer_features"):
            return False
        return day not in before or (
            store.manifest("customer_features", day)["version"] != before[day]["version"]
        )

    deadline = time.monotonic() + 400
    try:
        while time.monotonic() < deadline:
            runs = _runs(api, "daily_customer_features", run_type="backfill")
            if all(map(republished, days)) and all(
                r["state"] in ("success", "failed") for r in runs
            ):
                break
            time.sleep(2)
    finally:
        reader.stop.set()
        reader.join(timeout=60)

    assert [r["state"] for r in runs] == ["success"] * 8, runs
    assert reader.errors == [], reader.errors[:5]
    assert reader.reads > 0
    # the 8 runs were active at once: some instant lies inside every run's interval
    intervals = [
        (dt.datetime.fromisoformat(r["start_date"]), dt.datetime.fromisoformat(r["end_date"]))
        for r in runs
    ]
    assert all(start > asked for start, _ in intervals), intervals  # these runs, not ours
    assert max(start for start, _ in intervals) < min(end for _, end in intervals), intervals
    after = {day: store.manifest("customer_features", day) for day in days}
    assert all(after[d]["version"] != before[d]["version"] for d in DAYS), "no new versions"
    assert {d: after[d]["content_sha256"] for d in DAYS} == {
        d: before[d]["content_sha256"] for d in DAYS
    }
    assert after["2026-01-21"]["row_count"] == customers_on("2026-01-21")
