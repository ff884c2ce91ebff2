from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from airflow_mlops.drift.stats import (
    benjamini_hochberg,
    check_thresholds,
    chi2_homogeneity,
    fisher_2x2,
    histogram_counts,
    jensen_shannon,
    ks_bucket_error_bound,
    ks_from_counts,
    ks_pvalue,
    psi,
    verdict,
    wasserstein_from_counts,
)
from airflow_mlops.exceptions import ArgumentError

counts = st.lists(st.integers(0, 1000), min_size=1, max_size=12)


def test_psi_of_identical_histograms_is_zero():
    counts = [5, 0, 12, 3]
    assert psi(counts, counts) == 0.0


def test_psi_known_value():
    # proportions (0.5, 0.5) → (0.25, 0.75): -0.25·ln 0.5 + 0.25·ln 1.5 = 0.25·ln 3
    assert psi([50, 50], [25, 75]) == pytest.approx(0.25 * math.log(3), rel=1e-12)


def test_psi_is_non_negative_and_finite_with_empty_bins():
    rng = np.random.default_rng(0)
    for _ in range(50):
        expected, actual = rng.integers(0, 5, size=(2, 8))
        expected[0] += 1
        actual[1] += 1
        value = psi(expected, actual)
        assert value >= 0.0
        assert math.isfinite(value)


def test_psi_uses_epsilon_for_empty_bins():
    # e = (1, 1e-4), a = (1e-4, 1) once floored
    value = psi([10, 0], [0, 10], epsilon=1e-4)
    assert value == pytest.approx(2 * (1 - 1e-4) * math.log(1e4), rel=1e-12)


@pytest.mark.parametrize(
    ("expected", "actual", "message"),
    [
        pytest.param([1, 2], [1, 2, 3], "same bins", id="shapes"),
        pytest.param([0, 0], [1, 2], "'expected_counts' parameter", id="empty"),
        pytest.param([1, -1], [1, 2], "'expected_counts' parameter", id="negative"),
        pytest.param([1, 2], [np.nan, 2], "'actual_counts' parameter", id="nan"),
    ],
)
def test_psi_rejects_bad_counts(expected, actual, message):
    with pytest.raises(ArgumentError, match=re.escape(message)):
        psi(expected, actual)


def test_histogram_counts_closes_the_last_bin():
    edges = np.linspace(0.0, 1.0, 5)
    assert histogram_counts([0.0, 0.25, 0.3, 1.0, 1.5], edges).tolist() == [1, 2, 0, 1]


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_psi_is_non_negative_and_zero_on_itself(data):
    expected = data.draw(counts.filter(lambda c: sum(c) > 0))
    actual = data.draw(
        st.lists(st.integers(0, 1000), min_size=len(expected), max_size=len(expected)).filter(
            lambda c: sum(c) > 0
        )
    )
    assert psi(expected, actual) >= 0.0
    assert psi(expected, expected) == 0.0
    assert psi([3 * c for c in expected], expected) == pytest.approx(0.0, abs=1e-15)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_ks_from_counts_is_in_unit_interval_and_matches_scipy_on_distinct_buckets(data):
    ref = data.draw(counts.filter(lambda c: sum(c) > 0))
    cur = data.draw(st.lists(st.integers(0, 50), min_size=len(ref), max_size=len(ref)).filter(sum))
    d = ks_from_counts(ref, cur)
    assert 0.0 <= d <= 1.0
    # one value per bucket: the bucketed statistic is the exact one
    values = np.arange(len(ref), dtype=float)
    exact = stats.ks_2samp(np.repeat(values, ref), np.repeat(values, cur)).statistic
    assert d == pytest.approx(exact, abs=1e-12)
    assert 0.0 < ks_bucket_error_bound(ref, cur) <= 1.0


