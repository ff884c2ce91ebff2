from __future__ import annotations

import dataclasses
import json
import os
import re
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, PolynomialFeatures, StandardScaler

from airflow_mlops.contract import FeatureContract
from airflow_mlops.demo.credit_model import INPUT_CONTRACT
from airflow_mlops.demo.synthetic import fitted_demo_model, synthetic_customers
from airflow_mlops.exceptions import (
    ArgumentError,
    ContractError,
    ModelLoadError,
    ScoringError,
    is_retryable,
)
from airflow_mlops.models.accelerate import (
    CompiledTreeModel,
    compile_tree_model,
    unverified_reason,
)
from airflow_mlops.models.artifacts import dump_model, load_model
from airflow_mlops.models.records import ModelOutput
from airflow_mlops.scoring.batches import (
    check_model_inputs,
    probabilities,
    score_batches,
)

if TYPE_CHECKING:
    import pandas as pd

FEATURES = ["income", "age", "history_score", "region"]
NUMERIC = ["income", "age", "history_score"]
CONTRACT = FeatureContract.from_dict(
    {"income": "float64", "age": "int64", "history_score": "float64", "region": "string"}
)
OUTPUT = {"threshold": 0.3, "positive": "decline", "negative": "approve"}
OUTPUT_FIELDS = {f.name for f in dataclasses.fields(ModelOutput)}


def _table(n: int, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "customer_id": np.arange(seed * 10**6, seed * 10**6 + n, dtype=np.int64),
            "income": rng.lognormal(10.8, 0.5, n),
            "age": rng.integers(18, 90, n),
            "history_score": rng.uniform(300, 850, n),
            "region": np.asarray(["north", "south", "east", "west"])[rng.integers(0, 4, n)],
        }
    )


def _label(frame: pd.DataFrame, seed: int = 1) -> np.ndarray:
    logit = -1 - (frame.history_score - 575) / 100 + np.where(frame.region == "south", 0.8, 0)
    return (np.random.default_rng(seed).random(len(frame)) < 1 / (1 + np.exp(-logit))).astype(int)


def _pipeline(final) -> Pipeline:
    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), NUMERIC),
            ("cat", OneHotEncoder(sparse_output=False, handle_unknown="ignore"), ["region"]),
        ]
    )
    return Pipeline([("prep", prep), ("model", final)])


@pytest.fixture(scope="module")
def data() -> pa.Table:
    return _table(2_000, seed=2)


@pytest.fixture(scope="module")
def hgb() -> Pipeline:
    train = _table(3_000, seed=1).to_pandas()
    model = HistGradientBoostingClassifier(max_iter=15, random_state=0)
    return _pipeline(model).fit(train[FEATURES], _label(train))


@pytest.fixture(scope="module")
def logistic() -> Pipeline:
    train = _table(1_000, seed=1).to_pandas()
    return _pipeline(LogisticRegression()).fit(train[FEATURES], _label(train))


def _expected(model, table: pa.Table) -> np.ndarray:
    return model.predict_proba(table.select(FEATURES).to_pandas())[:, 1]


def _output(**fields) -> ModelOutput:
    return ModelOutput(
        **{"entity_key": "customer_id", "score_column": "default_probability", **OUTPUT, **fields}
    )


def _score(batches, **kwargs) -> pa.Table:
    output = _output(**{k: kwargs.pop(k) for k in OUTPUT_FIELDS & kwargs.keys()})
    kwargs = {"feature_names": FEATURES, "output": output, **kwargs}
    return pa.Table.from_batches([s.batch for s in score_batches(batches, **kwargs)])


# ---------------------------------------------------------------- check_model_inputs


def test_check_model_inputs_returns_contract_columns_then_key(data):
    schema = data.schema.append(pa.field("extra", pa.int64()))
    assert check_model_inputs(schema, CONTRACT, entity_key="customer_id") == [
        *CONTRACT.names,
        "customer_id",
    ]


