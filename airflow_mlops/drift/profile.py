"""Reference profiles for drift checks: built once, streaming and mergeable.

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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_mlops.checks import check_int
from airflow_mlops.drift.sketch import (
    CATEGORICAL,
    NUMERIC,
    OTHER_NAMES_CAP,
    RELATIVE_ACCURACY,
    CategoricalSummary,
    NumericSummary,
    Summary,
    bucket_upper_edges,
    bucket_values,
    check_batch,
    kind_of,
    new_summary,
)
from airflow_mlops.exceptions import ArgumentError, EmptyInputError, format_names

if TYPE_CHECKING:
    from collections.abc import Mapping

    import numpy as np
    import pyarrow as pa

FORMAT = "airflow-mlops/drift-profile"
FORMAT_VERSION = 1


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
        for batch in iter_batches(fs, path):
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
        check_int(bins, "bins", "ProfileBuilder")
        check_int(max_categories, "max_categories", "ProfileBuilder")
        check_int(sample_size, "sample_size", "ProfileBuilder", min_value=0)
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
        self._summaries: dict[str, Summary] = {}
        if self.columns is not None:
            self._start(self.columns)

    @property
    def _keep(self) -> int | None:
        return None if self.exact else self.sample_size

    def _start(self, columns: dict[str, str]) -> None:
        self.columns = columns
        self._summaries = {n: new_summary(k, self._keep) for n, k in columns.items()}

    def update(self, batch: pa.RecordBatch) -> None:
        """Add one batch of reference rows."""
        if self.columns is None:
            inferred = {f.name: k for f in batch.schema if (k := kind_of(f.type)) is not None}
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
            if isinstance(s, NumericSummary)
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


def _finish_numeric(s: NumericSummary, bins: int) -> dict[str, Any]:
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


def bins_from_buckets(
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


def _finish_categorical(s: CategoricalSummary, max_categories: int) -> dict[str, Any]:
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
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ArgumentError(
                f"The drift profile is damaged: it is not valid JSON ({exc}). Rebuild the "
                "profile (BuildDriftProfileOperator or ProfileBuilder)."
            ) from exc
        if (
            not isinstance(data, dict)
            or data.pop("format", None) != FORMAT
            or data.pop("version", None) != FORMAT_VERSION
        ):
            raise ArgumentError(
                f"This is not a version-{FORMAT_VERSION} drift profile (format {FORMAT!r}). "
                "Rebuild the profile with ProfileBuilder."
            )
        try:
            return cls(**data)
        except TypeError as exc:
            raise ArgumentError(
                f"The drift profile is damaged: its fields do not match the format ({exc}). "
                "Rebuild the profile (BuildDriftProfileOperator or ProfileBuilder)."
            ) from exc
