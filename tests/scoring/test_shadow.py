from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from airflow_mlops.drift.stats import psi
from airflow_mlops.exceptions import ArgumentError
from airflow_mlops.scoring.shadow import ShadowComparison, shadow_mask

KEYS = pa.array(np.arange(1, 100_001, dtype=np.int64))


def test_mask_is_deterministic_across_calls_and_processes():
    mask = shadow_mask(KEYS, 0.2, seed=3)
    assert shadow_mask(KEYS, 0.2, seed=3).equals(mask)
    code = (
        "import numpy as np, pyarrow as pa;"
        "from airflow_mlops.scoring.shadow import shadow_mask;"
        "keys = pa.array(np.arange(1, 100_001, dtype=np.int64));"
        "print(np.flatnonzero(np.asarray(shadow_mask(keys, 0.2, seed=3))).sum())"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert int(other.stdout) == int(np.flatnonzero(np.asarray(mask)).sum())


def test_mask_depends_on_the_key_not_its_position():
    mask = np.asarray(shadow_mask(KEYS, 0.3))
    reversed_mask = np.asarray(shadow_mask(KEYS[::-1], 0.3))
    assert np.array_equal(mask, reversed_mask[::-1])
    assert not np.array_equal(mask, np.asarray(shadow_mask(KEYS, 0.3, seed=1)))


@pytest.mark.parametrize(
    "keys",
    [
        pytest.param(KEYS, id="consecutive-int"),
        pytest.param(
            pa.array(np.random.default_rng(5).integers(-(2**62), 2**62, 100_000)), id="random-int"
        ),
        pytest.param(pa.array([f"customer-{i}" for i in range(100_000)]), id="string"),
    ],
)
@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.5, 0.9])
def test_realised_fraction_is_within_one_point(keys, fraction):
    realised = np.asarray(shadow_mask(keys, fraction)).mean()
    assert abs(realised - fraction) <= 0.01


def test_fraction_bounds_choose_all_or_nothing():
    assert np.asarray(shadow_mask(KEYS, 1.0)).all()
    assert not np.asarray(shadow_mask(KEYS, 0.0)).any()


def test_null_keys_are_never_chosen():
    mask = shadow_mask(pa.array([1, None, 3]), 1.0)
    assert mask.to_pylist() == [True, False, True]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"fraction": 1.5}, "'fraction' parameter", id="fraction"),
        pytest.param({"fraction": 0.5, "seed": -1}, "'seed' parameter", id="seed"),
    ],
)
def test_mask_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ArgumentError, match=re.escape(message)):
        shadow_mask(KEYS, **kwargs)


def test_mask_rejects_float_keys():
    with pytest.raises(ArgumentError, match=re.escape("integer or string")):
        shadow_mask(pa.array([1.5]), 0.5)


def _paired_outputs(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    champion = rng.beta(2, 5, n)
    challenger = np.clip(champion + rng.normal(0, 0.05, n), 0, 1)
    decide = np.vectorize(lambda s: "decline" if s > 0.3 else "approve", otypes=[object])
    return champion, challenger, decide(champion), decide(challenger)


def test_report_matches_a_direct_computation():
    champion, challenger, champion_dec, challenger_dec = _paired_outputs(20_000)
    comparison = ShadowComparison()
    for start in range(0, 20_000, 3_000):  # uneven batches, Arrow and numpy inputs mixed
        part = slice(start, start + 3_000)
        comparison.update(
            pa.array(champion[part]), challenger[part],
            pa.array(list(champion_dec[part])), challenger_dec[part],
        )  # fmt: skip
    report = comparison.report()
    delta = np.abs(champion - challenger)
    exact_p95 = np.percentile(delta, 95, method="inverted_cdf")
    edges = np.linspace(0, 1, 21)
    assert report["rows_compared"] == 20_000
    assert report["mean_abs_delta"] == pytest.approx(delta.mean(), rel=1e-12)
    assert exact_p95 <= report["p95_abs_delta"] <= exact_p95 + 1e-5
    assert report["decision_agreement_rate"] == np.mean(champion_dec == challenger_dec)
    expected_psi = psi(np.histogram(champion, edges)[0], np.histogram(challenger, edges)[0])
    assert report["psi"] == expected_psi
    assert report["bins"]["score"]["edges"] == edges.tolist()
    assert report["bins"]["abs_delta"]["resolution"] == 1e-5


def test_report_is_json_serialisable_and_has_latency_percentiles():
    comparison = ShadowComparison()
    comparison.update(*_paired_outputs(100))
    for seconds in (0.1, 0.2, 0.3, 0.4):
        comparison.add_latency("champion", seconds, 25)
    comparison.add_latency("challenger", 0.5, 100)
    report = json.loads(json.dumps(comparison.report()))
    assert report["latency"]["champion"] == {
        "batches": 4,
        "rows": 100,
        "seconds": pytest.approx(1.0),
        "batch_seconds_p50": pytest.approx(0.25),
        "batch_seconds_p95": pytest.approx(0.385),
    }
    assert report["latency"]["challenger"]["batch_seconds_p95"] == 0.5


def test_empty_comparison_reports_no_rates():
    report = ShadowComparison().report()
    assert report["rows_compared"] == 0
    assert report["mean_abs_delta"] is report["psi"] is report["p95_abs_delta"] is None


def test_update_rejects_mismatched_lengths_and_non_probabilities():
    comparison = ShadowComparison()
    with pytest.raises(ArgumentError, match=re.escape("same length")):
        comparison.update([0.1, 0.2], [0.1], ["a", "a"], ["a", "a"])
    with pytest.raises(ArgumentError, match=re.escape("challenger scores must be")):
        comparison.update([0.1], [1.2], ["a"], ["a"])
