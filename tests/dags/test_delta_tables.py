"""daily_customer_features run through Airflow itself with its feature store in the Delta
format (the connection's ``table_format``): the same published content as the parquet
format, in a Delta table that Polars and DuckDB read through its log."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from typing import TYPE_CHECKING

import duckdb
import polars as pl
import pyarrow.fs as pafs
import pytest
from deltalake import DeltaTable

from airflow_mlops.demo.environment import connection_json
from airflow_mlops.store.feature_store import FeatureStore

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_mlops.demo.object_store import SeaweedS3

pytestmark = pytest.mark.airflow

DAG_ID, TABLE, DAY = "daily_customer_features", "customer_features", "2026-01-21"


def test_the_dag_publishes_a_delta_table_other_engines_read(
    airflow_db: dict[str, str],
    small_warehouse: object,
    repo: Path,
    store_root: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(repo / "dags")).get_dag(DAG_ID)
    logical_date = dt.datetime.fromisoformat("2026-01-22T03:00:00+00:00")
    assert dag.test(logical_date=logical_date).state == "success"  # the parquet store
    parquet = FeatureStore(str(store_root)).manifest(TABLE, DAY)
    delta_root = tmp_path / "delta_store"
    extra = {"root": str(delta_root), "table_format": "delta"}
    connection = connection_json("feature_store", extra=extra)
    monkeypatch.setenv("AIRFLOW_CONN_FEATURE_STORE_DEFAULT", connection)

    assert dag.test(logical_date=logical_date).state == "success"

    store = FeatureStore(str(delta_root), table_format="delta")
    manifest = store.manifest(TABLE, DAY)
    assert manifest["content_sha256"] == parquet["content_sha256"]
    features = store.read_partition(TABLE, DAY)
    assert features.num_rows == manifest["row_count"] > 0
    assert manifest["lineage"]["dag_id"] == DAG_ID
    uri = str(delta_root / TABLE)
    [commit] = [c for c in DeltaTable(uri).history() if "airflow_mlops" in c]
    assert json.loads(json.dumps(commit["airflow_mlops"]["manifest"])) == manifest

    day = dt.date.fromisoformat(DAY)
    by_polars = pl.scan_delta(uri).filter(pl.col("ds") == day).collect()
    assert by_polars.height == features.num_rows
    assert by_polars["customer_id"].sort().to_list() == sorted(features["customer_id"].to_pylist())
    dataset = DeltaTable(uri).to_pyarrow_dataset(
        filesystem=pafs.SubTreeFileSystem(uri, pafs.LocalFileSystem())
    )
    counted = duckdb.from_arrow(dataset).filter(f"ds = DATE '{DAY}'").count("*").fetchall()
    assert counted == [(features.num_rows,)]


def test_the_dag_publishes_to_s3_through_the_connection_and_keeps_its_secret(
    airflow_db: dict[str, str],
    small_warehouse: object,
    repo: Path,
    store_root: Path,
    s3_server: SeaweedS3,
    s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(repo / "dags")).get_dag(DAG_ID)
    logical_date = dt.datetime.fromisoformat("2026-01-22T03:00:00+00:00")
    assert dag.test(logical_date=logical_date).state == "success"  # the local parquet store
    local = FeatureStore(str(store_root)).manifest(TABLE, DAY)
    extra = {
        "root": f"s3://{s3_bucket}/store",
        "table_format": "delta",
        "endpoint_url": s3_server.endpoint,
        "region": s3_server.region,
        "allow_http": True,
    }
    connection = connection_json(
        "feature_store", login=s3_server.access_key, password=s3_server.secret_key, extra=extra
    )
    monkeypatch.setenv("AIRFLOW_CONN_FEATURE_STORE_DEFAULT", connection)

    assert dag.test(logical_date=logical_date).state == "success"

    options = s3_server.storage_options()
    store = FeatureStore(f"s3://{s3_bucket}/store", table_format="delta", storage_options=options)
    assert store.manifest(TABLE, DAY)["content_sha256"] == local["content_sha256"]
    by_polars = pl.scan_delta(f"s3://{s3_bucket}/store/{TABLE}", storage_options=options)
    assert by_polars.select(pl.len()).collect().item() == local["row_count"]
    secret = s3_server.secret_key
    filesystem = s3_server.filesystem()
    objects = filesystem.get_file_info(pafs.FileSelector(s3_bucket, recursive=True))
    for info in objects:
        if info.type == pafs.FileType.File:
            with filesystem.open_input_stream(info.path) as stream:
                assert secret.encode() not in stream.read(), info.path
    assert secret not in capsys.readouterr().out + caplog.text
    database = airflow_db["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].removeprefix("sqlite:///")
    with sqlite3.connect(database) as con:
        xcoms = con.execute("SELECT value FROM xcom").fetchall()
    assert xcoms
    assert all(secret not in str(value) for (value,) in xcoms)


def test_training_and_scoring_run_on_a_delta_store(
    airflow_db: dict[str, str],
    small_warehouse: object,
    repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    root, registry = tmp_path / "delta_store", tmp_path / "registry"
    store_extra = {"root": str(root), "table_format": "delta"}
    monkeypatch.setenv(
        "AIRFLOW_CONN_FEATURE_STORE_DEFAULT", connection_json("feature_store", extra=store_extra)
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_MODEL_REGISTRY_DEFAULT",
        connection_json("model_registry", extra={"root": str(registry)}),
    )
    bag = DagBag(dag_folder=str(repo / "dags"))
    for logical in ("2026-01-16", "2026-01-17"):
        run = bag.get_dag(DAG_ID).test(
            logical_date=dt.datetime.fromisoformat(f"{logical}T03:00:00+00:00")
        )
        assert run.state == "success"
    after = dt.datetime(2026, 1, 17, 12, tzinfo=dt.UTC)
    training = bag.get_dag("train_credit_model").test(
        logical_date=None, run_after=after, run_conf={"partition": "2026-01-15"}
    )
    assert training.state == "success"

    scoring = bag.get_dag("daily_customer_scoring").test(
        logical_date=None, run_after=after, run_conf={"partition": "2026-01-16"}
    )

    assert scoring.state == "success"
    store = FeatureStore(str(root), table_format="delta")
    assert set(store.list_tables()) >= {TABLE, "customer_scores"}
    scores = pl.scan_delta(str(root / "customer_scores")).collect()
    features = store.read_partition(TABLE, "2026-01-16")
    assert scores.height == features.num_rows
    assert scores["ds"].unique().to_list() == [dt.date(2026, 1, 16)]
