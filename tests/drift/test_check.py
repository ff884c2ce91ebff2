"""The drift check engine on a feature store, without Airflow: profiles, references, reports."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from airflow_mlops.drift.check import (
    REPORT_HTML,
    REPORT_JSON,
    DriftCheckRequest,
    build_profile,
    check_partition,
    load_profile,
    profile_name,
    save_profile,
    write_report,
)
from airflow_mlops.drift.compare import ColumnReport, DriftReport
from airflow_mlops.drift.report import render_json
from airflow_mlops.exceptions import ArgumentError, PartitionNotFoundError
from airflow_mlops.store.feature_store import FeatureStore

TABLE = "customer_features"
BASELINE, STEADY, DRIFTED = "2026-01-02", "2026-01-03", "2026-01-04"
ROWS = 1_000
CHECKED = ["income", "region"]
BY = {"dag_id": "d", "run_id": "r", "task_id": "t", "try_number": 1}


def day(seed: int, *, income_mean: float = 50_000.0) -> pa.Table:
    """One day of features; only ``income``'s distribution depends on the arguments."""
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "customer_id": pa.array(np.arange(ROWS), pa.int64()),
            "income": rng.normal(income_mean, 10_000, ROWS),
            "region": pa.array(rng.choice(["north", "south", "east"], ROWS).tolist()),
        }
    )


@pytest.fixture
def store(tmp_path: Path) -> FeatureStore:
    """Three published days: a baseline, a steady day like it, and a day where income drifts."""
    store = FeatureStore(str(tmp_path / "store"))
    for partition, table in (
        (BASELINE, day(1)),
        (STEADY, day(2)),
        (DRIFTED, day(3, income_mean=80_000.0)),
    ):
        store.publish_partition(TABLE, partition, table.to_batches())
    return store


def request(**kwargs: Any) -> DriftCheckRequest:
    kwargs.setdefault("table", TABLE)
    kwargs.setdefault("partition", DRIFTED)
    kwargs.setdefault("exclude", ["customer_id"])
    return DriftCheckRequest(**kwargs)


