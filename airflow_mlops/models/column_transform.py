"""A fitted ``ColumnTransformer`` as numpy arithmetic on Arrow columns, verified bit for bit.

scikit-learn's ``ColumnTransformer.transform`` costs milliseconds of Python per call on a small
DataFrame, whatever the rows; the arithmetic it does is a few numpy operations.
:class:`ArrowColumnTransformer` does the same operations in the same order, reading the
columns of a ``pyarrow.RecordBatch`` directly (no pandas):

- ``StandardScaler``: ``x -= mean_`` then ``x /= scale_`` in float64, as its ``transform``
  does (zero scales were already set to 1 by ``fit``; NaN passes through);
- ``OneHotEncoder`` (dense float64, ``drop=None``, no infrequent categories, string
  categories): 1.0 at the category's index, zeros for an unknown value when
  ``handle_unknown="ignore"``;
- ``"passthrough"`` numeric columns, ``"drop"``, and ``remainder`` ``"drop"`` or
  ``"passthrough"``; output columns in the fitted transformers' order, remainder last.

Whatever it cannot do exactly it does not do: :func:`build_arrow_transformer` refuses other
transformers and options (with the reason), and :meth:`ArrowColumnTransformer.transform`
returns ``None`` for a batch it would treat differently from scikit-learn (an absent column,
an unexpected Arrow type, an infinite value, a missing categorical value, an unknown category
with ``handle_unknown="error"``): the caller then calls scikit-learn, so its answers and its
errors stay its own. :func:`verified_arrow_transformer` keeps it only if its output is
bit-identical to scikit-learn's on check rows.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import pyarrow as pa


@dataclass(frozen=True)
class _Scaled:
    """Numeric columns, optionally centred and scaled (``StandardScaler`` or passthrough)."""

    columns: tuple[str, ...]
    mean: np.ndarray | None
    scale: np.ndarray | None

    @property
    def width(self) -> int:
        return len(self.columns)

    def fill(self, batch: pa.RecordBatch, out: np.ndarray) -> bool:
        import numpy as np

        for j, name in enumerate(self.columns):
            values = _numeric_column(batch, name)
            if values is None:
                return False
            out[:, j] = values
        if np.isinf(out).any():  # scikit-learn refuses them: let it say so
            return False
        if self.mean is not None:
            out -= self.mean
        if self.scale is not None:
            out /= self.scale
        return True


@dataclass(frozen=True)
class _OneHot:
    """String columns one-hot encoded against their fitted categories (``OneHotEncoder``)."""

    columns: tuple[str, ...]
    categories: tuple[tuple[str, ...], ...]
    ignore_unknown: bool

    @property
    def width(self) -> int:
        return sum(len(values) for values in self.categories)

    def fill(self, batch: pa.RecordBatch, out: np.ndarray) -> bool:
        import numpy as np
        import pyarrow.compute as pc

        out[:] = 0.0
        offset = 0
        for name, values in zip(self.columns, self.categories, strict=True):
            column = _string_column(batch, name)
            if column is None:
                return False
            codes = pc.index_in(column, value_set=_value_set(values, column.type))
            if codes.null_count and not self.ignore_unknown:
                return False  # scikit-learn raises its "Found unknown categories" error
            index = (codes.fill_null(-1) if codes.null_count else codes).to_numpy()
            rows = np.flatnonzero(index >= 0)
            out[rows, offset + index[rows]] = 1.0
            offset += len(values)
        return True


@functools.lru_cache(maxsize=256)
def _value_set(values: tuple[str, ...], kind: pa.DataType) -> pa.Array:
    """The categories as an Arrow array of the column's type (made once per type)."""
    import pyarrow as pa

    return pa.array(values, type=kind)


