from __future__ import annotations

import pickle
import re

import numpy as np
import pyarrow as pa
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.preprocessing import MinMaxScaler, OneHotEncoder, StandardScaler

from airflow_mlops.demo.credit_model import INPUT_CONTRACT
from airflow_mlops.demo.synthetic import fitted_demo_model, synthetic_customers
from airflow_mlops.models import column_transform
from airflow_mlops.models.column_transform import (
    build_arrow_transformer,
    verified_arrow_transformer,
)

NUMERIC = ["income", "age", "score", "constant"]


def _batch(rows: int, seed: int, *, regions: tuple[str, ...] = ("north", "south", "east")):
    """Random inputs: NaN and nulls in the float columns, nulls in an integer column, a
    constant column (zero variance), two string columns."""
    rng = np.random.default_rng(seed)
    income = rng.lognormal(10.8, 0.5, rows)
    income[rng.random(rows) < 0.1] = np.nan  # NaN values, not nulls
    return pa.record_batch(
        {
            "income": income,
            "age": pa.array(rng.integers(18, 90, rows), mask=rng.random(rows) < 0.1),
            "score": pa.array(rng.normal(0, 1e6, rows), mask=rng.random(rows) < 0.1),
            "constant": np.full(rows, 7.0),
            "region": pa.array(rng.choice(regions, rows).tolist()),
            "channel": pa.array(rng.choice(["web", "app"], rows).tolist()),
            "unused": rng.random(rows),
        }
    )


def _fitted(transformer: ColumnTransformer, *, without: tuple[str, ...] = ()) -> ColumnTransformer:
    return transformer.fit(_batch(500, seed=1).drop_columns(list(without)).to_pandas())


def _encoder(**options) -> OneHotEncoder:
    return OneHotEncoder(sparse_output=False, **options)


SUPPORTED = [
    pytest.param(
        ColumnTransformer(
            [
                ("num", StandardScaler(), NUMERIC),
                ("cat", _encoder(handle_unknown="ignore"), ["region", "channel"]),
            ]
        ),
        (),
        id="scaled-and-encoded",
    ),
    pytest.param(
        ColumnTransformer(
            [
                ("centred", StandardScaler(with_std=False), ["income", "age"]),
                ("scaled", StandardScaler(with_mean=False), ["score", "constant"]),
                ("raw", StandardScaler(with_mean=False, with_std=False), ["income"]),
            ]
        ),
        (),
        id="with-mean-with-std-either-way",
    ),
    pytest.param(
        ColumnTransformer(
            [
                ("cat", _encoder(handle_unknown="error"), ["channel"]),
                ("kept", "passthrough", ["score", "age"]),
                ("gone", "drop", ["income"]),
                ("none", StandardScaler(), []),
            ]
        ),
        (),
        id="passthrough-drop-empty",
    ),
    pytest.param(
        ColumnTransformer(
            [("cat", _encoder(handle_unknown="ignore"), ["region"])], remainder="passthrough"
        ),
        ("channel",),  # a string column passed through would make an object array
        id="remainder-passthrough",
    ),
]


@pytest.mark.parametrize(("transformer", "without"), SUPPORTED)
def test_output_is_bit_identical_to_scikit_learn(transformer, without):
    transformer = _fitted(transformer, without=without)
    batch = _batch(2_000, seed=3).drop_columns(list(without))

    arrow, reason = build_arrow_transformer(transformer)

    assert arrow is not None, reason
    expected = transformer.transform(batch.to_pandas())
    actual = arrow.transform(batch)
    assert actual is not None
    assert actual.dtype == expected.dtype == np.float64
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(actual.view(np.uint64), expected.view(np.uint64))


