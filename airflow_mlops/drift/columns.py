"""One column of current data compared with its reference: histogram, PSI, test, distances.

Numeric columns are binned on the reference's quantile bins (PSI) and tested with KS (exact
on kept values, on the sketches' buckets otherwise) or chi-square/G-test on the bins;
categorical ones on the reference's vocabulary plus "other", tested with chi-square,
G-test or Fisher's exact test. :mod:`airflow_mlops.drift.compare` puts the columns together
into a report; :mod:`airflow_mlops.drift.profile` explains the statistics.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any, NamedTuple, NotRequired, TypedDict

from airflow_mlops.drift import stats
from airflow_mlops.drift.sketch import (
    CATEGORICAL,
    N_BUCKETS,
    NUMERIC,
    CategoricalSummary,
    NumericSummary,
    bucket_values,
)
from airflow_mlops.exceptions import ArgumentError

if TYPE_CHECKING:
    import numpy as np

#: The tests each kind of column can be given (``compare(tests=…)``).
TESTS = {NUMERIC: ("ks", "chi2", "g-test"), CATEGORICAL: ("chi2", "g-test", "fisher")}
#: Unseen categories a report lists by name per column.
UNSEEN_CAP = 20


class Histogram(TypedDict):
    """Proportions per bin, the reference's and the current's (a "null" bin last if any)."""

    labels: list[str]
    reference: list[float]
    current: list[float]


class ColumnTest(TypedDict):
    """One column compared: its test, effect sizes and histogram (before the verdict)."""

    name: str
    kind: str
    test: str
    statistic: float | None
    statistic_max_error: float
    p_value: float | None
    psi: float
    null_rate_reference: float
    null_rate_current: float
    effect_metric: str
    effect_size: float
    histogram: Histogram
    wasserstein_normed: NotRequired[float | None]  # numeric columns
    jensen_shannon: NotRequired[float]  # categorical columns
    unseen_categories: NotRequired[list[str]]  # categorical, at most ``UNSEEN_CAP``
    unseen_categories_total: NotRequired[int]  # categorical


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _histogram(
    labels: list[str], reference: list[int], current: list[int], ref_nulls: int, cur_nulls: int
) -> tuple[Histogram, float]:
    """The report's histogram (proportions, a "null" bin if either side has nulls) and PSI."""
    if ref_nulls or cur_nulls:
        labels, reference, current = (
            labels + ["null"],
            reference + [ref_nulls],
            current + [cur_nulls],
        )
    ref_total, cur_total = sum(reference), sum(current)
    histogram: Histogram = {
        "labels": labels,
        "reference": [c / ref_total for c in reference],
        "current": [c / cur_total for c in current],
    }
    return histogram, stats.psi(reference, current)


def _edge_labels(edges: list[float]) -> list[str]:
    if not edges:
        return ["any value"]
    shown = [f"{e:.6g}" for e in edges]
    inner = [f"[{a}, {b})" for a, b in zip(shown, shown[1:], strict=False)]
    inner[-1] = inner[-1][:-1] + "]"
    return [f"< {shown[0]}", *inner, f"> {shown[-1]}"]


def compare_numeric(
    name: str,
    reference: dict[str, Any],
    current: NumericSummary,
    binned: np.ndarray,
    test: str | None,
) -> ColumnTest:
    """A numeric column: PSI on the reference's bins, then the chosen test (``ks`` default)."""
    histogram, psi = _histogram(
        _edge_labels(reference["edges"]),
        list(reference["reference_bins"]),
        binned.tolist(),
        reference["nulls"],
        current.rows - current.count,
    )
    test = test or "ks"
    result = _numeric_test(reference, current, binned, test)
    return {
        "name": name,
        "kind": NUMERIC,
        "test": test,
        "statistic": _finite(result.statistic),
        "statistic_max_error": result.error,
        "p_value": _finite(result.p_value),
        "psi": psi,
        "wasserstein_normed": _finite(result.wasserstein),
        "null_rate_reference": reference["nulls"] / reference["rows"],
        "null_rate_current": (current.rows - current.count) / current.rows,
        "effect_metric": "psi",
        "effect_size": psi,
        "histogram": histogram,
    }


class _NumericTest(NamedTuple):
    statistic: float | None = None
    p_value: float | None = None
    error: float = 0.0  # the statistic's bound from sketching (0 when exact)
    wasserstein: float | None = None  # normed by the reference's scale


