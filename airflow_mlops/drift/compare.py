"""Comparing current data with a reference profile: tests, effect sizes, verdicts.

The report :func:`compare` returns is what the drift operator stores and renders. How the
statistics are computed and why verdicts rest on PSI: :mod:`airflow_mlops.drift.profile`;
each column's comparison: :mod:`airflow_mlops.drift.columns`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

from airflow_mlops.drift import stats
from airflow_mlops.drift.columns import TESTS, ColumnTest, compare_categorical, compare_numeric
from airflow_mlops.drift.profile import ReferenceProfile, bin_counts, bins_from_buckets
from airflow_mlops.drift.sketch import NUMERIC, NumericSummary, Summary, check_batch, new_summary
from airflow_mlops.exceptions import ArgumentError, EmptyInputError, format_names

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    import numpy as np
    import pyarrow as pa


# ---------------------------------------------------------------- the report's shape


class ColumnReport(ColumnTest):
    """A report's row: one column's test and its verdict."""

    p_value_adjusted: float | None  # Benjamini–Hochberg across the report's columns
    significant: bool | None  # ``p_value_adjusted < alpha``; reported, not a verdict
    thresholds: list[float]  # (warn, fail) on the effect size
    status: str  # "ok" | "warn" | "fail"


class DriftReport(TypedDict):
    """The drift report :func:`compare` returns, stored as JSON and rendered as HTML.

    ``table``, ``partition``, ``reference``, ``generated_by`` and ``created_at`` are added
    by :func:`airflow_mlops.drift.check.check_partition`.
    """

    reference_rows: int
    current_rows: int
    status: str  # the worst column status: "ok" | "warn" | "fail"
    correction: str
    alpha: float
    summary: dict[str, int]  # columns per status
    columns: list[ColumnReport]
    table: NotRequired[str]
    partition: NotRequired[str]
    reference: NotRequired[dict[str, str]]  # {"kind": "profile", "name": …} or a partition
    generated_by: NotRequired[dict[str, Any]]
    created_at: NotRequired[str]  # ISO 8601, UTC


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
) -> DriftReport:
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
    :raises EmptyInputError: when the current data has no rows.
    """
    limits, chosen = _check_compare_args(profile, thresholds, default_thresholds, tests, alpha)
    current = _accumulate(profile, batches, on_batch)
    columns = _verdicts(_column_rows(profile, current, chosen), limits, alpha)
    summary = {s: sum(c["status"] == s for c in columns) for s in ("ok", "warn", "fail")}
    return {
        "reference_rows": profile.rows,
        "current_rows": current.rows,
        "status": "fail" if summary["fail"] else "warn" if summary["warn"] else "ok",
        "correction": "benjamini-hochberg",
        "alpha": alpha,
        "summary": summary,
        "columns": columns,
    }


@dataclass
class _Current:
    """The current data so far: per column a summary, and per numeric column its counts on
    the reference's bins (``binned``, when the reference kept its values) or the counts of
    values below the reference's min and above its max (``outside``, when it sketched them).
    """

    summaries: dict[str, Summary]
    binned: dict[str, np.ndarray]
    outside: dict[str, list[int]] = field(default_factory=dict)
    rows: int = 0

    def add(self, name: str, reference: dict[str, Any], finite: np.ndarray) -> None:
        """Count one batch's finite values of numeric column ``name`` on the reference's bins."""
        import numpy as np

        if reference["edge_buckets"] is None:
            self.binned[name] += bin_counts(reference["edges"], finite)
        elif finite.size:
            self.outside[name][0] += int(np.count_nonzero(finite < reference["min"]))
            self.outside[name][1] += int(np.count_nonzero(finite > reference["max"]))

    def bins(self, name: str, reference: dict[str, Any], buckets: np.ndarray) -> np.ndarray:
        """Numeric column ``name``'s counts per reference bin (``buckets``: its sketch)."""
        if reference["edge_buckets"] is None:
            return self.binned[name]
        return bins_from_buckets(buckets, reference["edge_buckets"], *self.outside[name])


def _accumulate(
    profile: ReferenceProfile,
    batches: Iterable[pa.RecordBatch],
    on_batch: Callable[[int], None] | None,
) -> _Current:
    """Summarise the current data batch by batch; refuse it when it has no rows."""
    import numpy as np

    kinds = {n: c["kind"] for n, c in profile.columns.items()}
    keep = None if profile.exact else profile.sample_size
    numeric = {n: c for n, c in profile.columns.items() if c["kind"] == NUMERIC}
    current = _Current(
        summaries={n: new_summary(k, keep) for n, k in kinds.items()},
        binned={n: np.zeros(len(c["edges"]) + 1, dtype=np.int64) for n, c in numeric.items()},
        outside={n: [0, 0] for n in numeric},
    )
    for batch in batches:
        check_batch(kinds, batch.schema, what="current data")
        for name, summary in current.summaries.items():
            if isinstance(summary, NumericSummary):
                current.add(name, numeric[name], summary.update(batch.column(name)))
            else:
                summary.update(batch.column(name))
        current.rows += batch.num_rows
        if on_batch is not None:
            on_batch(batch.num_rows)
    if current.rows == 0:
        raise EmptyInputError(
            "The current data has no rows to compare with the reference profile. Check the "
            "partition, or skip the drift check for empty partitions."
        )
    return current


def _column_rows(
    profile: ReferenceProfile, current: _Current, chosen: Mapping[str, str]
) -> list[ColumnTest]:
    """Each profiled column's test and effect sizes, in the profile's column order."""
    rows = []
    for name, reference in profile.columns.items():
        summary = current.summaries[name]
        if isinstance(summary, NumericSummary):
            binned = current.bins(name, reference, summary.buckets)
            rows.append(compare_numeric(name, reference, summary, binned, chosen.get(name)))
        else:
            rows.append(compare_categorical(name, reference, summary, chosen.get(name)))
    return rows


def _verdicts(
    rows: list[ColumnTest], limits: Mapping[str, tuple[float, float]], alpha: float
) -> list[ColumnReport]:
    """The rows with their p-values adjusted across columns and their PSI verdicts."""
    adjusted = stats.benjamini_hochberg([row["p_value"] for row in rows])
    return [
        {
            **row,
            "p_value_adjusted": p_adjusted,
            "significant": None if p_adjusted is None else bool(p_adjusted < alpha),
            "thresholds": list(limits[row["name"]]),
            "status": stats.verdict(row["effect_size"], limits[row["name"]]),
        }
        for row, p_adjusted in zip(rows, adjusted, strict=True)
    ]


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
