"""BatchScoreOperator: a feature partition scored by a verified registered model, shadowed."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pytest
from airflow.sdk import Asset
from airflow.sdk.exceptions import AirflowFailException
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from airflow_mlops.contract import FeatureContract
from airflow_mlops.exceptions import ArgumentError, ChecksumMismatchError, ModelNotFoundError
from airflow_mlops.hooks.feature_store import feature_table_asset
from airflow_mlops.models import accelerate
from airflow_mlops.models.accelerate import registration_check
from airflow_mlops.models.artifacts import load_model
from airflow_mlops.models.layout import ARTIFACT_FILE
from airflow_mlops.operators import BatchScoreOperator
from airflow_mlops.scoring import batches as scoring_batches
from airflow_mlops.scoring.shadow import shadow_mask
from tests.operators.support import render_and_execute

if TYPE_CHECKING:
    from airflow_mlops.models.registry import ModelRegistry
    from airflow_mlops.store.feature_store import FeatureStore

MODEL = "credit_risk"
FEATURES = "customer_features"
SCORES = "customer_scores"
SHADOW = "customer_scores_shadow"
PARTITION = "2026-01-04"  # the default run's partition (logical date 2026-01-05, lag 1)
CONTRACT = FeatureContract.from_dict(
    {
        "income": ("float64", False),
        "debt": ("float64", False),
        "age": ("int64", False),
        "region": ("string", False),
    }
)
#: the challenger of the "wider model" test also reads a column the champion does not
WIDER_CONTRACT = FeatureContract.from_dict(
    {**{f.name: (f.type, f.nullable) for f in CONTRACT.fields}, "txn_count": ("int64", False)}
)
OUTPUT = {
    "score": "default_probability",
    "threshold": 0.3,
    "positive": "decline",
    "negative": "approve",
    "entity_key": "customer_id",
}
SCORES_COLUMNS = ["customer_id", "default_probability", "decision", "model_name", "model_version"]


class ExplodingModel:
    """A challenger that registers (it has ``predict_proba``) but fails to score."""

    def predict_proba(self, frame: Any) -> Any:
        raise RuntimeError("challenger exploded")


def pipeline(contract: FeatureContract, max_iter: int) -> Pipeline:
    numeric = [name for name in contract.names if name != "region"]
    return Pipeline(
        [
            (
                "features",
                ColumnTransformer(
                    [
                        ("numeric", StandardScaler(), numeric),
                        ("region", OneHotEncoder(handle_unknown="ignore"), ["region"]),
                    ]
                ),
            ),
            ("model", HistGradientBoostingClassifier(max_iter=max_iter, random_state=0)),
        ]
    )


def fitted(credit_data, contract: FeatureContract, max_iter: int) -> Pipeline:
    features, labels = credit_data
    frame = features.select(contract.names).to_pandas()
    return pipeline(contract, max_iter).fit(frame, labels.column("defaulted").to_numpy())


@pytest.fixture(scope="module")
def champion_model(credit_data) -> Pipeline:
    return fitted(credit_data, CONTRACT, max_iter=20)


@pytest.fixture(scope="module")
def challenger_model(credit_data) -> Pipeline:
    return fitted(credit_data, CONTRACT, max_iter=5)


@pytest.fixture
def features(credit_data, feature_store: FeatureStore) -> pa.Table:
    """The credit features, published as the run's partition of the feature table."""
    table = credit_data[0]
    publish_features(feature_store, table)
    return table


def publish_features(store: FeatureStore, table: pa.Table) -> dict[str, Any]:
    return store.publish_partition(FEATURES, PARTITION, table.to_batches(), schema=table.schema)


def register(
    registry: ModelRegistry,
    model: Any,
    aliases: list[str],
    contract: FeatureContract = CONTRACT,
    runtimes: dict[str, Any] | None = None,
) -> str:
    record = registry.register(
        MODEL, model, input_contract=contract, output=OUTPUT, aliases=aliases, runtimes=runtimes
    )
    return str(record["version"])


