"""Bad models and bad features reaching BatchScoreOperator; a challenger that breaks.

A good score partition is published first; every failure must leave it unchanged (its
version, kept versions and verified content).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pytest

from airflow_mlops.demo.environment import connection_json
from airflow_mlops.exceptions import (
    ChecksumMismatchError,
    ContractError,
    ModelLoadError,
    ModelNotFoundError,
    ModelVersionMismatchError,
    PartitionNotFoundError,
    ScoringError,
)
from airflow_mlops.models.layout import ARTIFACT_FILE, RECORD_FILE
from airflow_mlops.operators import BatchScoreOperator
from tests.bad_inputs.support import PARTITION, expect_error, snapshot
from tests.operators.support import render_and_execute
from tests.operators.test_batch_score import CONTRACT, OUTPUT, fitted, probabilities

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_mlops.models.registry import ModelRegistry
    from airflow_mlops.store.feature_store import FeatureStore

MODEL = "credit_risk"
FEATURES = "customer_features"
SCORES = "customer_scores"


class ExplodingModel:
    """Registers (it has ``predict_proba``) but raises when asked to score."""

    def predict_proba(self, frame: Any) -> Any:
        raise RuntimeError("model exploded")


class OneColumnModel:
    """Not a binary classifier: one probability column."""

    def predict_proba(self, frame: Any) -> Any:
        return np.zeros((len(frame), 1))


@dataclass
class Setup:
    store: FeatureStore
    registry: ModelRegistry
    features: pa.Table
    version: str
    monkeypatch: pytest.MonkeyPatch

    def artifact(self, version: str | None = None) -> Path:
        return Path(self.registry.root) / MODEL / (version or self.version) / ARTIFACT_FILE

    def edit_record(self, change: Callable[[dict[str, Any]], None]) -> None:
        path = self.artifact().with_name(RECORD_FILE)
        record = json.loads(path.read_text())
        change(record)
        path.write_text(json.dumps(record))

    def republish(self, table: pa.Table) -> None:
        self.store.publish_partition(FEATURES, PARTITION, table.to_batches(), schema=table.schema)

    def registry_policy(self, mode: str) -> None:
        extra = {"root": self.registry.root, "on_version_mismatch": mode}
        self.monkeypatch.setenv(
            "AIRFLOW_CONN_MODEL_REGISTRY_DEFAULT", connection_json("model_registry", extra=extra)
        )

    def register(self, model: Any, aliases: list[str]) -> str:
        record = self.registry.register(
            MODEL, model, input_contract=CONTRACT, output=OUTPUT, aliases=aliases
        )
        return str(record["version"])


@pytest.fixture(scope="module")
def champion_model(credit_data) -> Any:
    return fitted(credit_data, CONTRACT, max_iter=10)


def score(**kwargs: Any) -> BatchScoreOperator:
    kwargs.setdefault("workers", 1)
    kwargs.setdefault("batch_size", 128)
    return BatchScoreOperator(
        task_id="score", features_table=FEATURES, model_name=MODEL, output_table=SCORES, **kwargs
    )


@pytest.fixture
def setup(
    feature_store, model_registry, credit_data, champion_model, make_context, monkeypatch
) -> Setup:
    features = credit_data[0]
    state = Setup(feature_store, model_registry, features, "", monkeypatch)
    state.republish(features)
    state.version = state.register(champion_model, ["champion"])
    render_and_execute(score(), make_context())
    return state


def set_value(table: pa.Table, name: str, rows: dict[int, Any]) -> pa.Table:
    values = table.column(name).to_pylist()
    for row, value in rows.items():
        values[row] = value
    index = table.schema.get_field_index(name)
    return table.set_column(index, name, pa.array(values, table.schema.field(name).type))


def _truncate(s: Setup) -> None:
    data = s.artifact().read_bytes()
    s.artifact().write_bytes(data[: len(data) // 2])


def _flip_a_byte(s: Setup) -> None:
    data = bytearray(s.artifact().read_bytes())
    data[len(data) // 2] ^= 0xFF
    s.artifact().write_bytes(bytes(data))


def _saved_with(lib: str, version: str) -> Callable[[Setup], None]:
    def mutate(s: Setup) -> None:
        s.edit_record(lambda record: record["libraries"].__setitem__(lib, version))
        s.registry_policy("refuse")

    return mutate


def _champion(model: Any) -> Callable[[Setup], None]:
    return lambda s: s.register(model, ["champion"]) and None


CASES = [
    # -- missing, truncated, tampered or damaged artifacts
    pytest.param(
        lambda s: s.artifact().unlink(),
        {},
        ModelNotFoundError,
        "has a record but its artifact",
        id="artifact-missing",
    ),
    pytest.param(
        _truncate,
        {},
        ChecksumMismatchError,
        "was truncated or extended after registration",
        id="artifact-truncated",
    ),
    pytest.param(
        _flip_a_byte,
        {},
        ChecksumMismatchError,
        "was modified after registration",
        id="artifact-tampered",
    ),
    pytest.param(
        lambda s: s.artifact().with_name(RECORD_FILE).write_text("{not json"),
        {},
        ModelLoadError,
        "of model 'credit_risk' version v0001 is damaged",
        id="record-damaged",
    ),
    # -- saved with other library versions, the connection's policy is "refuse"
    pytest.param(
        _saved_with("sklearn", "0.24.2"),
        {},
        ModelVersionMismatchError,
        "Model 'credit_risk' version v0001 was saved with sklearn 0.24.2 (running",
        id="other-sklearn-version-refused",
    ),
    pytest.param(
        _saved_with("python", "3.8.10"),
        {"workers": 2},
        ModelVersionMismatchError,
        "was saved with python 3.8.10 (running",
        id="other-python-version-refused-workers",
    ),
    # -- which model
    pytest.param(
        lambda s: None,
        {"model_alias": "gold"},
        ModelNotFoundError,
        "Model 'credit_risk' has no alias 'gold'. Aliases: champion=v0001",
        id="unknown-alias",
    ),
    pytest.param(
        _champion(OneColumnModel()),
        {},
        ScoringError,
        "The model's predict_proba returned shape (128, 1) for 128 rows; scoring needs a binary",
        id="model-not-binary",
    ),
    pytest.param(
        _champion(ExplodingModel()),
        {},
        ScoringError,
        "Scoring batch 0 failed: RuntimeError: model exploded",
        id="champion-raises",
    ),
    # -- bad features for scoring
    pytest.param(
        lambda s: s.republish(set_value(s.features, "income", {3: float("inf"), 7: float("inf")})),
        {},
        ContractError,
        "Batch 0 has infinite values in 1 feature column(s): income — income (2 rows)",
        id="features-inf",
    ),
    pytest.param(
        lambda s: s.republish(set_value(s.features, "debt", {200: float("-inf")})),
        {},
        ContractError,
        "Batch 1 has infinite values in 1 feature column(s): debt — debt (1 rows)",
        id="features-minus-inf",
    ),
    pytest.param(
        lambda s: s.republish(s.features.drop_columns(["debt"])),
        {},
        ContractError,
        "The model input does not match its feature contract: missing 1 column(s): debt",
        id="features-missing-column",
    ),
    pytest.param(
        lambda s: s.republish(
            s.features.set_column(3, "age", s.features.column("age").cast(pa.string()))
        ),
        {},
        ContractError,
        "age is string, declared int64",
        id="features-retyped-column",
    ),
    pytest.param(
        lambda s: s.republish(s.features.drop_columns(["customer_id"])),
        {},
        ContractError,
        "The model input has no entity key column 'customer_id'",
        id="features-without-entity-key",
    ),
    pytest.param(
        lambda s: None,
        {"partition": "2026-01-03"},
        PartitionNotFoundError,
        "Table 'customer_features' has no partition 2026-01-03",
        id="features-partition-missing",
    ),
]


@pytest.mark.parametrize(("mutate", "kwargs", "error", "fragment"), CASES)
def test_a_bad_model_or_bad_features_fail_and_keep_the_scores(
    setup: Setup,
    make_context,
    mutate: Callable[[Setup], None],
    kwargs: dict[str, Any],
    error: type[Exception],
    fragment: str,
):
    before = snapshot(setup.store, SCORES)
    mutate(setup)

    expect_error(lambda: render_and_execute(score(**kwargs), make_context()), error, fragment)

    assert snapshot(setup.store, SCORES) == before


def test_nan_features_are_scored_by_a_model_that_handles_them(setup: Setup, make_context):
    with_nan = set_value(setup.features, "income", {0: float("nan"), 5: None})
    setup.republish(with_nan)

    render_and_execute(score(), make_context())

    scores = setup.store.read_partition(SCORES, PARTITION).column("default_probability")
    assert np.isfinite(scores.to_numpy()).all()
    model = setup.registry.load(MODEL).model
    np.testing.assert_allclose(scores.to_numpy(), probabilities(model, with_nan))


def test_a_version_mismatch_is_ignored_when_the_policy_says_so(setup: Setup, make_context):
    _saved_with("sklearn", "0.24.2")(setup)
    setup.registry_policy("ignore")

    result = render_and_execute(score(), make_context())

    assert result["rows"] == setup.features.num_rows


@pytest.mark.parametrize(
    ("challenger", "error"),
    [
        pytest.param(ExplodingModel(), "RuntimeError: model exploded", id="challenger-raises"),
        pytest.param(_flip_a_byte, "ChecksumMismatchError", id="challenger-artifact-tampered"),
        pytest.param(OneColumnModel(), "scoring needs a binary classifier", id="challenger-shape"),
    ],
)
def test_a_broken_challenger_leaves_the_champion_correct(
    setup: Setup, champion_model, make_context, challenger, error: str
):
    if callable(challenger):  # break the champion's own artifact copy, registered as challenger
        setup.version = setup.register(champion_model, ["challenger"])
        challenger(setup)
        setup.version = "v0001"
    else:
        setup.register(challenger, ["challenger"])

    result = render_and_execute(score(challenger_alias="challenger"), make_context())

    scores = setup.store.read_partition(SCORES, PARTITION).column("default_probability")
    np.testing.assert_array_equal(scores.to_numpy(), probabilities(champion_model, setup.features))
    assert result["shadow"]["status"] == "failed"
    assert error in result["shadow"]["error"]
    assert setup.store.list_partitions(f"{SCORES}_shadow") == []
