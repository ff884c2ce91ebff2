from __future__ import annotations

import math
import re

import numpy as np
import pytest

from airflow_mlops.drift import histogram_counts, psi
from airflow_mlops.exceptions import ArgumentError


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
