from __future__ import annotations

import json
import math
import re

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from airflow_mlops.drift.compare import compare
from airflow_mlops.drift.profile import ProfileBuilder, ReferenceProfile
from airflow_mlops.drift.sketch import (
    RELATIVE_ACCURACY,
    bucket_index,
    bucket_upper_edges,
    bucket_values,
)
from airflow_mlops.drift.stats import benjamini_hochberg, psi
from airflow_mlops.exceptions import ArgumentError, ContractError, EmptyInputError

REPORT_KEYS = {
    "reference_rows", "current_rows", "status", "correction", "alpha", "summary", "columns",
}  # fmt: skip
COLUMN_KEYS = {
    "name", "kind", "test", "statistic", "p_value", "p_value_adjusted", "psi",
    "null_rate_reference", "null_rate_current", "effect_metric", "effect_size", "thresholds",
    "status", "histogram",
}  # fmt: skip


def batches(table: pa.Table, size: int = 1000) -> list[pa.RecordBatch]:
    return table.to_batches(max_chunksize=size)


def profile_of(table: pa.Table, size: int = 1000, **options) -> ReferenceProfile:
    builder = ProfileBuilder(**options)
    for batch in batches(table, size):
        builder.update(batch)
    return builder.finish()


def column(report: dict, name: str) -> dict:
    return next(c for c in report["columns"] if c["name"] == name)


def mixed(n: int, seed: int, shift: float = 0.0) -> pa.Table:
    rng = np.random.default_rng(seed)
    amount = rng.lognormal(3.0 + shift, 1.0, n)
    amount[rng.random(n) < 0.05] = np.nan
    return pa.table(
        {
            "amount": amount,
            "count": rng.poisson(3 + shift, n),
            "region": rng.choice(["north", "south", "east", "west"], n, p=[0.4, 0.3, 0.2, 0.1]),
            "flag": rng.random(n) < 0.3,
        }
    )


# ---------------------------------------------------------------- sketch


def test_bucket_edges_and_values_bracket_the_bucket():
    values = np.array([-1e6, -3.5, -1e-3, 0.0, 1e-12, 2e-6, 0.7, 1.0, 42.0, 5e8])
    index = bucket_index(values)
    assert np.all(np.diff(index) >= 0)
    upper = bucket_upper_edges(index)
    lower = bucket_upper_edges(index - 1)
    assert np.all(values < upper)
    assert np.all(values >= lower)
    nonzero = np.abs(values) > 1e-9
    rel = np.abs(bucket_values(index[nonzero]) - values[nonzero]) / np.abs(values[nonzero])
    assert np.all(rel <= RELATIVE_ACCURACY * (1 + 1e-9))


# ---------------------------------------------------------------- KS against scipy


@pytest.mark.parametrize(
    ("n", "m", "ties"),
    [
        pytest.param(50, 70, False, id="small-exact-p"),
        pytest.param(300, 200, True, id="ties"),
        pytest.param(12_000, 9_000, False, id="asymptotic-p"),
    ],
)
def test_exact_mode_ks_agrees_with_scipy(n, m, ties):
    rng = np.random.default_rng(n)
    ref, cur = rng.normal(0, 1, n), rng.normal(0.2, 1.1, m)
    if ties:
        ref, cur = np.round(ref, 1), np.round(cur, 1)
    profile = profile_of(pa.table({"x": ref}), size=97, exact=True, sample_size=0)
    report = compare(profile, batches(pa.table({"x": cur}), size=31))
    expected = stats.ks_2samp(ref, cur)
    assert abs(column(report, "x")["statistic"] - expected.statistic) <= 1e-9
    assert abs(column(report, "x")["p_value"] - expected.pvalue) <= 1e-9
    assert column(report, "x")["statistic_max_error"] == 0.0