def test_check_model_inputs_accepts_integers_for_float_features(data):
    schema = data.schema.set(1, pa.field("income", pa.int32()))
    check_model_inputs(schema, CONTRACT, entity_key="customer_id")


def test_check_model_inputs_names_missing_and_mistyped(data):
    schema = pa.schema(
        [("customer_id", pa.int64()), ("income", pa.string()), ("age", pa.int64()),
         ("region", pa.string())]
    )  # fmt: skip
    with pytest.raises(ContractError) as info:
        check_model_inputs(schema, CONTRACT, entity_key="customer_id")
    assert info.value.missing_columns == ["history_score"]
    assert info.value.mistyped_columns == {"income": ("string", "float64")}
    assert "missing 1 column(s): history_score" in str(info.value)
    assert "income is string, declared float64" in str(info.value)


def test_check_model_inputs_names_extra_columns_when_not_allowed(data):
    schema = data.schema.append(pa.field("extra", pa.int64()))
    with pytest.raises(ContractError, match=re.escape("unexpected 1 column(s): extra")) as info:
        check_model_inputs(schema, CONTRACT, entity_key="customer_id", allow_extra=False)
    assert info.value.unexpected_columns == ["extra"]


def test_check_model_inputs_names_a_missing_entity_key(data):
    schema = data.schema.remove(0).remove(0)  # customer_id and income
    message = "no entity key column 'customer_id'"
    with pytest.raises(ContractError, match=re.escape(message)) as info:
        check_model_inputs(schema, CONTRACT, entity_key="customer_id")
    assert info.value.missing_columns == ["income", "customer_id"]


# ---------------------------------------------------------------- in this process


@pytest.mark.parametrize("threshold", [0.0, 0.3, 1.0])
def test_in_process_scores_equal_predict_proba_in_order(hgb, data, threshold):
    out = _score(data.to_batches(max_chunksize=37), model=hgb, threshold=threshold)
    expected = _expected(hgb, data)
    assert out.column("customer_id").equals(data.column("customer_id"))
    assert np.array_equal(out.column("default_probability").to_numpy(), expected)
    decisions = np.where(expected > threshold, "decline", "approve")
    assert out.column("decision").to_pylist() == decisions.tolist()
    assert out.schema.names == ["customer_id", "default_probability", "decision"]
    assert out.schema.field("default_probability").type == pa.float64()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_rows_score_does_not_depend_on_its_batch(data, workers):
    """A linear model scores through a BLAS matrix-vector product, whose kernels round the
    rows left over after a block of rows differently (seen with 8 or more model inputs)."""
    train = _table(1_000, seed=1).to_pandas()
    numeric = make_pipeline(StandardScaler(), PolynomialFeatures(2))  # 10 columns, + 4 one-hot
    prep = ColumnTransformer([("num", numeric, NUMERIC), ("cat", OneHotEncoder(), ["region"])])
    model = Pipeline([("prep", prep), ("model", LogisticRegression(max_iter=1_000))])
    model.fit(train[FEATURES], _label(train))

    whole = _score([data.combine_chunks().to_batches()[0]], model=model, workers=workers)
    small = _score(data.to_batches(max_chunksize=3), model=model, workers=workers)

    assert whole.equals(small)


def test_nan_inputs_reach_the_model_unchanged(hgb, data):
    income = data.column("income").to_numpy().copy()
    income[::7] = np.nan
    with_nan = data.set_column(1, "income", pa.array(income))
    out = _score(with_nan.to_batches(max_chunksize=500), model=hgb)
    assert np.array_equal(out.column("default_probability").to_numpy(), _expected(hgb, with_nan))


def test_extra_columns_and_custom_names(hgb, data):
    out = _score(
        data.to_batches(max_chunksize=900), model=hgb, score_column="p", decision_column="d",
        extra_columns={"model_name": "credit", "model_version": 4},
    )  # fmt: skip
    assert out.schema.names == ["customer_id", "p", "d", "model_name", "model_version"]
    assert set(out.column("model_name").to_pylist()) == {"credit"}
    assert set(out.column("model_version").to_pylist()) == {4}