def statuses(report: DriftReport) -> dict[str, str]:
    return {column["name"]: column["status"] for column in report["columns"]}


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The partitions the store is asked to read, in order."""
    read: list[str] = []
    iter_partition_batches = FeatureStore.iter_partition_batches

    def spy(self: FeatureStore, table: str, partition: str, **kwargs: Any) -> Any:
        read.append(partition)
        return iter_partition_batches(self, table, partition, **kwargs)

    monkeypatch.setattr(FeatureStore, "iter_partition_batches", spy)
    return read


# -- profiles -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("columns", "exclude", "profiled"),
    [
        pytest.param(None, ["customer_id"], CHECKED, id="all-but-excluded"),
        pytest.param(["region", "customer_id"], ["customer_id"], ["region"], id="chosen"),
    ],
)
def test_build_profile_reads_the_chosen_columns_of_a_partition(store, columns, exclude, profiled):
    profile = build_profile(
        store, TABLE, BASELINE, columns=columns, exclude=exclude, batch_size=300
    )

    assert profile.rows == ROWS
    assert list(profile.columns) == profiled
    assert not profile.exact


def test_a_saved_profile_loads_back_from_beside_the_table(store):
    profile = build_profile(store, TABLE, BASELINE, exclude=["customer_id"], exact=True)

    path = save_profile(store, TABLE, "v1", profile)

    assert Path(path) == Path(store.root) / TABLE / "_sidecars" / profile_name("v1")
    assert load_profile(store, TABLE, "v1") == profile


def test_loading_a_damaged_profile_names_it_and_its_table(store):
    store.write_sidecar(TABLE, profile_name("broken"), b"{not json")

    with pytest.raises(
        ArgumentError,
        match=re.escape(
            f"Drift profile 'broken' of table {TABLE!r}: The drift profile is damaged: it is "
            "not valid JSON"
        ),
    ):
        load_profile(store, TABLE, "broken")


def test_loading_a_missing_profile_is_not_found(store):
    with pytest.raises(PartitionNotFoundError, match=re.escape("No 'profile-v9.json' is stored")):
        load_profile(store, TABLE, "v9")


# -- references -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("partition", "reference", "expected"),
    [
        pytest.param(DRIFTED, STEADY, {"income": "fail", "region": "ok"}, id="drifted-day"),
        pytest.param(STEADY, BASELINE, {"income": "ok", "region": "ok"}, id="steady-day"),
    ],
)
def test_previous_reference_is_the_latest_earlier_partition(
    store, reads, partition, reference, expected
):
    report = check_partition(store, request(partition=partition), generated_by=BY)

    assert report is not None
    assert reads == [reference, partition]
    assert report["reference"] == {"kind": "partition", "partition": reference}
    assert statuses(report) == expected


def test_previous_reference_on_the_first_day_is_nothing_to_check(store, reads):
    assert check_partition(store, request(partition=BASELINE), generated_by=BY) is None
    assert reads == []


def test_partition_reference_is_the_chosen_day(store, reads):
    chosen = request(reference="partition", reference_partition=BASELINE)

    report = check_partition(store, chosen, generated_by=BY)

    assert report is not None
    assert reads == [BASELINE, DRIFTED]
    assert report["reference"] == {"kind": "partition", "partition": BASELINE}


def test_profile_reference_never_reads_the_reference_partition(store, reads):
    save_profile(
        store,
        TABLE,
        "v1",
        build_profile(store, TABLE, BASELINE, exclude=["customer_id"], batch_size=500),
    )
    reads.clear()

    report = check_partition(
        store, request(reference="profile", profile_name="v1"), generated_by=BY
    )

    assert report is not None
    assert reads == [DRIFTED]
    assert report["reference"] == {"kind": "profile", "name": "v1", "table": TABLE}
    assert report["reference_rows"] == ROWS
    assert statuses(report) == {"income": "fail", "region": "ok"}


# -- the report -----------------------------------------------------------------------


def test_the_report_says_what_was_checked_by_whom_and_when(store):
    before = dt.datetime.now(dt.UTC)

    report = check_partition(
        store, request(thresholds={"region": (0.0, 0.0)}, tests={"income": "chi2"}), generated_by=BY
    )

    assert report is not None
    assert (report["table"], report["partition"], report["generated_by"]) == (TABLE, DRIFTED, BY)
    assert before <= dt.datetime.fromisoformat(report["created_at"]) <= dt.datetime.now(dt.UTC)
    assert report["current_rows"] == report["reference_rows"] == ROWS
    assert report["status"] == "fail"
    assert report["summary"] == {"ok": 0, "warn": 0, "fail": 2}
    assert [c["name"] for c in report["columns"]] == CHECKED
    assert report["columns"][0]["test"] == "chi2"


def test_the_report_has_the_keys_its_types_declare(store):
    report = check_partition(store, request(), generated_by=BY)

    assert report is not None
    assert set(report) == DriftReport.__required_keys__ | DriftReport.__optional_keys__
    declared = ColumnReport.__required_keys__ | ColumnReport.__optional_keys__
    for column in report["columns"]:
        assert set(column) <= declared, set(column) - declared


def test_write_report_stores_json_and_html_beside_the_partition(store):
    report = check_partition(store, request(), generated_by=BY)
    assert report is not None

    uri = write_report(store, report)

    sidecars = Path(store.root) / TABLE / "_sidecars" / f"ds={DRIFTED}"
    assert uri == f"file://{sidecars / REPORT_HTML}"
    assert sorted(p.name for p in sidecars.iterdir()) == [REPORT_HTML, REPORT_JSON]
    stored = store.read_sidecar(TABLE, REPORT_JSON, partition=DRIFTED).decode()
    assert stored == render_json(report)
    assert json.loads(stored)["status"] == "fail"
    assert (sidecars / REPORT_HTML).read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
