"""TrainModelOperator: a grid swept on a feature partition, the best candidates registered."""

from __future__ import annotations

import re
import sys
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pytest
from airflow.sdk.exceptions import AirflowFailException
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from airflow_mlops.contract import FeatureContract
from airflow_mlops.exceptions import ArgumentError, ContractError
from airflow_mlops.operators import TrainModelOperator
from tests.operators.support import render_and_execute

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_mlops.store.feature_store import FeatureStore

MODEL = "credit_risk"
FEATURES = "customer_features"
PARTITION = "2026-01-04"  # the default run's partition (logical date 2026-01-05, lag 1)
NUMERIC = ["income", "debt", "age"]
CONTRACT = FeatureContract.from_dict(
    {
        "income": ("float64", False),
        "debt": ("float64", False),
        "age": ("int64", False),
        "region": ("string", False),
    }
)
OUTPUT = {
    "score": "default_probability",
    "threshold": 0.3,
    "positive": "decline",
    "negative": "approve",
    "entity_key": "customer_id",
}
GRID = [
    ("tight", {"C": 0.001}),
    ("medium", {"C": 0.1}),
    ("loose", {"C": 10.0}),
]
METRICS = {
    f"cv_{metric}_{stat}" for metric in ("roc_auc", "log_loss", "brier") for stat in ("mean", "std")
}


def make_estimator(params: Mapping[str, Any]) -> Pipeline:
    """Scaled numerics and one-hot region into a logistic regression of strength ``C``."""
    features = ColumnTransformer(
        [
            ("numeric", StandardScaler(), NUMERIC),
            ("region", OneHotEncoder(handle_unknown="ignore"), ["region"]),
        ]
    )
    return Pipeline([("features", features), ("model", LogisticRegression(C=params["C"]))])


def make_trees(params: Mapping[str, Any]) -> Pipeline:
    """The same inputs into a small gradient-boosted tree model (compilable by tl2cgen)."""
    pipeline = make_estimator({"C": 1.0})
    model = HistGradientBoostingClassifier(max_iter=params["max_iter"], random_state=0)
    return pipeline.set_params(model=model)


@pytest.fixture
def features(credit_data, feature_store: FeatureStore) -> pa.Table:
    """The credit features, published as the run's partition of the feature table."""
    table = credit_data[0]
    feature_store.publish_partition(FEATURES, PARTITION, table.to_batches(), schema=table.schema)
    return table


@pytest.fixture
def labels(credit_data) -> pa.Table:
    return credit_data[1]


def train(labels: Any, **kwargs: Any) -> TrainModelOperator:
    kwargs.setdefault("task_id", "train")
    kwargs.setdefault("features_table", FEATURES)
    kwargs.setdefault("label_column", "defaulted")
    kwargs.setdefault("model_name", MODEL)
    kwargs.setdefault("make_estimator", make_estimator)
    kwargs.setdefault("grid", GRID)
    kwargs.setdefault("input_contract", CONTRACT)
    kwargs.setdefault("model_output", OUTPUT)
    return TrainModelOperator(labels=labels, **kwargs)


def staged(path: str) -> dict[str, Any]:
    """An upstream step's XCom for the labels staged at ``path``."""
    return {
        "path": path,
        "rows": 300,
        "sha256": "not-checked",
        "partition": PARTITION,
        "lineage": {"sources": {"labels": {"rows": 300}}},
    }