def _numeric_test(
    reference: dict[str, Any], current: NumericSummary, binned: np.ndarray, test: str
) -> _NumericTest:
    """``test`` on the values when both sides kept them, else on the sketches' buckets (KS)
    or the PSI bins (chi-square, G-test); nothing when either side has no finite value."""
    import numpy as np
    from scipy.stats import ks_2samp, wasserstein_distance

    if not (reference["count"] and current.count):
        return _NumericTest()
    ref_values, cur_values = reference["values"], current.values()
    both_kept = ref_values is not None and cur_values is not None
    ref_buckets = np.zeros(N_BUCKETS, dtype=np.int64)
    ref_buckets[reference["sketch"]["index"]] = reference["sketch"]["count"]
    if both_kept:
        wasserstein = wasserstein_distance(ref_values, cur_values)
    else:
        index = np.flatnonzero(ref_buckets + current.buckets)
        wasserstein = stats.wasserstein_from_counts(
            bucket_values(index), ref_buckets[index], current.buckets[index]
        )
    wasserstein /= reference["scale"]
    if test == "ks" and both_kept:
        with warnings.catch_warnings():
            # scipy's exact p-value may fall back to its asymptotic one: still scipy's answer
            warnings.filterwarnings("ignore", "ks_2samp: Exact calculation unsuccessful")
            result = ks_2samp(ref_values, cur_values)
        return _NumericTest(float(result.statistic), float(result.pvalue), 0.0, wasserstein)
    if test == "ks":
        statistic = stats.ks_from_counts(ref_buckets, current.buckets)
        p_value = stats.ks_pvalue(statistic, reference["count"], current.count)
        error = stats.ks_bucket_error_bound(ref_buckets, current.buckets)
        return _NumericTest(statistic, p_value, error, wasserstein)
    statistic, p_value = stats.chi2_homogeneity(
        reference["reference_bins"], binned, g_test=test == "g-test"
    )
    return _NumericTest(statistic, p_value, 0.0, wasserstein)


def _default_categorical_test(reference: list[int], current: list[int]) -> str:
    cells = [(r, c) for r, c in zip(reference, current, strict=True) if r or c]
    if len(cells) == 2:
        total = sum(r + c for r, c in cells)
        rows = sum(r for r, _ in cells), sum(c for _, c in cells)
        expected = [row * (r + c) / total for r, c in cells for row in rows]
        if min(expected) < 5:
            return "fisher"
    return "chi2"


def compare_categorical(
    name: str, reference: dict[str, Any], current: CategoricalSummary, test: str | None
) -> ColumnTest:
    vocabulary = reference["vocabulary"]
    counts = [current.counts.get(v, 0) for v in vocabulary]
    counts.append(current.count - sum(counts))
    ref_counts = list(reference["reference_bins"])
    histogram, psi = _histogram(
        [*vocabulary, "other"], ref_counts, counts, reference["nulls"], current.rows - current.count
    )
    known = set(vocabulary) | set(reference["other_categories"])
    unseen = [n for n, _ in current.ranked() if n not in known]
    test = test or _default_categorical_test(ref_counts, counts)
    statistic = p_value = None
    if reference["count"] and current.count:
        if test == "fisher":
            cells = [(r, c) for r, c in zip(ref_counts, counts, strict=True) if r or c]
            if len(cells) != 2:
                raise ArgumentError(
                    f"Fisher's exact test needs exactly two categories; column {name!r} has "
                    f"{len(cells)}. Use 'chi2' or 'g-test' for it."
                )
            statistic, p_value = stats.fisher_2x2(*zip(*cells, strict=True))
        else:
            statistic, p_value = stats.chi2_homogeneity(ref_counts, counts, g_test=test == "g-test")
    return {
        "name": name,
        "kind": CATEGORICAL,
        "test": test,
        "statistic": _finite(statistic),
        "statistic_max_error": 0.0,
        "p_value": _finite(p_value),
        "psi": psi,
        "jensen_shannon": stats.jensen_shannon(
            [p for p in histogram["reference"]], [p for p in histogram["current"]]
        ),
        "null_rate_reference": reference["nulls"] / reference["rows"],
        "null_rate_current": (current.rows - current.count) / current.rows,
        "unseen_categories": unseen[:UNSEEN_CAP],
        "unseen_categories_total": len(unseen),
        "effect_metric": "psi",
        "effect_size": psi,
        "histogram": histogram,
    }