@pytest.mark.parametrize(
    ("loc", "scale", "shift"),
    [
        pytest.param(0.0, 1.0, 0.05, id="standard-normal"),
        pytest.param(50.0, 10.0, 1.0, id="offset"),
        pytest.param(0.0, 1000.0, 30.0, id="wide"),
    ],
)
def test_sketch_ks_is_within_its_bound_of_scipy_on_the_full_data(loc, scale, shift):
    rng = np.random.default_rng(7)
    ref, cur = rng.normal(loc, scale, 200_000), rng.normal(loc + shift, scale, 150_000)
    profile = profile_of(pa.table({"x": ref}), size=65_536)  # > sample_size: sketch only
    result = column(compare(profile, batches(pa.table({"x": cur}), 65_536)), "x")
    expected = stats.ks_2samp(ref, cur)
    error = expected.statistic - result["statistic"]
    assert -1e-12 <= error <= result["statistic_max_error"]
    assert error < 2e-3  # the documented accuracy
    assert result["p_value"] == pytest.approx(
        stats.kstwo.sf(result["statistic"], round(200_000 * 150_000 / 350_000)), rel=1e-9
    )


# ---------------------------------------------------------------- PSI against a direct computation


def direct_psi(ref: np.ndarray, cur: np.ndarray, edges: np.ndarray, eps: float = 1e-4) -> float:
    """PSI by hand: ``np.histogram`` on the edges plus the two open outer bins, nulls a bin."""

    def hist(x: np.ndarray) -> np.ndarray:
        finite = x[np.isfinite(x)]
        inner, _ = np.histogram(finite, bins=edges)
        below, above = (finite < edges[0]).sum(), (finite > edges[-1]).sum()
        return np.array([below, *inner, above, np.isnan(x).sum()], dtype=float)

    e, a = hist(ref), hist(cur)
    e, a = np.maximum(e / e.sum(), eps), np.maximum(a / a.sum(), eps)
    return float(np.sum((a - e) * np.log(a / e)))


def test_exact_mode_psi_is_the_tutorial_computation_on_quantile_bins():
    ref_table, cur_table = mixed(5_000, 1), mixed(4_000, 2, shift=0.3)
    profile = profile_of(ref_table, exact=True)
    report = compare(profile, batches(cur_table))
    ref = ref_table["amount"].to_numpy(zero_copy_only=False)
    cur = cur_table["amount"].to_numpy(zero_copy_only=False)
    edges = np.quantile(ref[np.isfinite(ref)], np.linspace(0, 1, 11))
    assert profile.columns["amount"]["edges"] == edges.tolist()
    assert column(report, "amount")["psi"] == pytest.approx(direct_psi(ref, cur, edges), rel=1e-12)


def test_sketch_psi_is_the_direct_computation_on_the_profiles_bins():
    ref_table, cur_table = mixed(300_000, 3), mixed(200_000, 4, shift=0.1)
    profile = profile_of(ref_table, size=50_000, sample_size=1_000)
    edges = np.array(profile.columns["amount"]["edges"])
    ref = ref_table["amount"].to_numpy(zero_copy_only=False)
    cur = cur_table["amount"].to_numpy(zero_copy_only=False)
    # the sketch's reference counts per bin are exact
    finite = ref[np.isfinite(ref)]
    assert (
        profile.columns["amount"]["reference_bins"][1:-1] == np.histogram(finite, edges)[0].tolist()
    )
    # and the bins are within a bucket of the deciles
    ranks = np.searchsorted(np.sort(finite), edges[1:-1]) / finite.size
    assert np.all(np.abs(ranks - np.arange(1, 10) / 10) < 0.005)
    report = compare(profile, batches(cur_table, 50_000))
    assert column(report, "amount")["psi"] == pytest.approx(direct_psi(ref, cur, edges), rel=1e-12)


def test_categorical_psi_and_histogram():
    ref = pa.table({"c": ["a"] * 60 + ["b"] * 30 + ["z"] * 10})
    cur = pa.table({"c": ["a"] * 50 + ["b"] * 20 + ["new"] * 25 + [None] * 5})
    profile = profile_of(ref, max_categories=2)
    result = column(compare(profile, batches(cur)), "c")
    assert result["histogram"]["labels"] == ["a", "b", "other", "null"]
    assert result["histogram"]["reference"] == pytest.approx([0.6, 0.3, 0.1, 0.0])
    assert result["histogram"]["current"] == pytest.approx([0.5, 0.2, 0.25, 0.05])
    assert result["psi"] == pytest.approx(psi([60, 30, 10, 0], [50, 20, 25, 5]), rel=1e-12)
    assert result["unseen_categories"] == ["new"]  # "z" was seen in the reference's tail
    assert result["null_rate_current"] == pytest.approx(0.05)
    assert result["test"] == "chi2"
    assert result["jensen_shannon"] > 0