def test_empty_batch_gives_empty_output(hgb, data):
    first = data.to_batches()[0]
    out = _score([first.slice(0, 0), first], model=hgb)
    assert out.num_rows == data.num_rows


def test_infinite_values_are_refused_naming_the_column(hgb, data):
    income = data.column("income").to_numpy().copy()
    income[1500] = -np.inf
    batches = data.set_column(1, "income", pa.array(income)).to_batches(max_chunksize=1000)
    message = "Batch 1 has infinite values in 1 feature column(s): income"
    with pytest.raises(ContractError, match=re.escape(message)):
        _score(batches, model=hgb)


def test_missing_feature_column_in_a_batch_is_named(hgb, data):
    with pytest.raises(ContractError, match=re.escape("lacks 1 column(s) the model needs: age")):
        _score(data.drop_columns(["age"]).to_batches(), model=hgb)


def test_model_error_becomes_scoring_error_naming_the_batch(logistic, data):
    income = data.column("income").to_numpy().copy()
    income[1200] = np.nan  # LogisticRegression rejects NaN
    batches = data.set_column(1, "income", pa.array(income)).to_batches(max_chunksize=500)
    message = "Scoring batch 2 failed: ValueError: Input X contains NaN"
    with pytest.raises(ScoringError, match=re.escape(message)):
        _score(batches, model=logistic)


def test_corrupt_artifact_in_process_is_a_model_load_error(data):
    with pytest.raises(ModelLoadError, match=re.escape("could not be unpickled")):
        _score(data.to_batches(), artifact=b"not a joblib file")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"threshold": 1.5}, "must be a float in [0, 1]. Got 1.5", id="threshold"),
        pytest.param({"workers": 0}, "'workers' parameter of score_batches", id="workers"),
        pytest.param({"max_in_flight": 0}, "'max_in_flight' parameter", id="max_in_flight"),
        pytest.param({"model": None}, "needs a fitted 'model' or its 'artifact'", id="no-model"),
        pytest.param({"score_column": "customer_id"}, "distinct names. Got customer_id", id="dup"),
        pytest.param({"feature_names": []}, "'feature_names' parameter", id="features"),
    ],
)  # fmt: skip
def test_arguments_are_validated(hgb, kwargs, message):
    kwargs = {"model": hgb, **kwargs}
    with pytest.raises(ArgumentError, match=re.escape(message)):
        _score([], **kwargs)


# ---------------------------------------------------------------- worker processes


class _CountingBatches:
    """Yields ``batches`` and records how many were pulled when each output was consumed."""

    def __init__(self, batches: list[pa.RecordBatch]) -> None:
        self.batches = batches
        self.pulled = 0

    def __iter__(self):
        for batch in self.batches:
            self.pulled += 1
            yield batch


def test_workers_score_exactly_in_order_with_bounded_read_ahead(hgb, data):
    source = _CountingBatches(data.to_batches(max_chunksize=53))
    kwargs = {"feature_names": FEATURES, "output": _output()}
    scored, ahead = [], []
    for consumed, item in enumerate(
        score_batches(source, artifact=dump_model(hgb), workers=2, max_in_flight=3, **kwargs),
        start=1,
    ):
        ahead.append(source.pulled - consumed)
        scored.append(item.batch)
        assert item.seconds >= 0
    out = pa.Table.from_batches(scored)
    assert len(scored) == len(source.batches) > 30
    assert max(ahead) <= 3
    assert out.column("customer_id").equals(data.column("customer_id"))
    assert np.array_equal(out.column("default_probability").to_numpy(), _expected(hgb, data))