@pytest.mark.parametrize(
    ("d", "n", "m"),
    [
        pytest.param(0.01, 200_000, 150_000, id="large"),
        pytest.param(0.002, 1_000_000, 1_000_000, id="million"),
        pytest.param(0.3, 40_000, 30_000, id="far"),
    ],
)
def test_ks_pvalue_is_scipys_asymptotic_one(d, n, m):
    # scipy's asymptotic p-value depends only on (d, n, m): build samples that realise d
    rng = np.random.default_rng(1)
    ref = rng.normal(size=n)
    cur = rng.normal(size=m)
    result = stats.ks_2samp(ref, cur, method="asymp")
    assert ks_pvalue(result.statistic, n, m) == pytest.approx(result.pvalue, rel=1e-9, abs=1e-300)
    assert 0.0 <= ks_pvalue(d, n, m) <= 1.0


def test_wasserstein_from_counts_is_scipys_weighted_distance():
    points = np.array([0.0, 1.0, 3.0])
    assert wasserstein_from_counts(points, [1, 1, 0], [0, 1, 1]) == pytest.approx(
        stats.wasserstein_distance([0.0, 1.0], [1.0, 3.0]), rel=1e-12
    )


def test_chi2_homogeneity_matches_a_hand_computation():
    ref, cur = [30, 50, 20], [20, 50, 30]
    # expected per cell: column total / 2 (equal row totals)
    statistic = sum((o - e) ** 2 / e for o, e in zip(ref + cur, [25, 50, 25] * 2, strict=True))
    value, p = chi2_homogeneity(ref, cur)
    assert value == pytest.approx(statistic, rel=1e-12)
    assert p == pytest.approx(stats.chi2.sf(statistic, df=2), rel=1e-12)
    g, _ = chi2_homogeneity(ref, cur, g_test=True)
    assert g == pytest.approx(
        2 * sum(o * math.log(o / e) for o, e in zip(ref + cur, [25, 50, 25] * 2, strict=True))
    )


@pytest.mark.parametrize(
    ("ref", "cur"),
    [
        pytest.param([10, 0], [7, 0], id="one-category"),
        pytest.param([0, 0], [3, 4], id="empty-reference"),
    ],
)
def test_chi2_homogeneity_has_nothing_to_test(ref, cur):
    assert chi2_homogeneity(ref, cur) == (0.0, 1.0)


def test_fisher_2x2_is_scipys():
    assert fisher_2x2([3, 1], [1, 3]) == pytest.approx(tuple(stats.fisher_exact([[3, 1], [1, 3]])))


def test_jensen_shannon_bounds():
    assert jensen_shannon([1, 2, 3], [2, 4, 6]) == pytest.approx(0.0, abs=1e-12)
    assert jensen_shannon([1, 0], [0, 1]) == pytest.approx(1.0)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), st.floats(0.0, 1.0, allow_subnormal=False)), min_size=0, max_size=30
    )
)
def test_benjamini_hochberg_matches_scipy(p_values):
    adjusted = benjamini_hochberg(p_values)
    present = [p for p in p_values if p is not None]
    expected = iter(stats.false_discovery_control(present, method="bh") if present else [])
    for p, a in zip(p_values, adjusted, strict=True):
        assert (a is None) == (p is None)
        if p is not None:
            assert a == pytest.approx(next(expected), rel=1e-12, abs=1e-300)


def test_benjamini_hochberg_by_hand():
    # m = 4; sorted 0.01, 0.02, 0.03, 0.5 → 0.04, 0.04, 0.04, 0.5
    assert benjamini_hochberg([0.03, 0.5, 0.01, 0.02]) == pytest.approx([0.04, 0.5, 0.04, 0.04])


@pytest.mark.parametrize(
    ("effect", "expected"),
    [
        pytest.param(0.0, "ok", id="ok"),
        pytest.param(0.1, "warn", id="at-warn"),
        pytest.param(0.2, "warn", id="warn"),
        pytest.param(0.25, "fail", id="at-fail"),
    ],
)
def test_verdict(effect, expected):
    assert verdict(effect, (0.1, 0.25)) == expected


@pytest.mark.parametrize(
    "thresholds",
    [
        pytest.param((0.3, 0.1), id="warn-above-fail"),
        pytest.param((-0.1, 0.1), id="negative"),
        pytest.param((0.1,), id="one"),
        pytest.param("0.1", id="string"),
    ],
)
def test_check_thresholds_rejects(thresholds):
    with pytest.raises(ArgumentError, match=re.escape("must be a pair (warn, fail)")):
        check_thresholds(thresholds, what="column 'x'")
