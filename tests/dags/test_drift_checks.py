"""Drift checks through Airflow: each mode on fixture data; the features DAG on a drifted day."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pyarrow as pa
import pytest

from airflow_mlops.store.feature_store import FeatureStore

pytestmark = pytest.mark.airflow

REFERENCE, CLEAN, DRIFTED = "2026-01-01", "2026-01-02", "2026-01-03"


def _day(seed: int, shift: float) -> pa.RecordBatch:
    rng = np.random.default_rng(seed)
    n = 5_000
    return pa.record_batch(
        {
            "key": np.arange(n),
            "amount": rng.gamma(2.0, 30.0, n) * (1 + shift),
            "age": rng.integers(18, 90, n),
            "region": rng.choice(["north", "south", "east", "west"], n),
        }
    )


@pytest.fixture(scope="module")
def fixture_table(airflow_db, tmp_path_factory):
    store = FeatureStore(
        json.loads(airflow_db["AIRFLOW_CONN_FEATURE_STORE_DEFAULT"])["extra"]["root"]
    )
    for day, seed, shift in ((REFERENCE, 1, 0.0), (CLEAN, 2, 0.0), (DRIFTED, 3, 1.0)):
        store.publish_partition("drift_fixture", day, [_day(seed, shift)])
    return store


@pytest.fixture(scope="module")
def bag(airflow_db, dags_folder):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(dags_folder))
    assert bag.import_errors == {}
    return bag


def _run(bag, mode: str, day: str):
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(bag.dag_folder)).get_dag(f"drift_mode_{mode}")
    run = dag.test(
        logical_date=None,
        run_after=dt.datetime.fromisoformat(f"{day}T12:00:00+00:00"),
        run_conf={"partition": day, "reference": REFERENCE},
    )
    return run, {ti.task_id: ti.state for ti in run.get_task_instances()}


@pytest.mark.parametrize(
    ("mode", "day", "expected"),
    [
        pytest.param("fail", CLEAN, {"check": "success", "downstream": "success"}, id="fail-clean"),
        pytest.param(
            "fail", DRIFTED, {"check": "failed", "downstream": "upstream_failed"}, id="fail-drifted"
        ),
        pytest.param(
            "soft_fail",
            DRIFTED,
            {"check": "skipped", "downstream": "skipped"},
            id="soft-fail-drifted",
        ),
        pytest.param(
            "warn", DRIFTED, {"check": "success", "downstream": "success"}, id="warn-drifted"
        ),
        pytest.param(
            "branch",
            CLEAN,
            {"check": "success", "ok_path": "success", "drift_path": "skipped"},
            id="branch-clean",
        ),
        pytest.param(
            "branch",
            DRIFTED,
            {"check": "success", "ok_path": "skipped", "drift_path": "success"},
            id="branch-drifted",
        ),
    ],
)
def test_modes(bag, fixture_table, mode, day, expected):
    _, states = _run(bag, mode, day)
    assert {k: str(v) for k, v in states.items()} == expected


def test_reports_sit_beside_the_partition_and_name_the_drifted_column(bag, fixture_table):
    _run(bag, "warn", DRIFTED)
    report = json.loads(
        fixture_table.read_sidecar("drift_fixture", "drift_report.json", partition=DRIFTED)
    )
    by_name = {c["name"]: c for c in report["columns"]}
    assert report["status"] == "fail"
    assert by_name["amount"]["status"] == "fail"
    assert by_name["age"]["status"] == "ok"
    assert report["reference"] == {"kind": "partition", "partition": REFERENCE}
    html = fixture_table.read_sidecar("drift_fixture", "drift_report.html", partition=DRIFTED)
    assert b"<svg" in html
    assert b"amount" in html


def test_the_report_link_and_the_asset_event_reach_airflow(bag, fixture_table):
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    run, _ = _run(bag, "warn", DRIFTED)
    with create_session() as session:
        (link,) = session.scalars(
            XComModel.get_many(run_id=run.run_id, task_ids="check", key="_link_DriftReportLink")
        ).all()
        url = XComModel.deserialize_value(link)
        extras = [
            e.extra
            for e in session.scalars(
                select(AssetEvent)
                .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
                .where(AssetModel.name == "drift_fixture_drift")
            ).all()
        ]
    assert url == fixture_table.sidecar_uri("drift_fixture", "drift_report.html", partition=DRIFTED)
    assert {"partition": DRIFTED, "status": "fail"} in [
        {"partition": x.get("partition"), "status": x.get("status")} for x in extras
    ]