def test_the_demo_pipeline_is_verified_and_bit_identical_on_other_rows():
    customers = synthetic_customers(3_000)
    preprocess = fitted_demo_model(customers.slice(0, 2_000), max_iter=5)[:-1]
    check = customers.slice(0, 500).select(INPUT_CONTRACT.names).to_pandas()

    arrow, reason = verified_arrow_transformer(preprocess, check)

    assert arrow is not None, reason
    # the 500 rows, a copy with each of the 10 numeric columns null, one with an unseen region
    assert reason == "bit-identical to scikit-learn on 6000 rows (with missing-value copies)"
    batch = customers.slice(2_000).select(INPUT_CONTRACT.names).combine_chunks().to_batches()[0]
    assert batch.column("debt_to_income").null_count > 0
    expected = preprocess.transform(batch.to_pandas())
    np.testing.assert_array_equal(arrow.transform(batch).view(np.uint64), expected.view(np.uint64))


def test_unknown_categories_are_zeros_when_ignored_like_scikit_learn():
    transformer = _fitted(
        ColumnTransformer([("cat", _encoder(handle_unknown="ignore"), ["region", "channel"])])
    )
    batch = _batch(50, seed=4, regions=("north", "atlantis"))
    arrow, _ = build_arrow_transformer(transformer)

    actual = arrow.transform(batch)

    unknown = np.asarray(batch.column("region").to_pylist()) == "atlantis"
    assert unknown.any()
    assert (actual[unknown, :3] == 0).all()
    np.testing.assert_array_equal(actual, transformer.transform(batch.to_pandas()))


def test_an_unknown_category_with_handle_unknown_error_is_left_to_scikit_learn():
    transformer = _fitted(
        ColumnTransformer([("cat", _encoder(handle_unknown="error"), ["region"])])
    )
    batch = _batch(50, seed=4, regions=("north", "atlantis"))
    arrow, _ = build_arrow_transformer(transformer)

    assert arrow.transform(batch) is None
    with pytest.raises(ValueError, match=re.escape("Found unknown categories ['atlantis']")):
        transformer.transform(batch.to_pandas())


@pytest.mark.parametrize(
    ("change", "why"),
    [
        pytest.param(
            lambda b: b.set_column(4, "region", pa.array(["north", None] * 25)),
            "a missing categorical value",
            id="null-category",
        ),
        pytest.param(
            lambda b: b.set_column(0, "income", pa.array(np.full(50, np.inf))),
            "an infinite value",
            id="infinite",
        ),
        pytest.param(
            lambda b: b.set_column(0, "income", b.column(0).cast(pa.float32())),
            "float32 (scikit-learn would compute in float32)",
            id="float32",
        ),
        pytest.param(
            lambda b: b.set_column(4, "region", b.column(4).dictionary_encode()),
            "a dictionary column (pandas makes it categorical)",
            id="dictionary",
        ),
        pytest.param(lambda b: b.drop_columns(["age"]), "an absent column", id="absent"),
    ],
)
def test_batches_it_would_treat_differently_are_left_to_scikit_learn(change, why):
    transformer = _fitted(
        ColumnTransformer(
            [
                ("num", StandardScaler(), NUMERIC),
                ("cat", _encoder(handle_unknown="ignore"), ["region"]),
            ]
        )
    )
    arrow, _ = build_arrow_transformer(transformer)
    batch = _batch(50, seed=5)
    assert arrow.transform(batch) is not None

    assert arrow.transform(change(batch)) is None, why


