"""Column summaries for drift profiles: a mergeable log-bucket sketch and category counts.

Numeric columns are summarised by exact counts in fixed buckets whose bounds are powers of
``γ = (1 + α) / (1 - α)`` (``α = RELATIVE_ACCURACY``, the DDSketch mapping), plus min, max,
null count, and the values themselves while there are few enough; categorical columns by
exact counts per category. Everything is a sum, a min/max or sorted values, so summaries
do not depend on row order and merge exactly. See :mod:`airflow_mlops.drift.profile`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from airflow_mlops.exceptions import ContractError, format_names

if TYPE_CHECKING:
    from collections.abc import Mapping

    import numpy as np
    import pyarrow as pa

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
OTHER_NAMES_CAP = 1000


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


class NumericSummary:
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

    def merge(self, other: NumericSummary) -> NumericSummary:
        merged = NumericSummary(self.keep)
        merged.rows, merged.count = self.rows + other.rows, self.count + other.count
        merged.buckets = self.buckets + other.buckets
        merged.min, merged.max = min(self.min, other.min), max(self.max, other.max)
        merged.kept = None if self.kept is None else list(self.kept)
        merged._keep(other.kept)
        return merged

    def values(self) -> np.ndarray | None:
        import numpy as np

        return None if self.kept is None else np.sort(np.concatenate([*self.kept, np.empty(0)]))


class CategoricalSummary:
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

    def merge(self, other: CategoricalSummary) -> CategoricalSummary:
        merged = CategoricalSummary(self.keep)
        merged.rows, merged.count = self.rows + other.rows, self.count + other.count
        merged.counts = dict(self.counts)
        for name, n in other.counts.items():
            merged.counts[name] = merged.counts.get(name, 0) + n
        merged.folded = self.folded + other.folded
        merged._cap()
        return merged

    def ranked(self) -> list[tuple[str, int]]:
        return sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))


Summary = NumericSummary | CategoricalSummary


def new_summary(kind: str, keep: int | None) -> Summary:
    return NumericSummary(keep) if kind == NUMERIC else CategoricalSummary(keep)


def kind_of(t: pa.DataType) -> str | None:
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
    actual = kind_of(t)
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
