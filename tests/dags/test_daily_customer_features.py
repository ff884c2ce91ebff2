"""daily_customer_features run through Airflow itself (``dag.test()`` on a migrated DB)."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pyarrow.compute as pc
import pytest

from airflow_mlops.store.feature_store import FeatureStore

pytestmark = pytest.mark.airflow

DAG_ID = "daily_customer_features"
TABLE = "customer_features"


def _at_three(day: str) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{day}T03:00:00+00:00")


@pytest.fixture
def dag(airflow_db, small_warehouse, repo):
    """A freshly parsed DAG: in-process runs update the tasks' params from run conf."""
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(repo / "dags"))
    assert bag.import_errors == {}
    return bag.get_dag(DAG_ID)


def _expected(warehouse, partition: str) -> dict[str, object]:
    """What SQL over the source says the partition must hold."""
    day = dt.date.fromisoformat(partition)
    start_30, start_7 = day - dt.timedelta(days=29), day - dt.timedelta(days=6)
    end = (day + dt.timedelta(days=1)).isoformat()
    with sqlite3.connect(warehouse) as con:
        customers = con.execute(
            "SELECT count(*) FROM customers WHERE signup_date <= ?", (partition,)
        ).fetchone()[0]
        count_30, amount_30 = con.execute(
            "SELECT count(*), sum(amount) FROM transactions t JOIN customers c USING (customer_id)"
            " WHERE c.signup_date <= ? AND ts >= ? AND ts < ?",
            (partition, start_30.isoformat(), end),
        ).fetchone()
        count_7 = con.execute(
            "SELECT count(*) FROM transactions t JOIN customers c USING (customer_id)"
            " WHERE c.signup_date <= ? AND ts >= ? AND ts < ?",
            (partition, start_7.isoformat(), end),
        ).fetchone()[0]
    return {"rows": customers, "count_30": count_30, "amount_30": amount_30, "count_7": count_7}


def test_dag_is_scheduled_as_specified(dag):
    assert dag.schedule == "0 3 * * *" or str(dag.timetable.summary) == "0 3 * * *"
    assert dag.catchup is False
    assert set(dag.tags) == {"features", "batch"}
    assert dag.default_args["retries"] == 2
    assert dag.default_args["retry_delay"] == dt.timedelta(minutes=5)
    assert dag.get_task("publish").upstream_task_ids == {"build_features"}
    assert dag.get_task("build_features").upstream_task_ids == {
        "extract_customers",
        "extract_transactions",
    }


@pytest.mark.parametrize(
    ("logical_day", "partition"),
    [
        pytest.param("2026-01-30", "2026-01-29", id="jan-29"),
        pytest.param("2026-01-31", "2026-01-30", id="jan-30"),
    ],
)
def test_scheduled_runs_publish_the_previous_day(
    dag, small_warehouse, store_root, logical_day, partition
):
    run = dag.test(logical_date=_at_three(logical_day))
    assert run.state == "success"

    store = FeatureStore(str(store_root))
    table = store.read_partition(TABLE, partition)
    expected = _expected(small_warehouse[0], partition)
    assert table.num_rows == expected["rows"]
    assert pc.sum(table["txn_count_30d"]).as_py() == expected["count_30"]
    assert pc.sum(table["txn_count_7d"]).as_py() == expected["count_7"]
    assert pc.sum(table["txn_amount_30d"]).as_py() == pytest.approx(expected["amount_30"])
    manifest = store.manifest(TABLE, partition)
    assert manifest["row_count"] == expected["rows"]
    assert manifest["lineage"]["dag_id"] == DAG_ID
    assert set(manifest["lineage"]["sources"]) == {"extract_customers", "extract_transactions"}


def test_rerun_replaces_the_partition_with_identical_content(dag, store_root):
    store = FeatureStore(str(store_root))
    dag.test(logical_date=_at_three("2026-01-28"))
    first = store.manifest(TABLE, "2026-01-27")
    run = dag.test(logical_date=_at_three("2026-01-28"))
    assert run.state == "success"
    second = store.manifest(TABLE, "2026-01-27")
    assert second["version"] != first["version"]
    assert second["previous_version"] == first["version"]
    assert second["content_sha256"] == first["content_sha256"]
    assert [f["sha256"] for f in second["files"]] == [f["sha256"] for f in first["files"]]
    assert store.read_partition(TABLE, "2026-01-27").num_rows == first["row_count"]


def test_manual_run_without_logical_date_uses_the_partition_param(dag, small_warehouse, store_root):
    run = dag.test(
        logical_date=None,
        run_after=dt.datetime(2026, 2, 15, 9, 30, tzinfo=dt.UTC),
        run_conf={"partition": "2026-01-20"},
    )
    assert run.state == "success"
    assert run.logical_date is None
    table = FeatureStore(str(store_root)).read_partition(TABLE, "2026-01-20")
    assert table.num_rows == _expected(small_warehouse[0], "2026-01-20")["rows"]


def test_manual_run_without_logical_date_or_param_uses_run_after(dag, store_root):
    run = dag.test(logical_date=None, run_after=dt.datetime(2026, 1, 26, 9, 30, tzinfo=dt.UTC))
    assert run.state == "success"
    assert "2026-01-25" in FeatureStore(str(store_root)).list_partitions(TABLE)


def test_publish_emits_an_asset_event_with_partition_and_rows(dag, store_root):
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    dag.test(logical_date=_at_three("2026-01-25"))
    with create_session() as session:
        events = session.scalars(
            select(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == TABLE)
        ).all()
        extras = [e.extra for e in events]
    rows = FeatureStore(str(store_root)).manifest(TABLE, "2026-01-24")["row_count"]
    assert {"partition": "2026-01-24", "rows": rows} in [
        {"partition": x.get("partition"), "rows": x.get("rows")} for x in extras
    ]


@pytest.mark.postgres
def test_postgres_warehouse_publishes_the_same_features_as_sqlite(
    dag, small_warehouse, store_root, tmp_path, monkeypatch, postgres_uri
):
    """The same DAG and SQL files, run against the real PostgreSQL: identical content."""
    from airflow_mlops.demo.environment import connection_json
    from airflow_mlops.demo.warehouse import write_postgres

    write_postgres(postgres_uri, small_warehouse[1], schema="mlops_test_warehouse")
    monkeypatch.setenv(
        "AIRFLOW_CONN_WAREHOUSE",
        connection_json(
            "postgres",
            host="127.0.0.1",
            port=5432,
            login="postgres",
            schema="test",
            extra={"options": "-csearch_path=mlops_test_warehouse"},
        ),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_FEATURE_STORE_DEFAULT",
        connection_json("feature_store", extra={"root": str(tmp_path)}),
    )
    run = dag.test(logical_date=_at_three("2026-01-23"))
    assert run.state == "success"
    from_postgres = FeatureStore(str(tmp_path))
    manifest = from_postgres.manifest(TABLE, "2026-01-22")
    assert manifest["lineage"]["sources"]["extract_customers"]["source"].startswith("postgresql")

    monkeypatch.undo()
    dag.test(logical_date=_at_three("2026-01-23"))
    from_sqlite = FeatureStore(str(store_root))
    assert from_postgres.read_partition(TABLE, "2026-01-22").equals(
        from_sqlite.read_partition(TABLE, "2026-01-22")
    )
    assert manifest["content_sha256"] == from_sqlite.manifest(TABLE, "2026-01-22")["content_sha256"]