def _scores_in_a_celery_pool_process(artifact: bytes, table: pa.Table, results) -> None:
    import multiprocessing

    before = dict(multiprocessing.current_process()._config)
    assert before["daemon"]
    kwargs = {"feature_names": FEATURES, "output": _output()}
    batches = table.to_batches(max_chunksize=500)
    scored = score_batches(batches, artifact=artifact, workers=2, **kwargs)
    results.put(pa.Table.from_batches([s.batch for s in scored]).column(1).to_numpy())
    after = multiprocessing.current_process()._config
    assert (after["daemon"], after["authkey"]) == (True, before["authkey"])  # restored
    assert type(after["authkey"]) is type(before["authkey"])


def test_workers_start_from_a_celery_pool_process(hgb, data):
    """Under CeleryExecutor the task process is forked from a billiard pool process: it
    is daemonic and holds billiard's authkey type, both refused by multiprocessing."""
    import billiard

    context = billiard.get_context("spawn")
    results = context.Queue()
    process = context.Process(
        target=_scores_in_a_celery_pool_process,
        args=(dump_model(hgb), data, results),
        daemon=True,
    )
    process.start()
    try:
        scores = results.get(timeout=120)
    finally:
        process.join(timeout=60)
    assert process.exitcode == 0
    assert np.array_equal(scores, _expected(hgb, data))


UNIMPORTABLE_MAIN = """
if __name__ != "__main__":  # like the `airflow` command in a task process
    raise RuntimeError("this main module cannot be imported again")
import sys
import pyarrow as pa, pyarrow.parquet as pq
from airflow_mlops.models.records import ModelOutput
from airflow_mlops.scoring.batches import score_batches

table = pq.read_table(sys.argv[2])
output = ModelOutput(
    entity_key="customer_id", threshold=0.3, score_column="default_probability",
    positive="decline", negative="approve",
)
scored = score_batches(
    table.to_batches(max_chunksize=500), artifact=open(sys.argv[1], "rb").read(), workers=2,
    feature_names=%r, output=output,
)
pq.write_table(pa.Table.from_batches([s.batch for s in scored]), sys.argv[3])
"""


def test_workers_do_not_rerun_the_main_module(hgb, data, tmp_path):
    """Each worker would re-run the parent's ``__main__``: under Airflow, the ``airflow``
    command, whose import fails in a task process."""
    import subprocess
    import sys

    import pyarrow.parquet as pq

    script = tmp_path / "main.py"
    script.write_text(UNIMPORTABLE_MAIN % (FEATURES,))
    (tmp_path / "model.joblib").write_bytes(dump_model(hgb))
    pq.write_table(data, tmp_path / "data.parquet")
    paths = [str(tmp_path / name) for name in ("model.joblib", "data.parquet", "out.parquet")]
    done = subprocess.run(
        [sys.executable, str(script), *paths], capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-3000:]
    scores = pq.read_table(tmp_path / "out.parquet").column(1).to_numpy()
    assert np.array_equal(scores, _expected(hgb, data))


def test_worker_error_becomes_scoring_error_naming_the_batch(logistic, data):
    income = data.column("income").to_numpy().copy()
    income[1200] = np.nan
    batches = data.set_column(1, "income", pa.array(income)).to_batches(max_chunksize=500)
    message = "Scoring batch 2 failed: ValueError: Input X contains NaN"
    with pytest.raises(ScoringError, match=re.escape(message)):
        _score(batches, model=logistic, workers=2)


def test_worker_that_cannot_load_the_artifact_fails_clearly(data):
    message = re.escape("Scoring batch 0 failed") + ".*could not be unpickled"
    with pytest.raises(ScoringError, match=message):
        _score(data.to_batches(), artifact=b"not a joblib file", workers=2)


class DyingModel:
    """Kills its worker process while scoring, as the kernel's OOM killer would."""

    classes_ = np.array([0, 1])

    def predict_proba(self, frame):
        os._exit(1)


def test_a_dead_worker_is_a_retryable_error_not_a_scoring_error(data):
    with pytest.raises(BrokenProcessPool) as info:
        _score(data.to_batches(), artifact=dump_model(DyingModel()), workers=2)
    assert is_retryable(info.value)


# ---------------------------------------------------------------- compiled tree models