def probabilities(model: Any, table: pa.Table, contract: FeatureContract = CONTRACT) -> np.ndarray:
    return model.predict_proba(table.select(contract.names).to_pandas())[:, 1]


def score(**kwargs: Any) -> BatchScoreOperator:
    kwargs.setdefault("task_id", "score")
    kwargs.setdefault("features_table", FEATURES)
    kwargs.setdefault("model_name", MODEL)
    kwargs.setdefault("output_table", SCORES)
    kwargs.setdefault("workers", 1)
    kwargs.setdefault("batch_size", 64)
    return BatchScoreOperator(**kwargs)


# -- champion scores ------------------------------------------------------------------


@pytest.mark.parametrize(
    "workers", [pytest.param(1, id="in-process"), pytest.param(2, id="worker-pool")]
)
def test_scores_are_the_models_positive_probability(
    feature_store, model_registry, make_context, features, champion_model, workers
):
    version = register(model_registry, champion_model, ["champion"])

    result = render_and_execute(score(workers=workers), make_context())

    scores = feature_store.read_partition(SCORES, PARTITION)
    expected = probabilities(champion_model, features)
    assert scores.column_names == SCORES_COLUMNS
    assert scores.column("customer_id").equals(features.column("customer_id"))
    np.testing.assert_array_equal(scores.column("default_probability").to_numpy(), expected)
    assert set(scores.column("model_name").to_pylist()) == {MODEL}
    assert set(scores.column("model_version").to_pylist()) == {version}
    assert result["rows"] == scores.num_rows == features.num_rows


@pytest.mark.parametrize(
    ("threshold", "applied"),
    [
        pytest.param(None, 0.3, id="model-record-threshold"),
        pytest.param(0.6, 0.6, id="threshold-override"),
    ],
)
def test_decision_is_positive_above_the_threshold(
    feature_store, model_registry, make_context, features, champion_model, threshold, applied
):
    register(model_registry, champion_model, ["champion"])

    render_and_execute(score(threshold=threshold), make_context())

    scores = feature_store.read_partition(SCORES, PARTITION)
    expected = np.where(probabilities(champion_model, features) > applied, "decline", "approve")
    assert scores.column("decision").to_pylist() == expected.tolist()
    assert {"decline", "approve"} <= set(expected.tolist())  # the threshold splits the rows


@pytest.mark.parametrize(
    ("kwargs", "params", "scored_by"),
    [
        pytest.param({}, {}, "champion", id="default-alias"),
        pytest.param({"model_alias": "challenger"}, {}, "challenger", id="named-alias"),
        pytest.param({"model_version": "v0001"}, {}, "challenger", id="pinned-version"),
        pytest.param(
            {"model_version": "{{ params.version }}"},
            {"version": "v0001"},
            "challenger",
            id="templated-version",
        ),
        pytest.param(
            {"model_alias": "{{ params.alias }}"},
            {"alias": "challenger"},
            "challenger",
            id="templated-alias",
        ),
    ],
)
def test_scores_with_the_alias_or_the_pinned_version(
    feature_store,
    model_registry,
    make_context,
    features,
    champion_model,
    challenger_model,
    kwargs,
    params,
    scored_by,
):
    # v0001 is the challenger's model, v0002 the champion's: the pin is not the champion
    models = {"challenger": challenger_model, "champion": champion_model}
    versions = {alias: register(model_registry, model, [alias]) for alias, model in models.items()}
    model, version = models[scored_by], versions[scored_by]

    result = render_and_execute(score(**kwargs), make_context(params=params))

    scores = feature_store.read_partition(SCORES, PARTITION)
    np.testing.assert_array_equal(
        scores.column("default_probability").to_numpy(), probabilities(model, features)
    )
    assert set(scores.column("model_version").to_pylist()) == {version}
    assert result["model_version"] == version