# ---------------------------------------------------------------- properties


finite_values = st.lists(
    st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False), min_size=1, max_size=60
)


@settings(max_examples=40, deadline=None)
@given(finite_values, finite_values, st.integers(0, 10**6), st.sampled_from([0, 1_000]))
def test_compare_properties(ref, cur, seed, sample_size):
    ref_table, cur_table = pa.table({"x": ref}), pa.table({"x": cur})
    profile = profile_of(ref_table, size=7, sample_size=sample_size)
    report = compare(profile, batches(cur_table, 5))
    result = column(report, "x")
    assert result["psi"] >= 0.0
    assert 0.0 <= result["statistic"] <= 1.0
    assert 0.0 <= result["p_value"] <= 1.0
    # the same rows in another order and other batches: the same report, to the bit
    order = np.random.default_rng(seed).permutation(len(cur))
    shuffled = pa.table({"x": np.asarray(cur)[order]})
    assert compare(profile, batches(shuffled, 3)) == report
    ref_order = np.random.default_rng(seed + 1).permutation(len(ref))
    reordered = profile_of(
        pa.table({"x": np.asarray(ref)[ref_order]}), size=11, sample_size=sample_size
    )
    assert reordered == profile
    # against itself: no drift at all
    itself = column(compare(profile, batches(ref_table, 13)), "x")
    assert itself["psi"] == 0.0
    assert itself["statistic"] == 0.0
    assert itself["status"] == "ok"


@pytest.mark.parametrize(
    "sample_size", [pytest.param(100_000, id="kept"), pytest.param(10, id="sketch")]
)
def test_merge_equals_building_on_the_union(sample_size):
    table = mixed(3_000, 5)
    whole = profile_of(table, sample_size=sample_size)
    left = ProfileBuilder(sample_size=sample_size)
    right = ProfileBuilder(sample_size=sample_size)
    for i, batch in enumerate(batches(table, 250)):
        (left if i % 3 else right).update(batch)
    assert left.merge(right).finish() == whole
    assert right.merge(left).finish().to_json() == whole.to_json()
    assert ProfileBuilder(sample_size=sample_size).merge(left.merge(right)).finish() == whole


def test_merge_rejects_different_settings():
    with pytest.raises(ArgumentError, match=re.escape("different columns or settings")):
        ProfileBuilder(bins=5).merge(ProfileBuilder(bins=10))


@pytest.mark.parametrize(
    "exact", [pytest.param(False, id="default"), pytest.param(True, id="exact")]
)
def test_profile_json_round_trip(exact):
    profile = profile_of(mixed(2_000, 6), exact=exact, sample_size=100)
    text = profile.to_json()
    assert ReferenceProfile.from_json(text) == profile
    assert ReferenceProfile.from_json(text).to_json() == text
    report = compare(ReferenceProfile.from_json(text), batches(mixed(1_000, 7)))
    assert report == compare(profile, batches(mixed(1_000, 7)))
    assert json.loads(json.dumps(report, allow_nan=False)) == report


def test_from_json_rejects_other_documents():
    with pytest.raises(ArgumentError, match=re.escape("is not a version-1 drift profile")):
        ReferenceProfile.from_json('{"rows": 1}')


# ---------------------------------------------------------------- edge cases


def test_inferred_columns_and_report_shape():
    profile = profile_of(
        mixed(2_000, 8).append_column(
            "day",
            pa.array([1.5] * 2_000).cast(pa.date32())
            if False
            else pa.array([None] * 2_000, pa.date32()),
        )
    )
    assert {n: c["kind"] for n, c in profile.columns.items()} == {
        "amount": "numeric", "count": "numeric", "region": "categorical", "flag": "categorical",
    }  # fmt: skip
    report = compare(profile, batches(mixed(1_500, 9, shift=1.0)))
    assert REPORT_KEYS <= report.keys()
    assert report["correction"] == "benjamini-hochberg"
    assert report["summary"] == {
        s: sum(c["status"] == s for c in report["columns"]) for s in ("ok", "warn", "fail")
    }
    assert report["status"] == "fail"
    for result in report["columns"]:
        assert COLUMN_KEYS <= result.keys()
        assert len(result["histogram"]["labels"]) == len(result["histogram"]["reference"])
        assert sum(result["histogram"]["current"]) == pytest.approx(1.0)
    assert "wasserstein_normed" in column(report, "amount")
    assert "jensen_shannon" in column(report, "region")
    assert column(report, "flag")["histogram"]["labels"] == ["false", "true", "other"]
    assert column(report, "amount")["null_rate_reference"] == pytest.approx(0.05, abs=0.015)