class ArrowColumnTransformer:
    """A fitted ``ColumnTransformer``'s output computed from Arrow columns with numpy.

    Build it with :func:`verified_arrow_transformer` (or :func:`build_arrow_transformer`,
    unverified). Pickles (plain tuples and float64 arrays).

    :param blocks: the output blocks, in scikit-learn's output column order.
    """

    def __init__(self, blocks: tuple[_Scaled | _OneHot, ...]) -> None:
        self.blocks = blocks
        self.width = sum(block.width for block in blocks)

    def transform(self, batch: pa.RecordBatch) -> np.ndarray | None:
        """The float64 matrix scikit-learn's ``transform`` gives for ``batch`` converted to
        pandas, or ``None`` when scikit-learn must be asked instead (see the module)."""
        import numpy as np

        out = np.empty((batch.num_rows, self.width), dtype=np.float64)
        start = 0
        for block in self.blocks:
            if not block.fill(batch, out[:, start : start + block.width]):
                return None
            start += block.width
        return out


def build_arrow_transformer(preprocess: Any) -> tuple[ArrowColumnTransformer | None, str]:
    """``preprocess`` (a fitted ``ColumnTransformer``, or a one-step ``Pipeline`` of one) as
    an :class:`ArrowColumnTransformer`, or ``None`` and what is unsupported."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    if isinstance(preprocess, Pipeline) and len(preprocess.steps) == 1:
        preprocess = preprocess.steps[0][1]
    if type(preprocess) is not ColumnTransformer:
        return None, f"{type(preprocess).__name__} is not a ColumnTransformer"
    problem = _unsupported_options(preprocess)
    if problem:
        return None, problem
    specs = dict((name, spec) for name, spec, _ in preprocess.transformers)
    specs["remainder"] = preprocess.remainder
    names = list(preprocess.feature_names_in_)
    blocks: list[_Scaled | _OneHot] = []
    for name, fitted, _ in preprocess.transformers_:
        indices = preprocess._transformer_to_input_indices[name]
        columns = tuple(str(names[i]) for i in indices)
        if not columns or specs[name] == "drop":
            continue
        block = _block(specs[name], fitted, columns)
        if isinstance(block, str):
            return None, f"transformer {name!r}: {block}"
        blocks.append(block)
    return ArrowColumnTransformer(tuple(blocks)), "supported"


def _unsupported_options(preprocess: Any) -> str | None:
    if not hasattr(preprocess, "feature_names_in_"):
        return "it was not fitted on a DataFrame (columns are not selected by name)"
    if any(not isinstance(name, str) for name in preprocess.feature_names_in_):
        return "its input column names are not all strings"
    if preprocess.sparse_output_:
        return "its output is sparse"
    if preprocess.transformer_weights is not None:
        return "transformer_weights are not supported"
    output = getattr(preprocess, "_sklearn_output_config", {}).get("transform", "default")
    if output != "default":
        return f"set_output(transform={output!r}) is not supported"
    for name, _, columns in preprocess.transformers:
        if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
            return f"transformer {name!r} does not select its columns by a list of names"
    return None


def _block(spec: Any, fitted: Any, columns: tuple[str, ...]) -> _Scaled | _OneHot | str:
    """The block computing one transformer's output, or why it cannot be computed here."""
    import numpy as np
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    if isinstance(spec, str) and spec == "passthrough":
        return _Scaled(columns, None, None)
    if type(fitted) is StandardScaler:
        mean = np.array(fitted.mean_, dtype=np.float64) if fitted.with_mean else None  # copies
        scale = np.array(fitted.scale_, dtype=np.float64) if fitted.with_std else None
        return _Scaled(columns, mean, scale)
    if type(fitted) is OneHotEncoder:
        return _one_hot(fitted, columns)
    return f"{type(fitted).__name__} is not supported"


def _one_hot(encoder: Any, columns: tuple[str, ...]) -> _OneHot | str:
    import numpy as np

    if encoder.sparse_output:
        return "sparse_output=True is not supported"
    if encoder.drop is not None:
        return f"drop={encoder.drop!r} is not supported"
    if getattr(encoder, "_infrequent_enabled", False):
        return "infrequent categories (min_frequency/max_categories) are not supported"
    if encoder.handle_unknown not in ("ignore", "error"):
        return f"handle_unknown={encoder.handle_unknown!r} is not supported"
    if np.dtype(encoder.dtype) != np.float64:
        return f"dtype={np.dtype(encoder.dtype)} is not supported (float64 only)"
    categories = []
    for values in encoder.categories_:
        if values.dtype != object or not all(type(value) is str for value in values):
            return "only string categories are supported"
        categories.append(tuple(str(value) for value in values))
    return _OneHot(columns, tuple(categories), encoder.handle_unknown == "ignore")