def test_sets_the_outlet_event_extra_and_returns_a_small_summary(
    feature_store, model_registry, make_context, features, champion_model
):
    version = register(model_registry, champion_model, ["champion"])
    operator = score()
    context = make_context()

    result = render_and_execute(operator, context)

    manifest = feature_store.manifest(SCORES, PARTITION)
    assert result == {
        "table": SCORES,
        "partition": PARTITION,
        "rows": features.num_rows,
        "version": manifest["version"],
        "model_version": version,
        "content_sha256": manifest["content_sha256"],
        "runtime": {
            "requested": "auto",
            "name": "sklearn",
            "tolerance": 1e-12,
            "rows_checked": 0,
            "max_abs_diff": None,
            "decisions_differing": None,
            "reason": "the model's record has no tl2cgen check (registered without runtime checks)",
        },
    }
    assert len(json.dumps(result)) < 600  # a reference to the scores, never the scores
    assert context["outlet_events"][operator.scores_asset].extra == {
        "partition": PARTITION,
        "rows": features.num_rows,
        "version": manifest["version"],
        "model_version": version,
    }


def test_manifest_lineage_names_the_features_and_the_model(
    feature_store, model_registry, make_context, features, champion_model
):
    register(model_registry, champion_model, ["champion"])
    record = model_registry.record(MODEL, "v0001")

    render_and_execute(score(), make_context())

    lineage = feature_store.manifest(SCORES, PARTITION)["lineage"]
    assert lineage["features"] == {
        "table": FEATURES,
        "version": feature_store.manifest(FEATURES, PARTITION)["version"],
    }
    assert lineage["model"] == {"name": MODEL, "version": "v0001", "sha256": record["sha256"]}


@pytest.mark.parametrize(
    "challenger",
    [pytest.param(None, id="champion-only"), pytest.param("challenger", id="with-shadow")],
)
def test_an_empty_partition_publishes_empty_scores(
    feature_store, model_registry, make_context, credit_data, champion_model, challenger
):
    publish_features(feature_store, credit_data[0].slice(0, 0))
    register(model_registry, champion_model, ["champion", "challenger"])

    result = render_and_execute(score(challenger_alias=challenger), make_context())

    scores = feature_store.read_partition(SCORES, PARTITION)
    assert result["rows"] == scores.num_rows == 0
    assert [(f.name, f.type) for f in scores.schema] == [
        ("customer_id", pa.int64()),
        ("default_probability", pa.float64()),
        ("decision", pa.string()),
        ("model_name", pa.string()),
        ("model_version", pa.string()),
    ]
    if challenger:
        assert result["shadow"]["status"] == "ok"
        assert result["shadow"]["rows_compared"] == 0
        assert feature_store.read_partition(SHADOW, PARTITION).column_names == SCORES_COLUMNS


# -- refusals -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("damage", "message", "columns"),
    [
        pytest.param(
            lambda t: t.drop_columns(["debt"]),
            "missing 1 column(s): debt",
            {"missing_columns": ["debt"]},
            id="missing-input",
        ),
        pytest.param(
            lambda t: t.set_column(
                t.column_names.index("age"), "age", t.column("age").cast(pa.string())
            ),
            "mistyped 1 column(s): age is string, declared int64",
            {"mistyped_columns": {"age": ("string", "int64")}},
            id="mistyped-input",
        ),
        pytest.param(
            lambda t: t.drop_columns(["customer_id"]),
            "The model input has no entity key column 'customer_id'",
            {"missing_columns": ["customer_id"]},
            id="missing-entity-key",
        ),
    ],
)
def test_contract_mismatch_fails_and_keeps_the_published_scores(
    feature_store, model_registry, make_context, features, champion_model, damage, message, columns
):
    register(model_registry, champion_model, ["champion"])
    good = render_and_execute(score(), make_context())
    before = feature_store.read_partition(SCORES, PARTITION)
    publish_features(feature_store, damage(features))

    with pytest.raises(AirflowFailException, match=re.escape(message)) as excinfo:
        render_and_execute(score(), make_context(try_number=2))

    assert str(excinfo.value).startswith("ContractError: ")
    for attribute, value in columns.items():
        assert getattr(excinfo.value.__cause__, attribute) == value
    assert feature_store.list_versions(SCORES, PARTITION) == [good["version"]]
    assert feature_store.read_partition(SCORES, PARTITION).equals(before)