def test_new_category_is_listed_and_capped():
    ref = pa.table({"c": ["a", "b"] * 50})
    cur = pa.table({"c": ["a"] * 20 + [f"new{i:02d}" for i in range(30)] * 2})
    result = column(compare(profile_of(ref), batches(cur)), "c")
    assert result["unseen_categories_total"] == 30
    assert result["unseen_categories"] == [f"new{i:02d}" for i in range(20)]
    assert result["histogram"]["current"][-1] == pytest.approx(60 / 80)
    assert result["status"] == "fail"


@pytest.mark.parametrize(
    "array",
    [
        pytest.param(pa.array([None] * 40, pa.float64()), id="numeric"),
        pytest.param(pa.array([None] * 40, pa.string()), id="categorical"),
    ],
)
def test_all_null_column(array):
    profile = profile_of(pa.table({"x": array}))
    same = column(compare(profile, batches(pa.table({"x": array}))), "x")
    assert same["null_rate_reference"] == same["null_rate_current"] == 1.0
    assert same["psi"] == 0.0
    assert same["statistic"] is None
    assert same["p_value"] is None
    assert same["p_value_adjusted"] is None
    filled = pa.table({"x": pa.array(["1.5"] * 40).cast(array.type)})
    now_filled = column(compare(profile, batches(filled)), "x")
    assert now_filled["null_rate_current"] == 0.0
    assert now_filled["status"] == "fail"  # nulls are a bin of the PSI


def test_single_value_numeric_column():
    profile = profile_of(pa.table({"x": [3.0] * 50}))
    assert profile.columns["x"]["edges"] == [3.0, 3.0]
    same = column(compare(profile, batches(pa.table({"x": [3.0] * 20}))), "x")
    assert same["histogram"]["labels"] == ["< 3", "[3, 3]", "> 3"]
    assert (same["psi"], same["statistic"], same["status"]) == (0.0, 0.0, "ok")
    moved = column(compare(profile, batches(pa.table({"x": [3.0] * 10 + [4.0] * 10}))), "x")
    assert moved["histogram"]["current"] == [0.0, 0.5, 0.5]
    assert moved["status"] == "fail"


def test_single_value_categorical_column():
    profile = profile_of(pa.table({"c": ["only"] * 30}))
    same = column(compare(profile, batches(pa.table({"c": ["only"] * 10}))), "c")
    assert (same["psi"], same["statistic"], same["p_value"]) == (0.0, 0.0, 1.0)
    assert same["unseen_categories"] == []


def test_small_two_category_column_uses_fishers_exact_test():
    ref = pa.table({"c": ["a"] * 8 + ["b"] * 2})
    cur = pa.table({"c": ["a"] * 3 + ["b"] * 7})
    result = column(compare(profile_of(ref), batches(cur)), "c")
    assert result["test"] == "fisher"
    assert result["p_value"] == pytest.approx(stats.fisher_exact([[8, 2], [3, 7]]).pvalue)


# ---------------------------------------------------------------- verdicts, tests, correction


def test_large_sample_verdict_rests_on_effect_size_not_p_value():
    # a million rows, shifted by 0.006 sd: KS p << 0.05, PSI ≈ 0.00003 — nobody's concern
    n = 1_000_000
    ref = stats.norm.ppf((np.arange(n) + 0.5) / n)
    profile = profile_of(pa.table({"x": ref}), size=250_000)
    result = column(compare(profile, batches(pa.table({"x": ref + 0.006}), 250_000)), "x")
    assert result["p_value"] < 0.05
    assert result["significant"] is True
    assert result["psi"] == pytest.approx(0.00003, rel=0.3)
    assert result["status"] == "ok"


