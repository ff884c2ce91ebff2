"""PublishFeaturesOperator: a staged result → one atomic partition of a feature table."""

from __future__ import annotations

import re

import pyarrow as pa
import pytest
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowFailException

from airflow_mlops.contract import FeatureContract
from airflow_mlops.exceptions import ArgumentError
from airflow_mlops.hooks.feature_store import feature_table_asset
from airflow_mlops.operators import PublishFeaturesOperator
from tests.operators.support import DAG_ID, RUN_ID, render_and_execute

TABLE = "customer_features"
CONTRACT = FeatureContract.from_dict(
    {"customer_id": ("int64", False), "income": "float64", "txn_count": "int64"}
)
FEATURES = pa.table(
    {"customer_id": [1, 2, 3], "income": [10.0, 20.0, None], "txn_count": [4, 0, 1]}
)


def publish(source, **kwargs) -> PublishFeaturesOperator:
    kwargs.setdefault("task_id", "publish")
    kwargs.setdefault("table", TABLE)
    return PublishFeaturesOperator(source=source, **kwargs)


def test_publishes_the_partition_and_returns_a_summary(feature_store, make_context, write_parquet):
    result = render_and_execute(publish(write_parquet("features", FEATURES)), make_context())

    assert feature_store.read_partition(TABLE, "2026-01-04").equals(FEATURES)
    assert result == {
        "table": TABLE,
        "partition": "2026-01-04",
        "version": feature_store.list_versions(TABLE, "2026-01-04")[-1],
        "previous_version": None,
        "rows": 3,
        "content_sha256": feature_store.manifest(TABLE, "2026-01-04")["content_sha256"],
        "path": feature_store.partition_path(TABLE, "2026-01-04"),
    }


def test_sets_the_outlet_event_extra(feature_store, make_context, write_parquet):
    operator = publish(write_parquet("features", FEATURES))
    context = make_context(params={"partition": "2026-01-02"})

    result = render_and_execute(operator, context)

    assert context["outlet_events"][operator.asset].extra == {
        "partition": "2026-01-02",
        "rows": 3,
        "version": result["version"],
    }


@pytest.mark.parametrize(
    ("conn_id", "uri"),
    [
        pytest.param(None, f"feature-store://feature_store_default/{TABLE}", id="default-store"),
        pytest.param("lake", f"feature-store://lake/{TABLE}", id="named-store"),
    ],
)
def test_outlets_declare_the_table_asset(conn_id, uri):
    kwargs = {} if conn_id is None else {"feature_store_conn_id": conn_id}

    operator = publish("/s/f.parquet", **kwargs)

    assert operator.asset == Asset(name=TABLE, uri=uri)
    assert operator.outlets == [operator.asset]
    assert operator.asset == feature_table_asset(TABLE, conn_id or "feature_store_default")


def test_user_outlets_are_kept_next_to_the_table_asset():
    report = Asset(name="feature_report", uri="file:///reports/features.html")

    operator = publish("/s/f.parquet", outlets=[report])

    assert operator.outlets == [report, feature_table_asset(TABLE)]


def test_a_single_user_outlet_is_accepted():
    report = Asset(name="feature_report", uri="file:///reports/features.html")

    operator = publish("/s/f.parquet", outlets=report)

    assert operator.outlets == [report, feature_table_asset(TABLE)]


def test_republishing_replaces_the_partition_and_keeps_the_previous_version(
    feature_store, make_context, write_parquet
):
    first = render_and_execute(publish(write_parquet("v1", FEATURES)), make_context())
    second = render_and_execute(
        publish(write_parquet("v2", FEATURES.slice(0, 1))), make_context(try_number=2)
    )

    assert second["previous_version"] == first["version"]
    assert second["rows"] == feature_store.read_partition(TABLE, "2026-01-04").num_rows == 1
    assert feature_store.list_versions(TABLE, "2026-01-04") == [
        first["version"],
        second["version"],
    ]


def test_manifest_lineage_names_the_run_and_the_upstream_sources(
    feature_store, make_context, write_parquet
):
    upstream = {
        "path": write_parquet("features", FEATURES),
        "rows": 3,
        "sha256": "not-checked",
        "partition": "2026-01-04",
        "lineage": {"sources": {"tx": {"rows": 9}}, "transforms": {"features": "abc"}},
    }

    render_and_execute(publish(upstream), make_context(task_id="publish", try_number=3))

    assert feature_store.manifest(TABLE, "2026-01-04")["lineage"] == {
        "dag_id": DAG_ID,
        "run_id": RUN_ID,
        "task_id": "publish",
        "try_number": 3,
        "sources": {"tx": {"rows": 9}},
        "transforms": {"features": "abc"},
    }