def test_contract_mismatch_on_the_first_run_publishes_nothing(
    feature_store, model_registry, make_context, features, champion_model
):
    register(model_registry, champion_model, ["champion"])
    publish_features(feature_store, features.drop_columns(["income", "region"]))

    message = "missing 2 column(s): income, region"
    with pytest.raises(AirflowFailException, match=re.escape(message)):
        render_and_execute(score(), make_context())

    assert feature_store.list_partitions(SCORES) == []


def test_a_tampered_artifact_fails_before_it_is_unpickled(
    feature_store, model_registry, make_context, features, champion_model, monkeypatch
):
    import joblib

    register(model_registry, champion_model, ["champion"])
    artifact = f"{model_registry.root}/{MODEL}/v0001/{ARTIFACT_FILE}"
    with open(artifact, "r+b") as handle:
        handle.seek(200)
        byte = handle.read(1)
        handle.seek(200)
        handle.write(bytes([byte[0] ^ 0xFF]))
    unpickled = []
    monkeypatch.setattr(joblib, "load", lambda *args, **kwargs: unpickled.append(args))

    with pytest.raises(
        AirflowFailException,
        match=re.escape(
            f"ChecksumMismatchError: The artifact of model {MODEL!r} version v0001 at "
            f"{artifact} was modified after registration"
        ),
    ) as excinfo:
        render_and_execute(score(), make_context())

    assert isinstance(excinfo.value.__cause__, ChecksumMismatchError)
    assert excinfo.value.__cause__.path == artifact
    assert "It was not loaded" in str(excinfo.value)
    assert unpickled == []
    assert feature_store.list_partitions(SCORES) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(
            {"model_alias": "gold"},
            f"Model {MODEL!r} has no alias 'gold'. Aliases: challenger=v0002, champion=v0001; "
            "versions: v0001, v0002.",
            id="missing-alias",
        ),
        pytest.param(
            {"model_version": "v0007"},
            f"Model {MODEL!r} has no version v0007 in the registry at",
            id="missing-version",
        ),
        pytest.param(
            {"model_name": "fraud"},
            "No model 'fraud' in the registry at",
            id="missing-model",
        ),
    ],
)
def test_a_missing_model_fails_naming_what_exists(
    feature_store,
    model_registry,
    make_context,
    features,
    champion_model,
    challenger_model,
    kwargs,
    message,
):
    register(model_registry, champion_model, ["champion"])
    register(model_registry, challenger_model, ["challenger"])

    with pytest.raises(AirflowFailException, match=re.escape(message)) as excinfo:
        render_and_execute(score(**kwargs), make_context())

    assert isinstance(excinfo.value.__cause__, ModelNotFoundError)
    assert feature_store.list_partitions(SCORES) == []


# -- runtime -------------------------------------------------------------------------


def verified(model: Any, features: pa.Table) -> dict[str, Any]:
    """``runtimes`` as TrainModelOperator records them: checked on the training rows."""
    frame = features.select(CONTRACT.names).to_pandas()
    runtimes = registration_check(model, frame, threshold=OUTPUT["threshold"])
    assert runtimes["tl2cgen"]["verified"], runtimes
    return runtimes


