"""Transforms over staged Parquet: SQL on DuckDB, or a Python function per batch.

Why DuckDB for the SQL form: it is embedded (no server), reads Parquet and Arrow datasets
without copying, runs group-bys, joins and window functions out of core within a memory
limit (spilling to a temp directory), uses every core, and returns results as a stream of
Arrow record batches — so a transform's memory is bounded by ``memory_limit`` plus one
output batch, whatever the input size. Inputs are registered as Arrow datasets on the
store's pyarrow filesystem, so the same transform runs on local disk or object storage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from airflow_mlops.exceptions import ArgumentError, TransformError, is_retryable

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs as pafs

BatchFunction = Callable[[Any], Any]
_SQL_SHOWN = 200


@contextmanager
def sql_transform(
    sql: str,
    inputs: Mapping[str, str | list[str]],
    *,
    filesystem: pafs.FileSystem,
    parameters: Mapping[str, Any] | None = None,
    batch_size: int = 100_000,
    memory_limit: str = "1GB",
    threads: int = 2,
    temp_directory: str | None = None,
) -> Iterator[pa.RecordBatchReader]:
    """Run ``sql`` over the Parquet ``inputs`` (view name → file path(s)) with DuckDB.

    Yields the result as a record-batch reader; its ``schema`` is known even when empty.
    ``parameters`` are bound by DuckDB (``$name`` in the SQL), never formatted into it.
    """
    import duckdb
    import pyarrow.dataset as pads

    config: dict[str, Any] = {"memory_limit": memory_limit, "threads": threads}
    if temp_directory:
        config["temp_directory"] = temp_directory
    con = duckdb.connect(config=config)
    try:
        for name, paths in inputs.items():
            if not name.isidentifier():
                raise ArgumentError(
                    f"Transform input names must be SQL identifiers. Got {name!r} instead."
                )
            con.register(name, pads.dataset(paths, filesystem=filesystem, format="parquet"))
        try:
            relation = con.sql(sql, params=dict(parameters or {}))
            if relation is None:
                raise TransformError(
                    "The SQL transform must be a query that returns rows. "
                    f"Got: {sql.strip()[:_SQL_SHOWN]!r}."
                )
            reader = relation.to_arrow_reader(batch_size)
        except duckdb.Error as exc:
            raise TransformError(
                f"The SQL transform failed: {exc}. Inputs: {', '.join(inputs) or 'none'}. "
                f"SQL: {sql.strip()[:_SQL_SHOWN]!r}. Fix the SQL or its parameters."
            ) from exc
        yield reader
    finally:
        con.close()


def map_batches(
    function: BatchFunction,
    batches: Iterable[pa.RecordBatch],
    *,
    input_schema: pa.Schema,
    batch_format: str = "arrow",
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """Apply ``function`` to each batch (as Arrow or pandas); the output schema and batches.

    The output schema comes from calling ``function`` on an empty batch of the input
    schema, so an empty input still yields a well-typed (empty) output.
    """
    if batch_format not in ("arrow", "pandas"):
        raise ArgumentError(
            f"batch_format must be 'arrow' or 'pandas'. Got {batch_format!r} instead."
        )
    import pyarrow as pa

    def apply(batch: pa.RecordBatch) -> pa.RecordBatch:
        arg = batch.to_pandas() if batch_format == "pandas" else batch
        try:
            result = function(arg)
        except Exception as exc:
            if is_retryable(exc):  # I/O trouble in the function (a timeout, a lost mount)
                raise
            name = getattr(function, "__qualname__", repr(function))
            raise TransformError(f"The transform function {name} raised {exc!r}.") from exc
        return _as_record_batch(result)

    schema = apply(pa.RecordBatch.from_pylist([], schema=input_schema)).schema

    def run() -> Iterator[pa.RecordBatch]:
        for batch in batches:
            yield apply(batch)

    return schema, run()


def _as_record_batch(result: Any) -> pa.RecordBatch:
    import pandas as pd
    import pyarrow as pa

    if isinstance(result, pa.RecordBatch):
        return result
    if isinstance(result, pd.DataFrame):
        try:
            result = pa.Table.from_pandas(result, preserve_index=False)
        except (pa.ArrowException, TypeError, ValueError) as exc:
            raise TransformError(
                f"The transform function's DataFrame cannot be converted to Arrow: {exc}."
            ) from exc
    if isinstance(result, pa.Table):
        if not result.num_rows:
            return pa.RecordBatch.from_pylist([], schema=result.schema)
        return result.combine_chunks().to_batches()[0]
    raise TransformError(
        "A transform function must return a pyarrow RecordBatch or Table or a pandas "
        f"DataFrame. Got {type(result).__name__} instead."
    )