# -- registration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("as_labels", "lineage"),
    [
        pytest.param(lambda path: path, {}, id="staged-path"),
        pytest.param(staged, {"sources": {"labels": {"rows": 300}}}, id="upstream-output"),
        pytest.param(lambda path: "{{ params.labels }}", {}, id="templated-path"),
    ],
)
def test_registers_the_best_candidates_in_rank_order(
    feature_store,
    model_registry,
    make_context,
    write_parquet,
    features,
    labels,
    as_labels,
    lineage,
):
    path = write_parquet("labels", labels)

    result = render_and_execute(train(as_labels(path)), make_context(params={"labels": path}))

    records = [model_registry.record(MODEL, v) for v in model_registry.list_versions(MODEL)]
    sweep = records[0]["params"]["sweep"]
    ranked = sorted(sweep, key=lambda c: -c["metrics"]["cv_roc_auc_mean"])
    assert [c["name"] for c in sweep] == [c["name"] for c in ranked]
    assert sorted(c["name"] for c in sweep) == sorted(name for name, _ in GRID)
    assert model_registry.aliases(MODEL) == {"champion": "v0001", "challenger": "v0002"}
    assert [r["params"]["candidate"] for r in records] == [c["name"] for c in sweep[:2]]
    for record, candidate in zip(records, sweep, strict=False):
        assert record["params"] == {
            "candidate": candidate["name"],
            "C": dict(GRID)[candidate["name"]]["C"],
            "sweep": sweep,
        }
        assert record["metrics"] == candidate["metrics"]
        assert set(record["metrics"]) == METRICS
        assert record["training_data"] == {
            "table": FEATURES,
            "partitions": [PARTITION],
            "version": feature_store.manifest(FEATURES, PARTITION)["version"],
            "rows": features.num_rows,
            "labels": lineage,
        }
        assert record["input_contract"] == {"fields": [f.__dict__ for f in CONTRACT.fields]}
        assert record["output"] == OUTPUT
    assert result == {
        "model_name": MODEL,
        "partition": PARTITION,
        "registered": [
            {
                "alias": alias,
                "version": record["version"],
                "candidate": record["params"]["candidate"],
                "cv_roc_auc_mean": record["metrics"]["cv_roc_auc_mean"],
            }
            for alias, record in zip(["champion", "challenger"], records, strict=True)
        ],
    }


def test_registered_models_load_and_score(
    model_registry, make_context, write_parquet, features, labels
):
    render_and_execute(train(write_parquet("labels", labels), aliases=["champion"]), make_context())

    loaded = model_registry.load(MODEL)
    probabilities = loaded.model.predict_proba(features.select(CONTRACT.names).to_pandas())
    assert model_registry.list_versions(MODEL) == ["v0001"]
    assert probabilities.shape == (features.num_rows, 2)
    assert loaded.record["metrics"]["cv_roc_auc_mean"] > 0.6  # the labels are learnable


def test_a_second_run_adds_versions_and_moves_the_aliases(
    model_registry, make_context, write_parquet, features, labels
):
    path = write_parquet("labels", labels)
    render_and_execute(train(path), make_context())

    second = render_and_execute(train(path), make_context(try_number=2))

    assert [r["version"] for r in second["registered"]] == ["v0003", "v0004"]
    assert model_registry.aliases(MODEL) == {"champion": "v0003", "challenger": "v0004"}
    assert model_registry.list_versions(MODEL) == ["v0001", "v0002", "v0003", "v0004"]


# -- runtime checks -------------------------------------------------------------------


def test_a_tree_model_is_recorded_as_verified_for_the_compiled_runtime(
    model_registry, make_context, write_parquet, features, labels
):
    pytest.importorskip("tl2cgen")
    operator = train(
        write_parquet("labels", labels),
        make_estimator=make_trees,
        grid=[("trees", {"max_iter": 10})],
        aliases=["champion"],
    )

    render_and_execute(operator, make_context())

    check = model_registry.record(MODEL, "v0001")["runtimes"]["tl2cgen"]
    assert check["verified"] is True, check["reason"]
    # the 300 training rows, plus a NaN copy per transformed column (3 scaled, 4 one-hot)
    assert check["rows_checked"] == features.num_rows * 8
    assert check["max_abs_diff"] <= check["tolerance"] == 1e-12
    assert check["decisions_differing"] == 0


def hide_the_accel_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tl2cgen", None)  # import tl2cgen raises ImportError


@pytest.mark.parametrize(
    ("estimator", "setup", "reason"),
    [
        pytest.param(
            make_estimator,
            None,
            "LogisticRegression is not a HistGradientBoostingClassifier",
            id="not-a-tree-model",
        ),
        pytest.param(
            make_trees,
            hide_the_accel_extra,
            "treelite/tl2cgen not installed (",
            id="accel-extra-missing",
        ),
    ],
)
def test_an_unsupported_runtime_is_recorded_not_fatal(
    model_registry,
    make_context,
    monkeypatch,
    write_parquet,
    features,
    labels,
    estimator,
    setup,
    reason,
):
    if setup is not None:
        setup(monkeypatch)
    grid = [("a", {"C": 0.1, "max_iter": 5}), ("b", {"C": 1.0, "max_iter": 10})]
    operator = train(write_parquet("labels", labels), make_estimator=estimator, grid=grid)

    result = render_and_execute(operator, make_context())

    assert len(result["registered"]) == 2
    for version in model_registry.list_versions(MODEL):
        runtimes = model_registry.record(MODEL, version)["runtimes"]
        assert reason in runtimes["tl2cgen"]["reason"]
        assert runtimes == {
            "tl2cgen": {
                "verified": False,
                "tolerance": 1e-12,
                "rows_checked": 0,
                "max_abs_diff": None,
                "decisions_differing": None,
                "reason": runtimes["tl2cgen"]["reason"],
            }
        }