def scorer_models(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The class names of the models ``score_batches`` is given (in process or as bytes)."""
    seen: list[str] = []
    real = scoring_batches.score_batches

    def spy(batches: Any, *, model: Any = None, artifact: Any = None, **kwargs: Any) -> Any:
        seen.append(type(model if model is not None else load_model(artifact)).__name__)
        return real(batches, model=model, artifact=artifact, **kwargs)

    monkeypatch.setattr(scoring_batches, "score_batches", spy)
    return seen


@pytest.mark.parametrize(
    "workers", [pytest.param(1, id="in-process"), pytest.param(2, id="worker-pool")]
)
def test_auto_runtime_scores_a_verified_champion_compiled(
    feature_store, model_registry, make_context, monkeypatch, features, champion_model, workers
):
    pytest.importorskip("tl2cgen")
    runtimes = verified(champion_model, features)
    register(model_registry, champion_model, ["champion"], runtimes=runtimes)
    scored_by = scorer_models(monkeypatch)

    result = render_and_execute(score(workers=workers), make_context())

    scores = feature_store.read_partition(SCORES, PARTITION)
    expected = probabilities(champion_model, features)
    np.testing.assert_allclose(
        scores.column("default_probability").to_numpy(), expected, rtol=0, atol=1e-12
    )
    decisions = np.where(expected > OUTPUT["threshold"], "decline", "approve")
    assert scores.column("decision").to_pylist() == decisions.tolist()
    runtime = result["runtime"]
    assert (runtime["requested"], runtime["name"]) == ("auto", "tl2cgen")
    # the partition's 300 rows, plus a NaN copy per transformed column (3 scaled, 4 one-hot)
    assert runtime["rows_checked"] == features.num_rows * 8
    assert runtime["max_abs_diff"] <= runtime["tolerance"] == 1e-12
    assert runtime["decisions_differing"] == 0
    assert scored_by == ["CompiledTreeModel"]
    assert feature_store.manifest(SCORES, PARTITION)["lineage"]["runtime"] == runtime


def break_the_compiler(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_compiler(*args: Any) -> bytes:
        raise RuntimeError("gcc not found")

    monkeypatch.setattr(accelerate, "_compile_library", no_compiler)


@pytest.mark.parametrize(
    ("runtime", "runtimes", "setup", "reason"),
    [
        pytest.param(
            "sklearn", "verified", None, "runtime='sklearn' was requested", id="sklearn-asked"
        ),
        pytest.param(
            "auto",
            None,
            None,
            "the model's record has no tl2cgen check (registered without runtime checks)",
            id="record-without-runtimes",
        ),
        pytest.param(
            "auto",
            {"tl2cgen": {"verified": False, "reason": "LogisticRegression is not a HGB"}},
            None,
            "tl2cgen was not verified at registration: LogisticRegression is not a HGB",
            id="not-verified-at-registration",
        ),
        pytest.param(
            "auto",
            "verified",
            break_the_compiler,
            "compilation or check failed: RuntimeError: gcc not found",
            id="compiling-here-fails",
        ),
    ],
)
def test_scikit_learn_scores_unless_the_compiled_runtime_is_verified(
    feature_store,
    model_registry,
    make_context,
    monkeypatch,
    features,
    champion_model,
    runtime,
    runtimes,
    setup,
    reason,
):
    if runtimes == "verified":
        pytest.importorskip("tl2cgen")
        runtimes = verified(champion_model, features)
    register(model_registry, champion_model, ["champion"], runtimes=runtimes)
    if setup is not None:
        setup(monkeypatch)
    scored_by = scorer_models(monkeypatch)

    result = render_and_execute(score(runtime=runtime), make_context())

    np.testing.assert_array_equal(
        feature_store.read_partition(SCORES, PARTITION).column("default_probability").to_numpy(),
        probabilities(champion_model, features),
    )
    assert (result["runtime"]["requested"], result["runtime"]["name"]) == (runtime, "sklearn")
    assert result["runtime"]["reason"] == reason
    assert scored_by == ["Pipeline"]
    assert feature_store.manifest(SCORES, PARTITION)["lineage"]["runtime"] == result["runtime"]


def test_an_empty_partition_keeps_scikit_learn(
    feature_store, model_registry, make_context, credit_data, champion_model
):
    pytest.importorskip("tl2cgen")
    runtimes = verified(champion_model, credit_data[0])
    publish_features(feature_store, credit_data[0].slice(0, 0))
    register(model_registry, champion_model, ["champion"], runtimes=runtimes)

    result = render_and_execute(score(), make_context())

    assert result["rows"] == 0
    assert result["runtime"]["name"] == "sklearn"
    assert result["runtime"]["reason"] == (
        "no check rows: nothing to compare the compiled model with"
    )


# -- shadow scoring -------------------------------------------------------------------


@pytest.mark.parametrize(
    "workers", [pytest.param(1, id="in-process"), pytest.param(2, id="worker-pool")]
)
def test_challenger_scores_the_seeded_sample_beside_the_champion(
    feature_store, model_registry, make_context, features, champion_model, challenger_model, workers
):
    register(model_registry, champion_model, ["champion"])
    challenger_version = register(model_registry, challenger_model, ["challenger"])
    operator = score(challenger_alias="challenger", shadow_fraction=0.3, workers=workers)
    context = make_context()

    result = render_and_execute(operator, context)

    mask = shadow_mask(features.column("customer_id"), 0.3, seed=0)
    sample = features.filter(mask)
    shadow = feature_store.read_partition(SHADOW, PARTITION)
    assert 0 < sample.num_rows < features.num_rows
    assert shadow.column_names == SCORES_COLUMNS
    assert shadow.column("customer_id").equals(sample.column("customer_id"))
    np.testing.assert_array_equal(
        shadow.column("default_probability").to_numpy(), probabilities(challenger_model, sample)
    )
    assert set(shadow.column("model_version").to_pylist()) == {challenger_version}
    np.testing.assert_array_equal(
        feature_store.read_partition(SCORES, PARTITION).column("default_probability").to_numpy(),
        probabilities(champion_model, features),
    )
    report = result["shadow"]
    assert report["status"] == "ok"
    assert report["error"] is None
    assert report["rows_compared"] == sample.num_rows
    assert (report["table"], report["version"]) == (
        SHADOW,
        feature_store.manifest(SHADOW, PARTITION)["version"],
    )
    assert "bins" not in report
    assert context["outlet_events"][operator.shadow_asset].extra == {
        "partition": PARTITION,
        "rows": sample.num_rows,
        "version": report["version"],
    }


def test_shadow_report_is_stored_in_the_shadow_manifest(
    feature_store, model_registry, make_context, features, champion_model, challenger_model
):
    register(model_registry, champion_model, ["champion"])
    register(model_registry, challenger_model, ["challenger"])

    result = render_and_execute(score(challenger_alias="challenger"), make_context())

    stored = feature_store.manifest(SHADOW, PARTITION)["lineage"]["shadow_report"]
    assert stored["rows_compared"] == result["shadow"]["rows_compared"] == features.num_rows
    assert stored["psi"] == result["shadow"]["psi"]
    assert "bins" in stored


@pytest.mark.parametrize(
    ("challenger_alias", "error"),
    [
        pytest.param("challenger", "RuntimeError: challenger exploded", id="scoring-fails"),
        pytest.param(
            "contender",
            f"ModelNotFoundError: Model {MODEL!r} has no alias 'contender'.",
            id="missing-alias",
        ),
    ],
)
def test_a_failing_challenger_is_reported_not_fatal(
    feature_store,
    model_registry,
    make_context,
    features,
    champion_model,
    challenger_alias,
    error,
):
    register(model_registry, champion_model, ["champion"])
    register(model_registry, ExplodingModel(), ["challenger"])

    result = render_and_execute(
        score(challenger_alias=challenger_alias, shadow_fraction=0.3), make_context()
    )

    np.testing.assert_array_equal(
        feature_store.read_partition(SCORES, PARTITION).column("default_probability").to_numpy(),
        probabilities(champion_model, features),
    )
    assert result["rows"] == features.num_rows
    assert result["shadow"]["status"] == "failed"
    assert error in result["shadow"]["error"]
    assert feature_store.list_partitions(SHADOW) == []


def test_a_challenger_may_read_columns_the_champion_does_not(
    feature_store, model_registry, make_context, features, champion_model, credit_data
):
    wider = fitted(credit_data, WIDER_CONTRACT, max_iter=5)
    register(model_registry, champion_model, ["champion"])
    register(model_registry, wider, ["challenger"], contract=WIDER_CONTRACT)

    result = render_and_execute(score(challenger_alias="challenger"), make_context())

    assert result["shadow"]["error"] is None
    np.testing.assert_array_equal(
        feature_store.read_partition(SHADOW, PARTITION).column("default_probability").to_numpy(),
        probabilities(wider, features, WIDER_CONTRACT),
    )


# -- arguments and outlets ------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(
            {"shadow_fraction": 0},
            "The 'shadow_fraction' parameter of BatchScoreOperator must be a float in (0, 1]. "
            "Got 0 instead.",
            id="shadow-fraction-zero",
        ),
        pytest.param(
            {"shadow_fraction": 1.5},
            "The 'shadow_fraction' parameter of BatchScoreOperator must be a float in (0, 1]. "
            "Got 1.5 instead.",
            id="shadow-fraction-above-one",
        ),
        pytest.param(
            {"threshold": 2},
            "The 'threshold' parameter of BatchScoreOperator must be a float in [0, 1]. "
            "Got 2 instead.",
            id="threshold-above-one",
        ),
        pytest.param(
            {"workers": 0},
            "The 'workers' parameter of BatchScoreOperator must be an int >= 1. Got 0 instead.",
            id="no-workers",
        ),
        pytest.param(
            {"batch_size": 0},
            "The 'batch_size' parameter of BatchScoreOperator must be an int >= 1. Got 0 instead.",
            id="empty-batches",
        ),
        pytest.param(
            {"features_table": "../features"},
            "BatchScoreOperator features_table: A feature table name must start with a letter",
            id="features-table-path",
        ),
        pytest.param(
            {"output_table": "scores-v2"},
            "BatchScoreOperator output_table: A feature table name must start with a letter",
            id="output-table-dash",
        ),
        pytest.param(
            {"shadow_table": "shadow/scores"},
            "BatchScoreOperator shadow_table: A feature table name must start with a letter",
            id="shadow-table-slash",
        ),
        pytest.param(
            {"threshold": True},
            "The 'threshold' parameter of BatchScoreOperator must be a float in [0, 1]. "
            "Got True instead.",
            id="threshold-bool",
        ),
        pytest.param(
            {"challenger_alias": "challenger", "shadow_seed": -1},
            "The 'shadow_seed' parameter of BatchScoreOperator must be an int >= 0. "
            "Got -1 instead.",
            id="negative-shadow-seed",
        ),
        pytest.param(
            {"challenger_alias": "challenger", "shadow_table": SCORES},
            "BatchScoreOperator needs distinct tables",
            id="shadow-table-is-output-table",
        ),
        pytest.param(
            {"runtime": "tl2cgen"},
            "The 'runtime' parameter of BatchScoreOperator must be one of 'auto', 'sklearn'. "
            "Got 'tl2cgen' instead.",
            id="unknown-runtime",
        ),
    ],
)
def test_bad_arguments_are_refused_at_init(kwargs, message):
    with pytest.raises(ArgumentError, match=re.escape(message)):
        score(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param({}, [SCORES], id="champion-only"),
        pytest.param({"challenger_alias": "challenger"}, [SCORES, SHADOW], id="with-challenger"),
        pytest.param(
            {"challenger_alias": "challenger", "shadow_table": "challenger_scores"},
            [SCORES, "challenger_scores"],
            id="named-shadow-table",
        ),
    ],
)
def test_outlets_declare_the_scores_and_shadow_assets(kwargs, expected):
    operator = score(**kwargs)

    assert operator.outlets == [feature_table_asset(table) for table in expected]
    assert operator.scores_asset == feature_table_asset(SCORES)


def test_outlets_given_by_the_user_are_kept_once():
    report = Asset(name="scores_report", uri="file:///reports/scores.html")
    declared = [feature_table_asset(SCORES), feature_table_asset(SHADOW)]

    operator = score(challenger_alias="challenger", outlets=[report, *declared])

    assert operator.outlets == [report, *declared]


def test_outlets_follow_the_feature_store_connection():
    operator = score(feature_store_conn_id="lake")

    assert operator.outlets == [Asset(name=SCORES, uri=f"feature-store://lake/{SCORES}")]