def test_per_column_thresholds_and_tests():
    ref, cur = mixed(4_000, 10), mixed(4_000, 11, shift=0.3)
    profile = profile_of(ref)
    default = compare(profile, batches(cur))
    report = compare(
        profile,
        batches(cur),
        thresholds={"amount": (5.0, 10.0), "count": [0.0, 0.0]},
        tests={"amount": "chi2", "region": "g-test"},
    )
    assert column(report, "amount")["thresholds"] == [5.0, 10.0]
    assert column(report, "amount")["status"] == "ok"
    assert column(report, "count")["status"] == "fail"
    assert column(report, "region")["thresholds"] == [0.1, 0.25]
    assert column(report, "amount")["test"] == "chi2"
    assert column(report, "amount")["psi"] == column(default, "amount")["psi"]
    assert column(report, "region")["test"] == "g-test"


def test_p_values_are_corrected_with_benjamini_hochberg():
    report = compare(profile_of(mixed(3_000, 12)), batches(mixed(3_000, 13, shift=0.05)))
    raw = [c["p_value"] for c in report["columns"]]
    assert [c["p_value_adjusted"] for c in report["columns"]] == benjamini_hochberg(raw)
    adjusted = stats.false_discovery_control(raw, method="bh")
    assert [c["p_value_adjusted"] for c in report["columns"]] == pytest.approx(adjusted)


def test_wasserstein_is_normed_by_the_reference_iqr():
    rng = np.random.default_rng(14)
    ref, cur = rng.normal(0, 2, 5_000), rng.normal(1, 2, 5_000)
    result = column(compare(profile_of(pa.table({"x": ref})), batches(pa.table({"x": cur}))), "x")
    iqr = np.subtract(*np.quantile(ref, [0.75, 0.25]))
    assert result["wasserstein_normed"] == pytest.approx(
        stats.wasserstein_distance(ref, cur) / iqr, rel=1e-12
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        pytest.param(
            {"tests": {"nope": "ks"}}, ArgumentError, "the profile lacks: nope", id="unknown-column"
        ),
        pytest.param(
            {"tests": {"amount": "fisher"}}, ArgumentError, "one of ks, chi2, g-test", id="bad-test"
        ),
        pytest.param(
            {"thresholds": {"amount": (0.5, 0.1)}}, ArgumentError, "column 'amount'", id="limits"
        ),
        pytest.param({"alpha": 1.5}, ArgumentError, "'alpha' parameter", id="alpha"),
    ],
)
def test_compare_rejects_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=re.escape(message)):
        compare(profile_of(mixed(100, 15)), batches(mixed(100, 16)), **kwargs)


def test_compare_names_missing_and_mistyped_columns():
    profile = profile_of(mixed(100, 17))
    current = mixed(100, 18).drop_columns(["region"]).set_column(0, "amount", pa.array(["x"] * 100))
    with pytest.raises(ContractError, match=re.escape("missing 1 column(s): region")) as info:
        compare(profile, batches(current))
    assert info.value.missing_columns == ["region"]
    assert info.value.mistyped_columns == {"amount": ("string", "numeric")}


def test_empty_inputs():
    with pytest.raises(EmptyInputError, match=re.escape("The reference data had no rows")):
        ProfileBuilder().finish()
    profile = profile_of(mixed(100, 19))
    with pytest.raises(EmptyInputError, match=re.escape("The current data has no rows")):
        compare(profile, [])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"bins": 0}, "'bins' parameter of ProfileBuilder", id="bins"),
        pytest.param({"columns": {"x": "text"}}, "'numeric' or 'categorical'", id="kind"),
    ],
)
def test_builder_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ArgumentError, match=re.escape(message)):
        ProfileBuilder(**kwargs)


def test_builder_needs_a_profilable_column():
    with pytest.raises(ArgumentError, match=re.escape("Pass columns=")):
        ProfileBuilder().update(pa.record_batch({"day": pa.array([0], pa.date32())}))


def test_declared_columns_cast_integers_to_categories():
    profile = profile_of(pa.table({"code": [1, 2, 2]}), columns={"code": "categorical"})
    assert profile.columns["code"]["vocabulary"] == ["2", "1"]
    assert math.isclose(
        column(compare(profile, batches(pa.table({"code": [2]}))), "code")["null_rate_current"], 0.0
    )
