"""Wrong operator arguments: refused when the DAG is parsed, naming the argument and value.

Each case also checks that a published partition is untouched (nothing ran).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pytest

from airflow_mlops.contract import FeatureContract, FeatureField
from airflow_mlops.exceptions import ArgumentError, PartitionError
from airflow_mlops.operators import (
    BatchScoreOperator,
    BuildDriftProfileOperator,
    DriftCheckOperator,
    PublishFeaturesOperator,
    PythonTransformOperator,
    SqlExtractOperator,
    SqlTransformOperator,
)
from tests.bad_inputs.support import PARTITION, expect_error, snapshot
from tests.operators.support import render_and_execute

if TYPE_CHECKING:
    from collections.abc import Callable

TABLE = "customer_features"
GOOD = pa.table({"customer_id": pa.array([1, 2], pa.int64()), "income": [1.0, 2.0]})
CONTRACT = FeatureContract.from_dict({"customer_id": ("int64", False), "income": "float64"})


def score(**kwargs: Any) -> BatchScoreOperator:
    kwargs.setdefault("output_table", "scores")
    return BatchScoreOperator(task_id="score", features_table=TABLE, model_name="m", **kwargs)


def drift(**kwargs: Any) -> DriftCheckOperator:
    return DriftCheckOperator(task_id="drift", table=TABLE, **kwargs)


def sql_transform(**kwargs: Any) -> SqlTransformOperator:
    kwargs.setdefault("inputs", {"features": "x.parquet"})
    return SqlTransformOperator(task_id="t", sql="SELECT 1", **kwargs)


def publish(**kwargs: Any) -> PublishFeaturesOperator:
    kwargs.setdefault("source", "x.parquet")
    return PublishFeaturesOperator(task_id="publish", table=TABLE, **kwargs)


def extract(**kwargs: Any) -> SqlExtractOperator:
    return SqlExtractOperator(task_id="extract", conn_id="warehouse", sql="SELECT 1", **kwargs)


CASES = [
    # -- BatchScoreOperator
    pytest.param(
        lambda: score(workers=-1),
        ArgumentError,
        "The 'workers' parameter of BatchScoreOperator must be an int >= 1. Got -1 instead.",
        id="score-negative-workers",
    ),
    pytest.param(
        lambda: score(workers="4"),
        ArgumentError,
        "The 'workers' parameter of BatchScoreOperator must be an int >= 1. Got '4' instead.",
        id="score-workers-as-string",
    ),
    pytest.param(
        lambda: score(batch_size=2.5),
        ArgumentError,
        "The 'batch_size' parameter of BatchScoreOperator must be an int >= 1. Got 2.5",
        id="score-float-batch-size",
    ),
    pytest.param(
        lambda: score(shadow_fraction=0),
        ArgumentError,
        "The 'shadow_fraction' parameter of BatchScoreOperator must be a float in (0, 1]. "
        "Got 0 instead.",
        id="score-zero-shadow-fraction",
    ),
    pytest.param(
        lambda: score(threshold=1.5),
        ArgumentError,
        "The 'threshold' parameter of BatchScoreOperator must be a float in [0, 1]. Got 1.5",
        id="score-threshold-above-one",
    ),
    pytest.param(
        lambda: score(runtime="onnx"),
        ArgumentError,
        "The 'runtime' parameter of BatchScoreOperator must be one of 'auto', 'sklearn'. "
        "Got 'onnx' instead.",
        id="score-unknown-runtime",
    ),
    pytest.param(
        lambda: score(num_shards=4, shard=4),
        ArgumentError,
        "The 'shard' parameter of BatchScoreOperator must be an int in [0, 4) when "
        "num_shards=4. Got 4.",
        id="score-shard-out-of-range",
    ),
    pytest.param(
        lambda: score(output_table=TABLE),
        ArgumentError,
        "BatchScoreOperator needs distinct tables",
        id="score-overwrites-features",
    ),
    # -- DriftCheckOperator / BuildDriftProfileOperator
    pytest.param(
        lambda: drift(mode="loud"),
        ArgumentError,
        "The 'mode' parameter of DriftCheckOperator must be one of 'fail', 'soft_fail', "
        "'warn', 'branch'. Got 'loud' instead.",
        id="drift-unknown-mode",
    ),
    pytest.param(
        lambda: drift(reference="yesterday"),
        ArgumentError,
        "The 'reference' parameter of DriftCheckOperator must be one of 'previous', "
        "'partition', 'profile'. Got 'yesterday' instead.",
        id="drift-unknown-reference",
    ),
    pytest.param(
        lambda: drift(reference="profile"),
        ArgumentError,
        "DriftCheckOperator(reference='profile') needs a profile_name.",
        id="drift-profile-without-name",
    ),
    pytest.param(
        lambda: drift(mode="branch", ok_branch="ok"),
        ArgumentError,
        "DriftCheckOperator(mode='branch') needs both ok_branch and drift_branch.",
        id="drift-branch-without-branches",
    ),
    pytest.param(
        lambda: drift(columns="income"),
        ArgumentError,
        "The 'columns' parameter of DriftCheckOperator must be a list of column names. "
        "Got the string 'income' instead: write ['income'].",
        id="drift-columns-as-string",
    ),
    pytest.param(
        lambda: BuildDriftProfileOperator(
            task_id="p", table=TABLE, profile_name="p", exclude="customer_id"
        ),
        ArgumentError,
        "The 'exclude' parameter of BuildDriftProfileOperator must be a list of column names",
        id="profile-exclude-as-string",
    ),
    pytest.param(
        lambda: drift(default_thresholds=(0.5, 0.1)),
        ArgumentError,
        "The thresholds of DriftCheckOperator (column '(default)') must be a pair (warn, fail) "
        "of numbers with 0 <= warn <= fail. Got (0.5, 0.1) instead.",
        id="drift-thresholds-reversed",
    ),
    # -- transforms
    pytest.param(
        lambda: sql_transform(threads=0),
        ArgumentError,
        "The 'threads' parameter of SqlTransformOperator must be an int >= 1. Got 0 instead.",
        id="transform-zero-threads",
    ),
    pytest.param(
        lambda: sql_transform(memory_limit="lots"),
        ArgumentError,
        "The 'memory_limit' parameter of SqlTransformOperator must be a size such as '512MB' "
        "or '2GB'. Got 'lots' instead.",
        id="transform-bad-memory-limit",
    ),
    pytest.param(
        lambda: sql_transform(inputs={}),
        ArgumentError,
        "The 'inputs' parameter of SqlTransformOperator must be a non-empty mapping",
        id="transform-no-inputs",
    ),
    pytest.param(
        lambda: sql_transform(inputs={"bad-name; DROP": "x.parquet"}),
        ArgumentError,
        "SqlTransformOperator input names must be SQL identifiers. Got ['bad-name; DROP'].",
        id="transform-input-name-not-identifier",
    ),
    pytest.param(
        lambda: PythonTransformOperator(
            task_id="t", python_callable=len, input="x.parquet", batch_format="polars"
        ),
        ArgumentError,
        "The 'batch_format' parameter of PythonTransformOperator must be 'arrow' or 'pandas'. "
        "Got 'polars' instead.",
        id="python-transform-unknown-format",
    ),
    pytest.param(
        lambda: PythonTransformOperator(task_id="t", python_callable="len", input="x.parquet"),
        ArgumentError,
        "The 'python_callable' parameter of PythonTransformOperator must be callable. "
        "Got 'len' instead.",
        id="python-transform-not-callable",
    ),
    # -- extract and publish
    pytest.param(
        lambda: extract(allow_empty="no"),
        ArgumentError,
        "The 'allow_empty' parameter of SqlExtractOperator must be True or False. Got 'no'",
        id="extract-allow-empty-not-bool",
    ),
    pytest.param(
        lambda: extract(partition_lag_days=-1),
        ArgumentError,
        "The 'partition_lag_days' parameter of SqlExtractOperator must be an int >= 0. Got -1",
        id="extract-negative-lag",
    ),
    pytest.param(
        lambda: extract(partition="01/04/2026"),
        PartitionError,
        "Partition must be a date written YYYY-MM-DD. Got '01/04/2026' instead.",
        id="extract-partition-us-format",
    ),
    pytest.param(
        lambda: publish(batch_size=0),
        ArgumentError,
        "The 'batch_size' parameter of PublishFeaturesOperator must be an int >= 1. Got 0",
        id="publish-zero-batch-size",
    ),
    pytest.param(
        lambda: publish(allow_empty=None),
        ArgumentError,
        "The 'allow_empty' parameter of PublishFeaturesOperator must be True or False. "
        "Got None instead.",
        id="publish-allow-empty-not-bool",
    ),
    pytest.param(
        lambda: publish(unique_key=[]),
        ArgumentError,
        "The 'unique_key' parameter of PublishFeaturesOperator must be a column name or a "
        "non-empty list of distinct column names. Got [] instead.",
        id="publish-empty-unique-key",
    ),
    pytest.param(
        lambda: publish(contract=CONTRACT, unique_key="id"),
        ArgumentError,
        "The 'unique_key' of PublishFeaturesOperator names column(s) id that the contract "
        "does not declare (customer_id, income)",
        id="publish-unique-key-not-in-contract",
    ),
    # -- contracts
    pytest.param(
        lambda: FeatureContract.from_dict({"customer_id": "varchar"}),
        ArgumentError,
        "Unknown Arrow type 'varchar' in a feature contract. Use one of",
        id="contract-unknown-type",
    ),
    pytest.param(
        lambda: FeatureContract((FeatureField("a", "int64"), FeatureField("a", "string"))),
        ArgumentError,
        "FeatureContract has duplicate columns: a.",
        id="contract-duplicate-column",
    ),
    pytest.param(
        lambda: FeatureContract(()),
        ArgumentError,
        "A FeatureContract needs at least one field. Got none.",
        id="contract-no-fields",
    ),
]


@pytest.mark.parametrize(("build", "error", "fragment"), CASES)
def test_a_wrong_argument_is_refused_at_parse_time(
    feature_store, build: Callable[[], Any], error: type[Exception], fragment: str
):
    feature_store.publish_partition(TABLE, PARTITION, GOOD.to_batches(), schema=GOOD.schema)
    before = snapshot(feature_store, TABLE)

    expect_error(build, error, fragment)

    assert snapshot(feature_store, TABLE) == before


def test_an_empty_list_of_mapped_sources_fails_the_run(feature_store, make_context):
    feature_store.publish_partition(TABLE, PARTITION, GOOD.to_batches(), schema=GOOD.schema)
    before = snapshot(feature_store, TABLE)

    expect_error(
        lambda: render_and_execute(publish(source=[]), make_context()),
        ArgumentError,
        "The 'source' parameter of PublishFeaturesOperator got an empty list of upstream outputs",
    )
    assert snapshot(feature_store, TABLE) == before
