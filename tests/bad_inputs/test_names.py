"""Table, model and partition names that try to leave the store, or are just malformed.

A good partition is published first; after each refused name the store holds exactly what
it held (same tables, same partition content) and nothing was written outside its root.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pytest

from airflow_mlops.exceptions import ArgumentError, PartitionError, TableNameError
from airflow_mlops.operators import (
    BatchScoreOperator,
    BuildDriftProfileOperator,
    DriftCheckOperator,
    PublishFeaturesOperator,
)
from tests.bad_inputs.support import PARTITION, expect_error, snapshot
from tests.operators.support import render_and_execute

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from airflow_mlops.store.feature_store import FeatureStore

TABLE = "customer_features"
GOOD = pa.table({"customer_id": pa.array([1, 2, 3], pa.int64()), "income": [1.0, 2.0, 3.0]})
TABLE_RULE = "A feature table name must start with a letter or underscore"


def tree(root: Path) -> set[str]:
    """Every path under ``root`` (the test's tmp dir), to see that nothing new appears."""
    return {os.path.join(d, n) for d, dirs, files in os.walk(root) for n in [*dirs, *files]}


@pytest.fixture
def published(feature_store, tmp_path) -> dict[str, Any]:
    feature_store.publish_partition(TABLE, PARTITION, GOOD.to_batches(), schema=GOOD.schema)
    return {"snapshot": snapshot(feature_store, TABLE), "tables": feature_store.list_tables()}


def engine_publish(table: str, partition: str = PARTITION) -> Callable[[FeatureStore], Any]:
    return lambda store: store.publish_partition(
        table, partition, GOOD.to_batches(), schema=GOOD.schema
    )


def operator(factory: Callable[[], Any]) -> Callable[[FeatureStore], Any]:
    return lambda store: factory()


def publish_op(**kwargs: Any) -> Callable[[FeatureStore], Any]:
    kwargs.setdefault("table", TABLE)
    return operator(lambda: PublishFeaturesOperator(task_id="p", source="x.parquet", **kwargs))


CASES = [
    # -- table names, through the engine
    pytest.param(
        engine_publish("../escape"), TableNameError, "Got '../escape' instead", id="table-dotdot"
    ),
    pytest.param(
        engine_publish("/etc/cron.d"), TableNameError, "Got '/etc/cron.d' instead", id="table-abs"
    ),
    pytest.param(engine_publish("a/b"), TableNameError, "Got 'a/b' instead", id="table-slash"),
    pytest.param(engine_publish("a\\..\\b"), TableNameError, TABLE_RULE, id="table-backslash"),
    pytest.param(
        engine_publish("features; DROP TABLE x"),
        TableNameError,
        "Got 'features; DROP TABLE x' instead",
        id="table-sql",
    ),
    pytest.param(engine_publish("kundenmerkmäle"), TableNameError, TABLE_RULE, id="table-unicode"),
    pytest.param(engine_publish("a\x00b"), TableNameError, "Got 'a\\x00b'", id="table-nul"),
    pytest.param(engine_publish(""), TableNameError, "Got '' instead", id="table-empty"),
    pytest.param(
        engine_publish("t" * 129), TableNameError, "at most 128 characters", id="table-oversized"
    ),
    pytest.param(
        engine_publish("t" * 100_000),
        TableNameError,
        "… (100002 characters) instead",
        id="table-huge-not-echoed",
    ),
    pytest.param(
        engine_publish("_staging"),
        TableNameError,
        "'_staging' and '_logs' are reserved",
        id="table-reserved",
    ),
    # -- table names, refused when the DAG is parsed
    pytest.param(
        publish_op(table="../escape"),
        ArgumentError,
        f"PublishFeaturesOperator: {TABLE_RULE}",
        id="publish-op-table-dotdot",
    ),
    pytest.param(
        operator(
            lambda: BatchScoreOperator(
                task_id="s", features_table=TABLE, model_name="m", output_table="/tmp/scores"
            )
        ),
        ArgumentError,
        "BatchScoreOperator output_table: A feature table name",
        id="score-op-table-abs",
    ),
    pytest.param(
        operator(lambda: DriftCheckOperator(task_id="d", table="../../x")),
        ArgumentError,
        "DriftCheckOperator table: A feature table name must start",
        id="drift-op-table-dotdot",
    ),
    pytest.param(
        operator(lambda: BuildDriftProfileOperator(task_id="b", table="a b", profile_name="p")),
        ArgumentError,
        "BuildDriftProfileOperator table: A feature table name must start",
        id="profile-op-table-space",
    ),
    # -- partition values
    pytest.param(
        engine_publish(TABLE, "2026-13-01"), PartitionError, "Got '2026-13-01'", id="part-month"
    ),
    pytest.param(
        engine_publish(TABLE, "2026-02-30"), PartitionError, "Got '2026-02-30'", id="part-no-day"
    ),
    pytest.param(
        engine_publish(TABLE, "2026-1-4"), PartitionError, "Got '2026-1-4'", id="part-unpadded"
    ),
    pytest.param(
        engine_publish(TABLE, "../2026-01-04"),
        PartitionError,
        "Got '../2026-01-04'",
        id="part-dotdot",
    ),
    pytest.param(
        engine_publish(TABLE, "2026-01-04/../../x"),
        PartitionError,
        "Got '2026-01-04/../../x'",
        id="part-trailing-path",
    ),
    pytest.param(
        engine_publish(TABLE, "2026-01-04T00:00"),
        PartitionError,
        "Got '2026-01-04T00:00'",
        id="part-timestamp-text",
    ),
    pytest.param(
        engine_publish(TABLE, "2026-01-04" + "x" * 100_000),
        PartitionError,
        "… (100012 characters) instead. Pass a calendar day such as 2026-01-04",
        id="part-oversized",
    ),
    pytest.param(
        publish_op(partition="2026-00-10"),
        PartitionError,
        "Partition must be a date written YYYY-MM-DD. Got '2026-00-10' instead.",
        id="publish-op-partition",
    ),
]


@pytest.mark.parametrize(("call", "error", "fragment"), CASES)
def test_a_bad_name_is_refused_and_writes_nothing(
    feature_store: FeatureStore,
    published,
    tmp_path,
    call: Callable[[FeatureStore], Any],
    error: type[Exception],
    fragment: str,
):
    before = tree(tmp_path)

    expect_error(lambda: call(feature_store), error, fragment)

    assert tree(tmp_path) == before
    assert feature_store.list_tables() == published["tables"]
    assert snapshot(feature_store, TABLE) == published["snapshot"]


@pytest.mark.parametrize(
    "partition",
    [
        pytest.param("../../etc", id="param-dotdot"),
        pytest.param("2026-01-04; rm -rf /", id="param-shell"),
        pytest.param("yesterday", id="param-word"),
    ],
)
def test_a_bad_partition_param_fails_the_run_without_retry(
    feature_store, published, make_context, write_parquet, partition: str
):
    operator = PublishFeaturesOperator(
        task_id="publish", table=TABLE, source=write_parquet("good", GOOD)
    )

    expect_error(
        lambda: render_and_execute(operator, make_context(params={"partition": partition})),
        PartitionError,
        f"Got {partition!r} instead",
    )
    assert snapshot(feature_store, TABLE) == published["snapshot"]


def test_a_model_name_with_a_path_is_refused(feature_store, model_registry, published):
    expect_error(
        lambda: model_registry.register("../models", object(), input_contract=None, output={}),
        ArgumentError,
        "A model name must start with a letter or underscore",
    )
    assert snapshot(feature_store, TABLE) == published["snapshot"]
