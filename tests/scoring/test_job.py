"""score_partition: the scoring run BatchScoreOperator and ``airflow-mlops score`` share."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airflow_mlops.exceptions import ArgumentError
from airflow_mlops.operators import BatchScoreOperator
from airflow_mlops.scoring import (
    ScoringRequest,
    ShadowRequest,
    ShardRequest,
    score_partition,
)
from tests.operators.support import render_and_execute
from tests.operators.test_batch_score import (
    CONTRACT,
    FEATURES,
    MODEL,
    PARTITION,
    SCORES,
    SCORES_COLUMNS,
    fitted,
    probabilities,
    publish_features,
    register,
)

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from airflow_mlops.models.registry import ModelRegistry
    from airflow_mlops.store.feature_store import FeatureStore

LOG = logging.getLogger(__name__)
LINEAGE = {"run_id": "test"}


@pytest.fixture(scope="module")
def champion_model(credit_data: tuple[pa.Table, pa.Table]) -> Pipeline:
    return fitted(credit_data, CONTRACT, max_iter=20)


@pytest.fixture
def features(credit_data: tuple[pa.Table, pa.Table], feature_store: FeatureStore) -> pa.Table:
    publish_features(feature_store, credit_data[0])
    return credit_data[0]


def request(**kwargs: Any) -> ScoringRequest:
    fields = {
        "features_table": FEATURES,
        "output_table": SCORES,
        "model_name": MODEL,
        "model_version": "v0001",
        "partition": PARTITION,
        "batch_size": 64,
        "workers": 1,
        **kwargs,
    }
    return ScoringRequest(**fields)


def test_a_partition_is_scored_and_published_with_its_lineage(
    feature_store: FeatureStore,
    model_registry: ModelRegistry,
    features: pa.Table,
    champion_model: Pipeline,
) -> None:
    register(model_registry, champion_model, ["champion"])

    result = score_partition(feature_store, model_registry, request(), lineage=LINEAGE, log=LOG)

    scores = feature_store.read_partition(SCORES, PARTITION)
    assert scores.column_names == SCORES_COLUMNS
    np.testing.assert_array_equal(
        scores.column("default_probability").to_numpy(), probabilities(champion_model, features)
    )
    manifest = feature_store.manifest(SCORES, PARTITION)
    assert result.manifest == manifest
    assert result.summary()["content_sha256"] == manifest["content_sha256"]
    assert (result.staged, result.shadow) == (None, None)
    lineage = manifest["lineage"]
    assert lineage["run_id"] == "test"
    assert lineage["features"]["version"] == feature_store.manifest(FEATURES, PARTITION)["version"]
    assert lineage["model"]["version"] == "v0001"
    assert lineage["runtime"] == result.runtime


def test_shards_stage_the_partition_in_disjoint_parts(
    feature_store: FeatureStore,
    model_registry: ModelRegistry,
    features: pa.Table,
    champion_model: Pipeline,
    tmp_path: Path,
) -> None:
    register(model_registry, champion_model, ["champion"])
    whole = score_partition(feature_store, model_registry, request(), lineage=LINEAGE, log=LOG)

    parts = []
    for index in range(3):
        shard = ShardRequest(index, 3, str(tmp_path / f"shard{index}.parquet"))
        result = score_partition(
            feature_store, model_registry, request(shard=shard), lineage=LINEAGE, log=LOG
        )
        assert result.manifest is None
        assert result.staged is not None
        assert result.staged["lineage"]["shard"] == {"index": index, "of": 3}
        parts.append(pq.read_table(result.staged["path"]))

    sharded = pa.concat_tables(parts).sort_by("customer_id")
    assert whole.manifest is not None
    assert sharded.num_rows == whole.manifest["row_count"] == features.num_rows
    assert sharded.equals(feature_store.read_partition(SCORES, PARTITION).sort_by("customer_id"))


def test_a_challenger_that_cannot_load_is_reported_not_raised(
    feature_store: FeatureStore,
    model_registry: ModelRegistry,
    features: pa.Table,
    champion_model: Pipeline,
    tmp_path: Path,
) -> None:
    register(model_registry, champion_model, ["champion"])
    shadow = ShadowRequest("contender", "shadow_scores", str(tmp_path / "shadow.parquet"))

    result = score_partition(
        feature_store, model_registry, request(shadow=shadow), lineage=LINEAGE, log=LOG
    )

    assert result.shadow is not None
    assert result.shadow.manifest is None
    assert result.shadow.report["status"] == "failed"
    assert "has no alias 'contender'" in result.shadow.report["error"]
    assert result.summary()["shadow"] == result.shadow.report
    assert feature_store.list_partitions("shadow_scores") == []


@pytest.mark.parametrize(
    ("make", "message"),
    [
        pytest.param(
            lambda: request(runtime="tl2cgen"),
            "The 'runtime' parameter of ScoringRequest must be one of 'auto', 'sklearn'. "
            "Got 'tl2cgen' instead.",
            id="runtime",
        ),
        pytest.param(
            lambda: request(workers=0),
            "The 'workers' parameter of ScoringRequest must be an int >= 1. Got 0 instead.",
            id="workers",
        ),
        pytest.param(
            lambda: request(output_table=FEATURES),
            "ScoringRequest needs distinct tables",
            id="scores-over-features",
        ),
        pytest.param(
            lambda: request(shadow=ShadowRequest("challenger", SCORES, "s.parquet")),
            "ScoringRequest needs distinct tables",
            id="shadow-over-scores",
        ),
        pytest.param(
            lambda: request(
                shard=ShardRequest(0, 2, "a.parquet"),
                shadow=ShadowRequest("challenger", "shadow", "s.parquet"),
            ),
            "A ScoringRequest cannot shadow-score a shard",
            id="shard-and-shadow",
        ),
        pytest.param(
            lambda: ShardRequest(2, 2, "a.parquet"),
            "The 'index' parameter of ShardRequest must be an int in [0, 2). Got 2 instead.",
            id="shard-index",
        ),
        pytest.param(
            lambda: ShadowRequest("challenger", "shadow", "s.parquet", fraction=0),
            "The 'fraction' parameter of ShadowRequest must be a float in (0, 1]. Got 0 instead.",
            id="shadow-fraction",
        ),
    ],
)
def test_bad_requests_are_refused(make: Any, message: str) -> None:
    with pytest.raises(ArgumentError, match=re.escape(message)):
        make()


# -- the CLI scores as the operator does ---------------------------------------------


def test_the_cli_scores_a_partition_exactly_as_the_operator_does(
    feature_store: FeatureStore,
    model_registry: ModelRegistry,
    make_context: Any,
    features: pa.Table,
    champion_model: Pipeline,
) -> None:
    register(model_registry, champion_model, ["champion"])
    operator = BatchScoreOperator(
        task_id="score",
        features_table=FEATURES,
        model_name=MODEL,
        output_table="operator_scores",
        workers=1,
        batch_size=64,
    )
    render_and_execute(operator, make_context())
    script = Path(sys.executable).parent / "airflow-mlops"

    done = subprocess.run(
        [
            str(script), "--root", feature_store.root, "score",
            "--registry", model_registry.root, FEATURES, PARTITION, MODEL, "cli_scores",
            "--workers", "1", "--batch-size", "64",
        ],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    by_operator = feature_store.manifest("operator_scores", PARTITION)
    by_cli = feature_store.manifest("cli_scores", PARTITION)
    assert summary["content_sha256"] == by_cli["content_sha256"]
    assert by_cli["content_sha256"] == by_operator["content_sha256"]
    assert (by_cli["row_count"], summary["model_version"]) == (features.num_rows, "v0001")