def test_contract_casts_compatible_columns(feature_store, make_context, write_parquet):
    as_int32 = FEATURES.set_column(
        0, "customer_id", FEATURES.column("customer_id").cast(pa.int32())
    )

    render_and_execute(publish(write_parquet("f", as_int32), contract=CONTRACT), make_context())

    assert (
        feature_store.read_partition(TABLE, "2026-01-04").schema.field("customer_id").type
        == pa.int64()
    )


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        pytest.param(
            FEATURES.drop_columns(["income"]).append_column("spend", pa.array([1.0, 2.0, 3.0])),
            "missing 1 column(s): income; unexpected 1 column(s): spend",
            id="renamed-column",
        ),
        pytest.param(
            FEATURES.set_column(1, "income", pa.array(["10", "20", "30"])),
            "mistyped 1 column(s): income is string, declared float64",
            id="mistyped-column",
        ),
        pytest.param(
            FEATURES.set_column(0, "customer_id", pa.array([1, None, 3], pa.int64())),
            "nulls in non-nullable column(s): customer_id",
            id="null-key",
        ),
    ],
)
def test_contract_violation_fails_and_keeps_the_published_partition(
    feature_store, make_context, write_parquet, bad, message
):
    good = render_and_execute(
        publish(write_parquet("good", FEATURES), contract=CONTRACT), make_context()
    )
    before = feature_store.read_partition(TABLE, "2026-01-04")

    with pytest.raises(AirflowFailException, match=re.escape(message)) as excinfo:
        render_and_execute(
            publish(write_parquet("bad", bad), contract=CONTRACT), make_context(try_number=2)
        )

    assert str(excinfo.value).startswith("ContractError: ")
    assert feature_store.read_partition(TABLE, "2026-01-04").equals(before)
    assert feature_store.list_versions(TABLE, "2026-01-04") == [good["version"]]
    assert feature_store.manifest(TABLE, "2026-01-04")["version"] == good["version"]


@pytest.mark.parametrize(
    "contract",
    [pytest.param(CONTRACT, id="with-contract"), pytest.param(None, id="file-schema")],
)
def test_an_empty_staged_result_publishes_an_empty_partition(
    feature_store, make_context, write_parquet, contract
):
    empty = write_parquet("empty", FEATURES.slice(0, 0))

    result = render_and_execute(publish(empty, contract=contract), make_context())

    table = feature_store.read_partition(TABLE, "2026-01-04")
    assert result["rows"] == table.num_rows == 0
    assert table.column_names == FEATURES.column_names


@pytest.mark.parametrize(
    "source",
    [pytest.param(None, id="none"), pytest.param({"rows": 3}, id="xcom-without-path")],
)
def test_a_source_that_is_no_staged_output_fails_without_retry(feature_store, make_context, source):
    with pytest.raises(
        AirflowFailException,
        match=re.escape(
            "The 'source' parameter of PublishFeaturesOperator must be an upstream step's output"
        ),
    ):
        render_and_execute(publish(source), make_context())


@pytest.mark.parametrize(
    "table",
    [
        pytest.param("../x", id="parent-dir"),
        pytest.param("a b", id="space"),
        pytest.param("a/b", id="slash"),
        pytest.param("", id="empty"),
        pytest.param("1st_table", id="leading-digit"),
        pytest.param("_staging", id="reserved"),
    ],
)
def test_bad_table_names_are_refused_at_init(table):
    with pytest.raises(
        ArgumentError,
        match=re.escape(
            "PublishFeaturesOperator: A feature table name must start with a letter or underscore"
        ),
    ) as excinfo:
        publish("/s/f.parquet", table=table)

    assert f"Got {table!r} instead." in str(excinfo.value)


def test_zero_batch_size_is_refused_at_init():
    with pytest.raises(
        ArgumentError,
        match=re.escape(
            "The 'batch_size' parameter of PublishFeaturesOperator must be an int >= 1. "
            "Got 0 instead."
        ),
    ):
        publish("/s/f.parquet", batch_size=0)
