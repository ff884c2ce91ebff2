"""Comparing current data with a reference profile: tests, effect sizes, verdicts.

The report :func:`compare` returns is what the drift operator stores and renders. How the
statistics are computed and why verdicts rest on PSI: :mod:`airflow_mlops.drift.profile`.
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

from airflow_mlops.drift import stats
from airflow_mlops.exceptions import ArgumentError, EmptyInputError, format_names

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    import numpy as np
    import pyarrow as pa


from airflow_mlops.drift.profile import ReferenceProfile, bin_counts, bins_from_buckets
from airflow_mlops.drift.sketch import (
    CATEGORICAL,
    N_BUCKETS,
    NUMERIC,
    CategoricalSummary,
    NumericSummary,
    bucket_values,
    check_batch,
    new_summary,
)

TESTS = {NUMERIC: ("ks", "chi2", "g-test"), CATEGORICAL: ("chi2", "g-test", "fisher")}
UNSEEN_CAP = 20


# ---------------------------------------------------------------- compare


def compare(
    profile: ReferenceProfile,
    batches: Iterable[pa.RecordBatch],
    *,
    thresholds: Mapping[str, Sequence[float]] | None = None,
    default_thresholds: Sequence[float] = (0.1, 0.25),
    tests: Mapping[str, str] | None = None,
    alpha: float = 0.05,
    on_batch: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Compare current data, streamed batch by batch, with a reference profile.

    Verdicts by effect size: PSI against ``(warn, fail)`` thresholds, per column
    (``thresholds``) or ``default_thresholds``; p-values corrected across columns with
    Benjamini–Hochberg and reported beside it. Returns the JSON-ready drift report.

    :param tests: per column, the test to run instead of the default (numeric ``"ks"``;
        categorical ``"chi2"``, or ``"fisher"`` for two categories with an expected count
        below 5): numeric ``ks``/``chi2``/``g-test`` (the last two on the PSI bins),
        categorical ``chi2``/``g-test``/``fisher``.
    :param alpha: false discovery rate; a column is ``significant`` when its adjusted
        p-value is below it (reported, not a verdict).
    :param on_batch: called with each batch's row count (progress).
    """
    import numpy as np

    limits, chosen = _check_compare_args(profile, thresholds, default_thresholds, tests, alpha)
    kinds = {n: c["kind"] for n, c in profile.columns.items()}
    keep = None if profile.exact else profile.sample_size
    current = {n: new_summary(k, keep) for n, k in kinds.items()}
    binned = {
        n: np.zeros(len(c["edges"]) + 1, dtype=np.int64)
        for n, c in profile.columns.items()
        if c["kind"] == NUMERIC
    }
    outside = {n: [0, 0] for n in binned}  # below the reference's min, above its max
    rows = 0
    for batch in batches:
        check_batch(kinds, batch.schema, what="current data")
        for name, summary in current.items():
            if isinstance(summary, NumericSummary):
                finite = summary.update(batch.column(name))
                reference = profile.columns[name]
                if reference["edge_buckets"] is None:
                    binned[name] += bin_counts(reference["edges"], finite)
                elif finite.size:
                    outside[name][0] += int(np.count_nonzero(finite < reference["min"]))
                    outside[name][1] += int(np.count_nonzero(finite > reference["max"]))
            else:
                summary.update(batch.column(name))
        rows += batch.num_rows
        if on_batch is not None:
            on_batch(batch.num_rows)
    if rows == 0:
        raise EmptyInputError(
            "The current data has no rows to compare with the reference profile. Check the "
            "partition, or skip the drift check for empty partitions."
        )
    columns = []
    for name, reference in profile.columns.items():
        summary = current[name]
        if isinstance(summary, NumericSummary):
            if reference["edge_buckets"] is not None:
                edge_buckets = reference["edge_buckets"]
                binned[name] = bins_from_buckets(summary.buckets, edge_buckets, *outside[name])
            row = _compare_numeric(name, reference, summary, binned[name], chosen.get(name))
        else:
            row = _compare_categorical(name, reference, summary, chosen.get(name))
        columns.append(row)
    adjusted = stats.benjamini_hochberg([c["p_value"] for c in columns])
    for column, p_adjusted in zip(columns, adjusted, strict=True):
        column["p_value_adjusted"] = p_adjusted
        column["significant"] = None if p_adjusted is None else bool(p_adjusted < alpha)
        column["thresholds"] = list(limits[column["name"]])
        column["status"] = stats.verdict(column["effect_size"], limits[column["name"]])
    summary_counts = {s: sum(c["status"] == s for c in columns) for s in ("ok", "warn", "fail")}
    status = "fail" if summary_counts["fail"] else "warn" if summary_counts["warn"] else "ok"
    return {
        "reference_rows": profile.rows,
        "current_rows": rows,
        "status": status,
        "correction": "benjamini-hochberg",
        "alpha": alpha,
        "summary": summary_counts,
        "columns": columns,
    }