def test_compiled_model_is_verified_and_scores_like_scikit_learn(hgb, data):
    pytest.importorskip("tl2cgen")
    check = data.slice(0, 300).select(FEATURES).to_pandas()
    compiled, verdict = compile_tree_model(hgb, check, threshold=0.3)
    assert verdict.runtime == "tl2cgen", verdict.reason
    # the check rows, plus a copy with NaN in each transformed column (3 scaled, 4 one-hot)
    assert verdict.rows_checked == 300 * 8
    assert verdict.max_abs_diff <= verdict.tolerance
    assert verdict.decisions_differing == 0
    out = _score(data.to_batches(max_chunksize=400), model=compiled, workers=2)
    expected = _expected(hgb, data)
    assert np.max(np.abs(out.column("default_probability").to_numpy() - expected)) <= 1e-12
    assert (
        out.column("decision").to_pylist()
        == np.where(expected > 0.3, "decline", "approve").tolist()
    )


def test_unsupported_model_falls_back_to_scikit_learn(logistic, data):
    model, verdict = compile_tree_model(logistic, data.select(FEATURES).to_pandas())
    assert model is logistic
    assert verdict.runtime == "scikit-learn"
    assert "LogisticRegression is not a HistGradientBoostingClassifier" in verdict.reason


def test_no_check_rows_is_no_verification(hgb, data):
    empty = data.slice(0, 0).select(FEATURES).to_pandas()

    model, verdict = compile_tree_model(hgb, empty, threshold=0.3)

    assert model is hgb
    assert (verdict.runtime, verdict.rows_checked) == ("scikit-learn", 0)
    assert verdict.reason == "no check rows: nothing to compare the compiled model with"


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        pytest.param({"runtimes": {"tl2cgen": {"verified": True}}}, None, id="verified"),
        pytest.param(
            {},
            "the model's record has no tl2cgen check (registered without runtime checks)",
            id="older-record",
        ),
        pytest.param(
            {"runtimes": {"tl2cgen": {"verified": False, "reason": "no gcc"}}},
            "tl2cgen was not verified at registration: no gcc",
            id="not-verified",
        ),
    ],
)
def test_the_record_decides_whether_the_compiled_runtime_may_be_tried(record, reason):
    assert unverified_reason(record) == reason


# ---------------------------------------------------------------- the numpy column transformer


@pytest.fixture(scope="module")
def demo_compiled() -> tuple[CompiledTreeModel, pa.RecordBatch]:
    """The demo model compiled (its column transformer verified in numpy), and 1,000 rows."""
    pytest.importorskip("tl2cgen")
    customers = synthetic_customers(3_000)
    model = fitted_demo_model(customers.slice(0, 2_000), max_iter=20)
    check = customers.slice(0, 2_000).select(INPUT_CONTRACT.names).to_pandas()
    compiled, verdict = compile_tree_model(model, check, threshold=0.3)
    assert (verdict.runtime, verdict.preprocess) == ("tl2cgen", "numpy"), verdict.reason
    assert "the column transformer runs in numpy, bit-identical to scikit-learn" in verdict.reason
    rows = customers.slice(2_000).select(INPUT_CONTRACT.names).combine_chunks()
    return compiled, rows.to_batches()[0]


def _refuse_the_scikit_learn_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(*args, **kwargs):
        raise AssertionError("the pandas and scikit-learn path was taken")

    monkeypatch.setattr(ColumnTransformer, "transform", refused)
    monkeypatch.setattr(CompiledTreeModel, "predict_proba", refused)  # the pandas frame's path


@pytest.mark.parametrize("rows", [1, 63, 64, 65, 1000])
def test_probabilities_skip_pandas_and_scikit_learn_with_the_same_bits(
    demo_compiled, monkeypatch, rows
):
    compiled, batch = demo_compiled
    batch = batch.slice(0, rows)
    # the same trees behind scikit-learn's column transformer: today's path
    expected = probabilities(CompiledTreeModel(compiled.preprocess, compiled.library), batch)
    _refuse_the_scikit_learn_path(monkeypatch)

    actual = probabilities(compiled, batch)

    assert actual.dtype == np.float64
    assert actual.tobytes() == expected.tobytes()
    # a row's score does not depend on its batch
    whole = probabilities(compiled, demo_compiled[1])
    assert actual.tobytes() == whole[:rows].tobytes()