def _column(batch: pa.RecordBatch, name: str) -> pa.Array | None:
    index = batch.schema.get_field_index(name)  # -1 if absent or duplicated
    return batch.column(index) if index >= 0 else None


def _numeric_column(batch: pa.RecordBatch, name: str) -> np.ndarray | None:
    """The column as pandas would give it (nulls as NaN), for float64 or integer columns up
    to 32 bits unsigned; None for anything else."""
    import pyarrow as pa

    column = _column(batch, name)
    if column is None:
        return None
    kind = column.type
    if not (pa.types.is_float64(kind) or pa.types.is_integer(kind)) or pa.types.is_uint64(kind):
        return None
    return column.to_numpy(zero_copy_only=False)


def _string_column(batch: pa.RecordBatch, name: str) -> pa.Array | None:
    """The column if it holds strings and no nulls (scikit-learn decides about missing values)."""
    import pyarrow as pa

    column = _column(batch, name)
    if column is None or column.null_count:
        return None
    kind = column.type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        return None
    return column


def verified_arrow_transformer(
    preprocess: Any, check_frame: pd.DataFrame
) -> tuple[ArrowColumnTransformer | None, str]:
    """:func:`build_arrow_transformer`, kept only if its output is bit-identical to
    ``preprocess.transform`` on ``check_frame`` and on copies of it with each numeric input
    column null in every row (and each encoded column an unseen value, for encoders that
    ignore unknowns). Inputs go through Arrow as scoring gives them: the batch for it, the
    batch converted to pandas for scikit-learn. Never raises."""
    transformer, reason = build_arrow_transformer(preprocess)
    if transformer is None:
        return None, reason
    try:
        import pyarrow as pa

        batch = pa.RecordBatch.from_pandas(check_frame, preserve_index=False)
        batches = [batch, *_variants(transformer, batch)]
        for variant in batches:
            problem = _difference(preprocess, transformer, variant)
            if problem:
                return None, problem
    except Exception as exc:  # any failure means: keep scikit-learn
        return None, f"check failed: {type(exc).__name__}: {exc}"
    rows = sum(variant.num_rows for variant in batches)
    return transformer, f"bit-identical to scikit-learn on {rows} rows (with missing-value copies)"


def _variants(transformer: ArrowColumnTransformer, batch: pa.RecordBatch) -> list[pa.RecordBatch]:
    import pyarrow as pa

    variants = []
    for block in transformer.blocks:
        for name in block.columns:
            index = batch.schema.get_field_index(name)
            field = batch.schema.field(index)
            if isinstance(block, _Scaled):
                column = pa.nulls(batch.num_rows, type=field.type)
            elif block.ignore_unknown:
                column = pa.array(["\x00unseen"] * batch.num_rows, type=field.type)
            else:
                continue
            variants.append(batch.set_column(index, field, column))
    return variants


def _difference(
    preprocess: Any, transformer: ArrowColumnTransformer, batch: pa.RecordBatch
) -> str | None:
    import numpy as np

    expected = preprocess.transform(batch.to_pandas())
    actual = transformer.transform(batch)
    if actual is None:
        return (
            "it leaves the check rows to scikit-learn (a column's Arrow type, an infinite value, "
            "a missing or unknown category)"
        )
    if not isinstance(expected, np.ndarray) or expected.dtype != np.float64:
        kind = getattr(expected, "dtype", type(expected).__name__)
        return f"scikit-learn's output is {kind}, not a float64 array"
    if expected.shape != actual.shape:
        return f"its output has shape {actual.shape}, scikit-learn's {expected.shape}"
    differing = np.flatnonzero((expected.view(np.uint64) != actual.view(np.uint64)).any(axis=1))
    if len(differing):
        return f"{len(differing)} of {batch.num_rows} rows differ from scikit-learn's in some bit"
    return None