def _check_compare_args(
    profile: ReferenceProfile,
    thresholds: Mapping[str, Sequence[float]] | None,
    default_thresholds: Sequence[float],
    tests: Mapping[str, str] | None,
    alpha: float,
) -> tuple[dict[str, tuple[float, float]], dict[str, str]]:
    if not (isinstance(alpha, int | float) and 0 < alpha < 1):
        raise ArgumentError(f"The 'alpha' parameter of compare must be in (0, 1). Got {alpha!r}.")
    default = stats.check_thresholds(default_thresholds, what="compare (default_thresholds)")
    for what, given in (("thresholds", thresholds), ("tests", tests)):
        unknown = [n for n in given or {} if n not in profile.columns]
        if unknown:
            raise ArgumentError(
                f"The '{what}' parameter of compare names column(s) the profile lacks: "
                f"{format_names(unknown)}. Profiled: {format_names(profile.columns)}."
            )
    limits = {
        n: stats.check_thresholds(thresholds[n], what=f"column {n!r}")
        if thresholds and n in thresholds
        else default
        for n in profile.columns
    }
    chosen = dict(tests or {})
    for name, test in chosen.items():
        allowed = TESTS[profile.columns[name]["kind"]]
        if test not in allowed:
            raise ArgumentError(
                f"The test for column {name!r} must be one of {', '.join(allowed)}. "
                f"Got {test!r} instead."
            )
    return limits, chosen


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def _histogram(
    labels: list[str], reference: list[int], current: list[int], ref_nulls: int, cur_nulls: int
) -> tuple[dict[str, Any], float]:
    """The report's histogram (proportions, a "null" bin if either side has nulls) and PSI."""
    if ref_nulls or cur_nulls:
        labels, reference, current = (
            labels + ["null"],
            reference + [ref_nulls],
            current + [cur_nulls],
        )
    ref_total, cur_total = sum(reference), sum(current)
    histogram = {
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


def _compare_numeric(
    name: str,
    reference: dict[str, Any],
    current: NumericSummary,
    binned: np.ndarray,
    test: str | None,
) -> dict[str, Any]:
    import numpy as np
    from scipy.stats import ks_2samp, wasserstein_distance

    histogram, psi = _histogram(
        _edge_labels(reference["edges"]),
        list(reference["reference_bins"]),
        binned.tolist(),
        reference["nulls"],
        current.rows - current.count,
    )
    test = test or "ks"
    statistic = p_value = wasserstein = None
    error = 0.0
    ref_values, cur_values = reference["values"], current.values()
    both_kept = ref_values is not None and cur_values is not None
    if reference["count"] and current.count:
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
            statistic, p_value = float(result.statistic), float(result.pvalue)
        elif test == "ks":
            statistic = stats.ks_from_counts(ref_buckets, current.buckets)
            p_value = stats.ks_pvalue(statistic, reference["count"], current.count)
            error = stats.ks_bucket_error_bound(ref_buckets, current.buckets)
        else:
            statistic, p_value = stats.chi2_homogeneity(
                reference["reference_bins"], binned, g_test=test == "g-test"
            )
    return {
        "name": name,
        "kind": NUMERIC,
        "test": test,
        "statistic": _finite(statistic),
        "statistic_max_error": error,
        "p_value": _finite(p_value),
        "psi": psi,
        "wasserstein_normed": _finite(wasserstein),
        "null_rate_reference": reference["nulls"] / reference["rows"],
        "null_rate_current": (current.rows - current.count) / current.rows,
        "effect_metric": "psi",
        "effect_size": psi,
        "histogram": histogram,
    }


def _default_categorical_test(reference: list[int], current: list[int]) -> str:
    cells = [(r, c) for r, c in zip(reference, current, strict=True) if r or c]
    if len(cells) == 2:
        total = sum(r + c for r, c in cells)
        rows = sum(r for r, _ in cells), sum(c for _, c in cells)
        expected = [row * (r + c) / total for r, c in cells for row in rows]
        if min(expected) < 5:
            return "fisher"
    return "chi2"


def _compare_categorical(
    name: str, reference: dict[str, Any], current: CategoricalSummary, test: str | None
) -> dict[str, Any]:
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