@pytest.mark.parametrize(
    ("transformer", "reason"),
    [
        pytest.param(
            ColumnTransformer([("cat", _encoder(min_frequency=0.4), ["region"])]),
            "transformer 'cat': infrequent categories (min_frequency/max_categories) are not "
            "supported",
            id="min_frequency",
        ),
        pytest.param(
            ColumnTransformer([("cat", _encoder(max_categories=2), ["region"])]),
            "transformer 'cat': infrequent categories",
            id="max_categories",
        ),
        pytest.param(
            ColumnTransformer([("cat", _encoder(drop="first"), ["region"])]),
            "transformer 'cat': drop='first' is not supported",
            id="drop",
        ),
        pytest.param(
            ColumnTransformer([("cat", OneHotEncoder(), ["region"])]),
            "transformer 'cat': sparse_output=True is not supported",
            id="sparse-encoder",
        ),
        pytest.param(
            ColumnTransformer([("cat", OneHotEncoder(), ["region"])], sparse_threshold=1.0),
            "its output is sparse",
            id="sparse-output",
        ),
        pytest.param(
            ColumnTransformer([("cat", _encoder(handle_unknown="warn"), ["region"])]),
            "transformer 'cat': handle_unknown='warn' is not supported",
            id="handle_unknown-warn",
        ),
        pytest.param(
            ColumnTransformer([("cat", _encoder(dtype=np.float32), ["region"])]),
            "transformer 'cat': dtype=float32 is not supported (float64 only)",
            id="float32-encoder",
        ),
        pytest.param(
            ColumnTransformer([("num", MinMaxScaler(), ["income"])]),
            "transformer 'num': MinMaxScaler is not supported",
            id="other-transformer",
        ),
        pytest.param(
            ColumnTransformer([("num", StandardScaler(), ["income"])], remainder=MinMaxScaler()),
            "transformer 'remainder': MinMaxScaler is not supported",
            id="remainder-estimator",
        ),
        pytest.param(
            ColumnTransformer([("num", StandardScaler(), [0, 1])]),
            "transformer 'num' does not select its columns by a list of names",
            id="by-position",
        ),
        pytest.param(
            ColumnTransformer(
                [("num", StandardScaler(), ["income"])], transformer_weights={"num": 2.0}
            ),
            "transformer_weights are not supported",
            id="weights",
        ),
        pytest.param(
            ColumnTransformer([("num", StandardScaler(), ["income"])]).set_output(
                transform="pandas"
            ),
            "set_output(transform='pandas') is not supported",
            id="pandas-output",
        ),
        pytest.param(StandardScaler(), "StandardScaler is not a ColumnTransformer", id="bare"),
    ],
)
def test_unsupported_transformers_and_options_are_not_built(transformer, reason):
    frame = _batch(500, seed=1).drop_columns(["channel"]).to_pandas()
    if isinstance(transformer, StandardScaler):
        transformer.fit(frame[["income"]])
    elif transformer.remainder != "drop":
        transformer.fit(frame[["income", "age"]])
    else:
        transformer.fit(frame)

    arrow, why = build_arrow_transformer(transformer)

    assert arrow is None
    assert why.startswith(reason)


def test_a_difference_from_scikit_learn_is_not_kept(monkeypatch):
    transformer = _fitted(ColumnTransformer([("num", StandardScaler(), NUMERIC)]))
    built, _ = build_arrow_transformer(transformer)
    built.blocks[0].scale[0] *= 1 + 1e-15  # one ulp or so off scikit-learn's scale_
    monkeypatch.setattr(column_transform, "build_arrow_transformer", lambda _: (built, ""))

    arrow, reason = verified_arrow_transformer(transformer, _batch(200, seed=6).to_pandas())

    assert arrow is None
    assert re.fullmatch(r"\d+ of 200 rows differ from scikit-learn's in some bit", reason)


def test_pickles():
    transformer = _fitted(
        ColumnTransformer(
            [
                ("num", StandardScaler(), NUMERIC),
                ("cat", _encoder(handle_unknown="ignore"), ["region", "channel"]),
            ]
        )
    )
    arrow, _ = build_arrow_transformer(transformer)
    batch = _batch(100, seed=7)

    loaded = pickle.loads(pickle.dumps(arrow))

    np.testing.assert_array_equal(
        loaded.transform(batch).view(np.uint64), arrow.transform(batch).view(np.uint64)
    )


def test_a_string_column_passed_through_is_not_verified():
    transformer = _fitted(
        ColumnTransformer(
            [("num", StandardScaler(), ["income"])], remainder="passthrough"
        )  # remainder: every other column, "region" and "channel" among them
    )

    arrow, reason = verified_arrow_transformer(transformer, _batch(100, seed=8).to_pandas())

    assert arrow is None
    assert reason.startswith("it leaves the check rows to scikit-learn")
