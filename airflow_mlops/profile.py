"""Reference profiles for drift checks: built once, streaming and mergeable; then ``compare``.

A profile summarises each column of the reference data (a model's training set or a chosen
partition) so that a daily check never re-reads it:

- **numeric**: a log-bucket sketch (exact counts in buckets whose bounds are fixed powers of
  ``γ = (1 + α) / (1 - α)``, ``α = RELATIVE_ACCURACY``, the DDSketch mapping), min, max,
  null count, and the values themselves while the column has at most ``sample_size`` of them
  (always, in ``exact`` mode). Quantile bin edges come from the values when kept (exactly
  ``np.quantile``) or from the sketch (the lower bound of the bucket holding each quantile,
  so the bins are within ``α`` of the quantiles and both sides' counts per bin are exact
  sums of buckets — the current's from its own sketch, plus exact counts of values below
  the reference's min and above its max for the two open outer bins).
- **categorical**: exact counts per category (exact while the column has at most
  ``sample_size`` distinct values; the rarest are then folded into "other"), the vocabulary
  being the ``max_categories`` most frequent ones plus an "other" bucket.

Everything a profile holds is a sum (or a min/max, or sorted values), so it does not depend
on row order or batch boundaries, and two profiles of disjoint rows merge into the profile
of their union exactly.

KS accuracy: with the values of both sides kept (small data, or ``exact``) the statistic and
p-value are ``scipy.stats.ks_2samp``'s. Otherwise the statistic is taken at the sketch's
bucket bounds over *all* rows of both sides (no sampling): it is never above the exact one
and below it by at most the largest single-bucket proportion, reported as
``statistic_max_error``; the p-value is Smirnov's asymptotic one, as ``ks_2samp`` computes
it for large samples. Buckets are 0.2 % of ``|x|`` wide, so the bound grows with
``|mean| / std``: measured on 300k-row normals shifted by 0.1 sd, bound 0.0007 / 0.004 /
0.08 for N(0, 1) / N(50, 10) / N(1000, 10), actual error 0.000003 / 0.0001 / 0.0005 (the
tests hold it under 2e-3 at the first two). Centre such features, or use ``exact``.

Verdicts rest on the effect size (PSI), not the p-value: with a million rows a KS p-value is
far below 0.05 for a shift of PSI ≈ 0.00003 that changes no model's behaviour, so a
p-value verdict would fire every day on large tables. The (Benjamini–Hochberg adjusted)
p-value is reported beside the PSI.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_mlops import drift
from airflow_mlops.exceptions import ArgumentError, ContractError, EmptyInputError, format_names

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    import numpy as np
    import pyarrow as pa

FORMAT = "airflow-mlops/drift-profile"
FORMAT_VERSION = 1
NUMERIC, CATEGORICAL = "numeric", "categorical"
#: Relative width of a sketch bucket: every bucket bound is within 0.1 % of the values in it.
RELATIVE_ACCURACY = 0.001
#: Magnitudes below this share the zero bucket; above ``_LARGEST`` share the outermost ones.
_SMALLEST, _LARGEST = 1e-9, 1e12
_GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LN_GAMMA = math.log(_GAMMA)
_K_LO = math.ceil(math.log(_SMALLEST) / _LN_GAMMA)
_J = math.ceil(math.log(_LARGEST) / _LN_GAMMA) - _K_LO + 1
N_BUCKETS = 2 * _J + 1
UNSEEN_CAP = 20
OTHER_NAMES_CAP = 1000
TESTS = {NUMERIC: ("ks", "chi2", "g-test"), CATEGORICAL: ("chi2", "g-test", "fisher")}


# ---------------------------------------------------------------- the log-bucket sketch


def bucket_index(values: np.ndarray) -> np.ndarray:
    """Ordered bucket of each finite value: ``_J`` is zero, ``_J + k`` is ``(U(k-1), U(k)]``,
    ``_J - k`` is ``[-U(k), -U(k-1))`` with ``U(k) = γ ** (k + _K_LO - 1)``."""
    import numpy as np

    with np.errstate(divide="ignore"):
        k = np.ceil(np.log(np.abs(values)) * (1.0 / _LN_GAMMA))
    j = np.clip(k - (_K_LO - 1), 0, _J)
    return (np.copysign(j, values) + _J).astype(np.intp)


def _bound(j: np.ndarray) -> np.ndarray:
    import numpy as np

    return np.exp((j + (_K_LO - 1)) * _LN_GAMMA)


def bucket_upper_edges(index: np.ndarray) -> np.ndarray:
    """The smallest value above bucket ``index``: a left-closed bin edge splitting after it."""
    import numpy as np

    s = np.asarray(index) - _J
    positive = np.nextafter(_bound(np.maximum(s, 0)), np.inf)
    return np.where(s >= 0, positive, -_bound(np.maximum(-s - 1, 0)))


def bucket_values(index: np.ndarray) -> np.ndarray:
    """A value within ``RELATIVE_ACCURACY`` of every value in bucket ``index``."""
    import numpy as np

    s = np.asarray(index) - _J
    return np.sign(s) * 2.0 * _bound(np.abs(s)) / (_GAMMA + 1.0)


# ---------------------------------------------------------------- per-column summaries


def _as_float(array: Any) -> np.ndarray:
    """Finite values of a numeric Arrow array as float64 (nulls, NaN and ±inf dropped)."""
    import numpy as np
    import pyarrow as pa

    if array.type != pa.float64():
        array = array.cast(pa.float64())
    values = array.to_numpy(zero_copy_only=False)
    finite = np.isfinite(values)
    return values if finite.all() else values[finite]


class _NumericSummary:
    """Counts, sketch, min/max and (up to ``keep``, ``None``: all) the values of a column."""

    kind = NUMERIC

    def __init__(self, keep: int | None) -> None:
        import numpy as np

        self.keep = keep
        self.rows = 0
        self.count = 0
        self.buckets = np.zeros(N_BUCKETS, dtype=np.int64)
        self.min, self.max = math.inf, -math.inf
        self.kept: list[np.ndarray] | None = []

    def update(self, array: Any) -> np.ndarray:
        """Add a column chunk; returns its finite values."""
        import numpy as np

        values = _as_float(array)
        self.rows += len(array)
        if values.size:
            self.count += values.size
            self.buckets += np.bincount(bucket_index(values), minlength=N_BUCKETS)
            self.min = min(self.min, float(values.min()))
            self.max = max(self.max, float(values.max()))
            self._keep([values.copy()])
        return values

    def _keep(self, parts: list[np.ndarray] | None) -> None:
        if self.kept is None or parts is None or (self.keep is not None and self.count > self.keep):
            self.kept = None
        else:
            self.kept.extend(parts)

    def merge(self, other: _NumericSummary) -> _NumericSummary:
        merged = _NumericSummary(self.keep)
        merged.rows, merged.count = self.rows + other.rows, self.count + other.count
        merged.buckets = self.buckets + other.buckets
        merged.min, merged.max = min(self.min, other.min), max(self.max, other.max)
        merged.kept = None if self.kept is None else list(self.kept)
        merged._keep(other.kept)
        return merged

    def values(self) -> np.ndarray | None:
        import numpy as np

        return None if self.kept is None else np.sort(np.concatenate([*self.kept, np.empty(0)]))


class _CategoricalSummary:
    """Counts per category (exact up to ``keep`` distinct values) and nulls."""

    kind = CATEGORICAL

    def __init__(self, keep: int | None) -> None:
        self.keep = keep
        self.rows = 0
        self.count = 0
        self.counts: dict[str, int] = {}
        self.folded = 0

    def update(self, array: Any) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        if array.type != pa.string():
            array = array.cast(pa.string())
        self.rows += len(array)
        self.count += len(array) - array.null_count
        tally = pc.value_counts(array)
        names = tally.field("values").to_pylist()
        for name, n in zip(names, tally.field("counts").to_pylist(), strict=True):
            if name is not None:
                self.counts[name] = self.counts.get(name, 0) + n
        self._cap()

    def _cap(self) -> None:
        if self.keep is not None and len(self.counts) > max(self.keep, 1):
            ranked = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
            self.folded += sum(n for _, n in ranked[self.keep :])
            self.counts = dict(ranked[: self.keep])

    def merge(self, other: _CategoricalSummary) -> _CategoricalSummary:
        merged = _CategoricalSummary(self.keep)
        merged.rows, merged.count = self.rows + other.rows, self.count + other.count
        merged.counts = dict(self.counts)
        for name, n in other.counts.items():
            merged.counts[name] = merged.counts.get(name, 0) + n
        merged.folded = self.folded + other.folded
        merged._cap()
        return merged

    def ranked(self) -> list[tuple[str, int]]:
        return sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))


_Summary = _NumericSummary | _CategoricalSummary


def _new_summary(kind: str, keep: int | None) -> _Summary:
    return _NumericSummary(keep) if kind == NUMERIC else _CategoricalSummary(keep)


def _kind_of(t: pa.DataType) -> str | None:
    import pyarrow.types as pt

    if pt.is_integer(t) or pt.is_floating(t) or pt.is_decimal(t):
        return NUMERIC
    if pt.is_string(t) or pt.is_large_string(t) or pt.is_boolean(t) or pt.is_dictionary(t):
        return CATEGORICAL
    return None


def _accepts(kind: str, t: pa.DataType) -> bool:
    import pyarrow.types as pt

    if pt.is_null(t) or pt.is_boolean(t):
        return True
    actual = _kind_of(t)
    return actual == kind or (kind == CATEGORICAL and actual == NUMERIC)


def check_batch(columns: Mapping[str, str], schema: pa.Schema, *, what: str) -> None:
    """Raise :class:`ContractError` if ``schema`` lacks a profiled column or mistypes one."""
    missing = [n for n in columns if n not in schema.names]
    mistyped = {
        n: (str(schema.field(n).type), kind)
        for n, kind in columns.items()
        if n in schema.names and not _accepts(kind, schema.field(n).type)
    }
    if missing or mistyped:
        parts = [f"missing {len(missing)} column(s): {format_names(missing)}"] if missing else []
        if mistyped:
            shown = [f"{n} is {a}, profiled as {k}" for n, (a, k) in mistyped.items()]
            parts.append(f"mistyped {len(mistyped)} column(s): {format_names(shown)}")
        raise ContractError(
            f"The {what} does not match the drift profile's columns: {'; '.join(parts)}. "
            "Select the profiled columns, or build the profile with the columns you check.",
            missing_columns=missing,
            mistyped_columns=mistyped,
        )


# ---------------------------------------------------------------- builder and profile


class ProfileBuilder:
    """Builds a :class:`ReferenceProfile` batch by batch, in memory bounded by ``sample_size``.

    :param columns: ``{name: "numeric" | "categorical"}``; ``None`` infers them from the first
        batch (integers, floats, decimals numeric; strings, booleans, dictionaries
        categorical; other types are left out).
    :param bins: quantile bins per numeric column (the reference's deciles by default).
    :param max_categories: categories kept by name; the rest share an "other" bucket.
    :param sample_size: per column, values kept verbatim while there are at most this many
        (exact quantiles, KS and Wasserstein on small data); distinct categories tracked.
    :param exact: keep every value (exact statistics on any size; memory grows with the data).

    .. code-block:: python

        builder = ProfileBuilder()
        for batch in parquet_io.iter_batches(fs, path):
            builder.update(batch)
        store_text(builder.finish().to_json())
    """

    def __init__(
        self,
        columns: Mapping[str, str] | None = None,
        *,
        bins: int = 10,
        max_categories: int = 50,
        sample_size: int = 100_000,
        exact: bool = False,
    ) -> None:
        for name, value, low in (
            ("bins", bins, 1),
            ("max_categories", max_categories, 1),
            ("sample_size", sample_size, 0),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ArgumentError(
                    f"The '{name}' parameter of ProfileBuilder must be an int >= {low}. "
                    f"Got {value!r} instead."
                )
        if columns is not None:
            bad = {n: k for n, k in columns.items() if k not in (NUMERIC, CATEGORICAL)}
            if bad or not columns:
                raise ArgumentError(
                    "The 'columns' parameter of ProfileBuilder must map column names to "
                    f"'numeric' or 'categorical'. Got {dict(bad or columns)!r} instead."
                )
        self.bins, self.max_categories = bins, max_categories
        self.sample_size, self.exact = sample_size, bool(exact)
        self.columns: dict[str, str] | None = dict(columns) if columns is not None else None
        self.rows = 0
        self._summaries: dict[str, _Summary] = {}
        if self.columns is not None:
            self._start(self.columns)

    @property
    def _keep(self) -> int | None:
        return None if self.exact else self.sample_size

    def _start(self, columns: dict[str, str]) -> None:
        self.columns = columns
        self._summaries = {n: _new_summary(k, self._keep) for n, k in columns.items()}

    def update(self, batch: pa.RecordBatch) -> None:
        """Add one batch of reference rows."""
        if self.columns is None:
            inferred = {f.name: k for f in batch.schema if (k := _kind_of(f.type)) is not None}
            if not inferred:
                raise ArgumentError(
                    "None of the columns "
                    f"{format_names(f'{f.name} ({f.type})' for f in batch.schema)} is numeric "
                    "or categorical. Pass columns={name: 'numeric' | 'categorical'}."
                )
            self._start(inferred)
        assert self.columns is not None
        check_batch(self.columns, batch.schema, what="reference data")
        for name, summary in self._summaries.items():
            summary.update(batch.column(name))
        self.rows += batch.num_rows

    def merge(self, other: ProfileBuilder) -> ProfileBuilder:
        """A builder holding the rows of both (neither is changed)."""
        mine = (self.bins, self.max_categories, self.sample_size, self.exact)
        theirs = (other.bins, other.max_categories, other.sample_size, other.exact)
        if (
            mine != theirs
            or None not in (self.columns, other.columns)
            and (self.columns != other.columns)
        ):
            raise ArgumentError(
                "Cannot merge profile builders with different columns or settings: "
                f"{self.columns} {mine} vs {other.columns} {theirs}."
            )
        columns = self.columns if self.columns is not None else other.columns
        merged = ProfileBuilder(
            columns,
            bins=self.bins,
            max_categories=self.max_categories,
            sample_size=self.sample_size,
            exact=self.exact,
        )
        merged.rows = self.rows + other.rows
        for name in merged._summaries:
            mine_s, theirs_s = self._summaries.get(name), other._summaries.get(name)
            if mine_s is not None and theirs_s is not None:
                merged._summaries[name] = mine_s.merge(theirs_s)  # type: ignore[arg-type]
            else:
                merged._summaries[name] = mine_s or theirs_s  # type: ignore[assignment]
        return merged

    def finish(self) -> ReferenceProfile:
        if self.rows == 0 or self.columns is None:
            raise EmptyInputError(
                "The reference data had no rows, so there is no profile to build. Check the "
                "reference partition or query."
            )
        columns = {
            name: _finish_numeric(s, self.bins)
            if isinstance(s, _NumericSummary)
            else _finish_categorical(s, self.max_categories)
            for name, s in self._summaries.items()
        }
        return ReferenceProfile(
            rows=self.rows,
            columns=columns,
            bins=self.bins,
            max_categories=self.max_categories,
            sample_size=self.sample_size,
            exact=self.exact,
        )


def _finish_numeric(s: _NumericSummary, bins: int) -> dict[str, Any]:
    import numpy as np

    values = s.values()
    column: dict[str, Any] = {
        "kind": NUMERIC,
        "rows": s.rows,
        "count": s.count,
        "nulls": s.rows - s.count,
        "min": s.min if s.count else None,
        "max": s.max if s.count else None,
        "values": None if values is None else values.tolist(),
    }
    nonzero = np.flatnonzero(s.buckets)
    column["sketch"] = {"index": nonzero.tolist(), "count": s.buckets[nonzero].tolist()}
    column["edge_buckets"] = None
    if s.count == 0:
        edges: list[float] = []
        reference = [0]
    elif values is not None:
        edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, bins + 1))).tolist()
        edges = edges if len(edges) > 1 else edges * 2
        reference = bin_counts(edges, values).tolist()
    else:
        edges, reference, column["edge_buckets"] = _sketch_edges(s.buckets, bins, s.min, s.max)
    column["edges"], column["reference_bins"] = edges, reference
    column["scale"], column["scale_by"] = _scale(s.buckets, values) if s.count else (1.0, "none")
    return column


def _sketch_edges(
    buckets: np.ndarray, bins: int, low: float, high: float
) -> tuple[list[float], list[int], list[int]]:
    """Edges at the lower bound of the bucket holding each quantile, and exact bin counts.

    Like ``np.quantile`` edges with ``[q, …)`` bins: an edge opens the bucket the quantile
    falls in, so a repeated value (a discrete feature) starts its own bin.
    """
    import numpy as np

    cum = np.cumsum(buckets)
    n = int(cum[-1])
    holding = np.searchsorted(cum, n * np.arange(1, bins) / bins, side="right")
    pick = np.unique(np.clip(holding, 1, len(cum) - 1) - 1)
    inner = bucket_upper_edges(pick)
    inside = (inner > low) & (inner < high)
    pick, inner = pick[inside], inner[inside]
    reference = [0, *np.diff([0, *cum[pick].tolist(), n]).tolist(), 0]
    return [low, *inner.tolist(), high], [int(c) for c in reference], pick.tolist()


def _bins_from_buckets(
    buckets: np.ndarray, edge_buckets: list[int], below: int, above: int
) -> np.ndarray:
    """Counts per bin of :func:`_sketch_edges`' edges, from bucket counts and the exact
    numbers of values below the reference's min and above its max."""
    import numpy as np

    cum = np.cumsum(buckets)
    counts = np.diff([0, *cum[edge_buckets].tolist(), int(cum[-1])])
    counts[0] -= below
    counts[-1] -= above
    return np.array([below, *counts.tolist(), above], dtype=np.int64)


def _scale(buckets: np.ndarray, values: np.ndarray | None) -> tuple[float, str]:
    """The Wasserstein norm: the reference's IQR; its std if the IQR is 0; else 1 (raw)."""
    import numpy as np

    if values is not None:
        points, weights = values, np.ones_like(values)
        q1, q3 = (float(q) for q in np.quantile(values, [0.25, 0.75]))
    else:
        index = np.flatnonzero(buckets)
        points, weights = bucket_values(index), buckets[index].astype(np.float64)
        cum = np.cumsum(weights) / weights.sum()
        q1, q3 = (float(points[np.searchsorted(cum, q)]) for q in (0.25, 0.75))
    if q3 > q1:
        return q3 - q1, "iqr"
    mean = np.average(points, weights=weights)
    std = float(np.sqrt(np.average((points - mean) ** 2, weights=weights)))
    return (std, "std") if std > 0 else (1.0, "none")


def _finish_categorical(s: _CategoricalSummary, max_categories: int) -> dict[str, Any]:
    ranked = s.ranked()
    vocabulary = ranked[:max_categories]
    return {
        "kind": CATEGORICAL,
        "rows": s.rows,
        "count": s.count,
        "nulls": s.rows - s.count,
        "vocabulary": [name for name, _ in vocabulary],
        "reference_bins": [n for _, n in vocabulary] + [s.count - sum(n for _, n in vocabulary)],
        "other_categories": [name for name, _ in ranked[max_categories:]][:OTHER_NAMES_CAP],
        "folded": s.folded,
    }


def bin_counts(edges: list[float], values: np.ndarray) -> np.ndarray:
    """Counts over ``(-inf, e0)``, ``[e0, e1)`` … ``[e(n-2), e(n-1)]``, ``(e(n-1), inf)``."""
    import numpy as np

    bounds = np.array(edges, dtype=np.float64)
    if bounds.size:
        bounds[-1] = np.nextafter(bounds[-1], np.inf)
    return np.bincount(np.searchsorted(bounds, values, side="right"), minlength=len(edges) + 1)


@dataclass(frozen=True)
class ReferenceProfile:
    """The stored summary of a reference data set (see the module docstring).

    :param rows: reference rows.
    :param columns: per column, a JSON-ready dict: ``kind``, ``rows``, ``count`` (non-null),
        ``nulls``, ``reference_bins`` and, numeric, ``edges``/``min``/``max``/``sketch``/
        ``values``/``scale``; categorical, ``vocabulary``/``other_categories``/``folded``.
    """

    rows: int
    columns: dict[str, dict[str, Any]]
    bins: int = 10
    max_categories: int = 50
    sample_size: int = 100_000
    exact: bool = False
    relative_accuracy: float = field(default=RELATIVE_ACCURACY)

    def to_json(self) -> str:
        return json.dumps(
            {"format": FORMAT, "version": FORMAT_VERSION, **self.__dict__},
            allow_nan=False,  # keys in build order: the report lists columns in this order
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> ReferenceProfile:
        data = json.loads(text)
        if data.pop("format", None) != FORMAT or data.pop("version", None) != FORMAT_VERSION:
            raise ArgumentError(
                f"This is not a version-{FORMAT_VERSION} drift profile (format {FORMAT!r}). "
                "Rebuild the profile with ProfileBuilder."
            )
        return cls(**data)


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
    current = {n: _new_summary(k, keep) for n, k in kinds.items()}
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
            if isinstance(summary, _NumericSummary):
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
        if isinstance(summary, _NumericSummary):
            if reference["edge_buckets"] is not None:
                edge_buckets = reference["edge_buckets"]
                binned[name] = _bins_from_buckets(summary.buckets, edge_buckets, *outside[name])
            row = _compare_numeric(name, reference, summary, binned[name], chosen.get(name))
        else:
            row = _compare_categorical(name, reference, summary, chosen.get(name))
        columns.append(row)
    adjusted = drift.benjamini_hochberg([c["p_value"] for c in columns])
    for column, p_adjusted in zip(columns, adjusted, strict=True):
        column["p_value_adjusted"] = p_adjusted
        column["significant"] = None if p_adjusted is None else bool(p_adjusted < alpha)
        column["thresholds"] = list(limits[column["name"]])
        column["status"] = drift.verdict(column["effect_size"], limits[column["name"]])
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
    default = drift.check_thresholds(default_thresholds, what="compare (default_thresholds)")
    for what, given in (("thresholds", thresholds), ("tests", tests)):
        unknown = [n for n in given or {} if n not in profile.columns]
        if unknown:
            raise ArgumentError(
                f"The '{what}' parameter of compare names column(s) the profile lacks: "
                f"{format_names(unknown)}. Profiled: {format_names(profile.columns)}."
            )
    limits = {
        n: drift.check_thresholds(thresholds[n], what=f"column {n!r}")
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
    return histogram, drift.psi(reference, current)


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
    current: _NumericSummary,
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
            wasserstein = drift.wasserstein_from_counts(
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
            statistic = drift.ks_from_counts(ref_buckets, current.buckets)
            p_value = drift.ks_pvalue(statistic, reference["count"], current.count)
            error = drift.ks_bucket_error_bound(ref_buckets, current.buckets)
        else:
            statistic, p_value = drift.chi2_homogeneity(
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
    name: str, reference: dict[str, Any], current: _CategoricalSummary, test: str | None
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
            statistic, p_value = drift.fisher_2x2(*zip(*cells, strict=True))
        else:
            statistic, p_value = drift.chi2_homogeneity(ref_counts, counts, g_test=test == "g-test")
    return {
        "name": name,
        "kind": CATEGORICAL,
        "test": test,
        "statistic": _finite(statistic),
        "statistic_max_error": 0.0,
        "p_value": _finite(p_value),
        "psi": psi,
        "jensen_shannon": drift.jensen_shannon(
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