def test_runtime_checks_can_be_turned_off(
    model_registry, make_context, write_parquet, features, labels
):
    operator = train(write_parquet("labels", labels), aliases=["champion"], check_runtimes=False)

    render_and_execute(operator, make_context())

    assert model_registry.record(MODEL, "v0001")["runtimes"] == {}


# -- refusals -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad_labels", "error", "message"),
    [
        pytest.param(
            lambda t: t.rename_columns(["customer_id", "label"]),
            ContractError,
            "ContractError: The training labels lack column(s) defaulted; they have "
            "customer_id, label.",
            id="missing-label-column",
        ),
        pytest.param(
            lambda t: t.drop_columns(["customer_id"]),
            ContractError,
            "ContractError: The training labels lack column(s) customer_id; they have defaulted.",
            id="missing-entity-key",
        ),
        pytest.param(
            lambda t: t.set_column(1, "defaulted", pa.array([0] * t.num_rows, pa.int64())),
            ArgumentError,
            "ArgumentError: Training labels must contain both classes. Got only [0].",
            id="one-class",
        ),
    ],
)
def test_unusable_labels_fail_and_register_nothing(
    model_registry, make_context, write_parquet, features, labels, bad_labels, error, message
):
    path = write_parquet("labels", bad_labels(labels))

    with pytest.raises(AirflowFailException, match=re.escape(message)) as excinfo:
        render_and_execute(train(path), make_context())

    assert isinstance(excinfo.value.__cause__, error)
    assert model_registry.list_models() == []


def test_customers_without_labels_are_left_out(
    model_registry, make_context, write_parquet, features, labels
):
    path = write_parquet("labels", labels.slice(0, 200))

    result = render_and_execute(train(path), make_context())

    record = model_registry.record(MODEL, result["registered"][0]["version"])
    assert record["training_data"]["rows"] == 200


def test_a_bad_alias_registers_nothing(
    model_registry, make_context, write_parquet, features, labels
):
    path = write_parquet("labels", labels)

    # refused at __init__ (ArgumentError) or before the first register (AirflowFailException)
    with pytest.raises(
        (ArgumentError, AirflowFailException), match=re.escape("An alias name must start")
    ):
        render_and_execute(train(path, aliases=["champion", "not valid"]), make_context())

    assert model_registry.list_models() == []


# -- arguments ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(
            {"make_estimator": "LogisticRegression"},
            "The 'make_estimator' parameter of TrainModelOperator must be callable. "
            "Got 'LogisticRegression' instead.",
            id="estimator-not-callable",
        ),
        pytest.param(
            {"grid": GRID[:1]},
            "TrainModelOperator has 2 aliases to give but a grid of 1 candidate(s); give at "
            "least as many candidates as aliases.",
            id="grid-shorter-than-aliases",
        ),
        pytest.param(
            {"grid": GRID, "aliases": ["a", "b", "c", "d"]},
            "TrainModelOperator has 4 aliases to give but a grid of 3 candidate(s)",
            id="more-aliases-than-candidates",
        ),
        pytest.param(
            {"model_output": {"score": "p", "threshold": 0.5}},
            "The 'model_output' parameter of TrainModelOperator must name the 'entity_key' "
            "joining features and labels. Got {'score': 'p', 'threshold': 0.5} instead.",
            id="output-without-entity-key",
        ),
        pytest.param(
            {"folds": 0},
            "The 'folds' parameter of TrainModelOperator must be an int >= 2. Got 0 instead.",
            id="no-folds",
        ),
        pytest.param(
            {"check_runtimes": "yes"},
            "The 'check_runtimes' parameter of TrainModelOperator must be a bool. "
            "Got 'yes' instead.",
            id="check-runtimes-not-a-bool",
        ),
        pytest.param(
            {"folds": 1},
            "The 'folds' parameter of TrainModelOperator must be an int >= 2.",
            id="one-fold",
        ),
    ],
)
def test_bad_arguments_are_refused_at_init(kwargs, message):
    with pytest.raises(ArgumentError, match=re.escape(message)):
        train("/staged/labels.parquet", **kwargs)