def test_the_numpy_path_survives_pickling_and_worker_processes(demo_compiled):
    compiled, batch = demo_compiled
    loaded = load_model(dump_model(compiled))
    assert loaded.arrow_preprocess is not None
    assert probabilities(loaded, batch).tobytes() == probabilities(compiled, batch).tobytes()

    keyed = batch.append_column("customer_id", pa.array(np.arange(batch.num_rows)))
    kwargs = {"feature_names": INPUT_CONTRACT.names, "output": _output()}
    pooled = [s.batch for s in score_batches([keyed], model=compiled, workers=2, **kwargs)]
    in_process = [s.batch for s in score_batches([keyed], model=compiled, **kwargs)]
    assert pooled[0].column("default_probability").to_numpy().tobytes() == (
        in_process[0].column("default_probability").to_numpy().tobytes()
    )


def test_a_model_pickled_before_the_numpy_path_scores_the_old_way(demo_compiled):
    compiled, batch = demo_compiled
    old = CompiledTreeModel.__new__(CompiledTreeModel)
    old.__setstate__({"preprocess": compiled.preprocess, "library": compiled.library})

    assert old.arrow_preprocess is None
    assert probabilities(old, batch).tobytes() == probabilities(compiled, batch).tobytes()


def test_an_unknown_category_raises_scikit_learns_own_error(data, monkeypatch):
    pytest.importorskip("tl2cgen")
    train = _table(1_000, seed=1).to_pandas()
    prep = ColumnTransformer(
        [
            ("num", StandardScaler(), NUMERIC),
            ("cat", OneHotEncoder(sparse_output=False, handle_unknown="error"), ["region"]),
        ]
    )
    model = Pipeline([("prep", prep), ("model", HistGradientBoostingClassifier(max_iter=5))])
    model.fit(train[FEATURES], _label(train))
    compiled, verdict = compile_tree_model(model, train[FEATURES].head(300))
    assert verdict.preprocess == "numpy", verdict.reason
    batch = data.select(FEATURES).slice(0, 10).to_batches()[0]
    unknown = batch.set_column(3, "region", pa.array(["north"] * 9 + ["atlantis"]))
    with pytest.raises(ValueError, match="Found unknown categories") as scikit_learn:
        model.predict_proba(unknown.to_pandas())

    with pytest.raises(ValueError, match=f"^{re.escape(str(scikit_learn.value))}$"):
        probabilities(compiled, unknown)
    _refuse_the_scikit_learn_path(monkeypatch)
    probabilities(compiled, batch)  # known categories: the numpy path


def test_an_unsupported_column_transformer_stays_scikit_learns(data):
    pytest.importorskip("tl2cgen")
    train = _table(1_000, seed=1).to_pandas()
    prep = ColumnTransformer([("num", PolynomialFeatures(), NUMERIC)])
    model = Pipeline([("prep", prep), ("model", HistGradientBoostingClassifier(max_iter=5))])
    model.fit(train[FEATURES], _label(train))

    compiled, verdict = compile_tree_model(model, train[FEATURES].head(300))

    assert (verdict.runtime, verdict.preprocess) == ("tl2cgen", "scikit-learn")
    assert verdict.reason.endswith(
        "; the column transformer stays scikit-learn's: "
        "transformer 'num': PolynomialFeatures is not supported"
    )
    assert json.loads(json.dumps(verdict.as_dict())) == verdict.as_dict()
    assert compiled.arrow_preprocess is None
    batch = data.select(FEATURES).slice(0, 100).to_batches()[0]
    np.testing.assert_allclose(
        probabilities(compiled, batch), _expected(model, data.slice(0, 100)), rtol=0, atol=1e-12
    )
