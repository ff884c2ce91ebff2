"""Any DB-API driver (and SQLite) as a streaming source: ``fetchmany`` rows to Arrow."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from airflow_mlops.exceptions import (
    AirflowMlopsError,
    SourceConfigurationError,
    SourceConnectionError,
    SourceQueryError,
)
from airflow_mlops.sources.base import (
    DEFAULT_BATCH_SIZE,
    BatchStream,
    check_batch_size,
    excerpt,
    leaks,
    redact,
    secret_forms,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    import pyarrow as pa

    Parameters = Mapping[str, Any] | Sequence[Any] | None


class DbApiSource:
    """Streams any DB-API 2.0 driver's results: ``fetchmany`` rows → Arrow columns.

    Types are inferred from the values: from the first batch, looking ahead up to
    ``lookahead_batches`` more batches while a column is still all-null (integers and
    floats seen together become floats). Later batches are cast to that schema; a value
    that does not fit fails with :class:`SourceQueryError` naming the column — CAST it in
    SQL. Parameters use the driver's own style and are bound by the driver.

    :param connect: opens a new DB-API connection (called once per stream).
    :param name: how the source appears in logs and messages (never a password).
    :param lookahead_batches: how many extra batches may be held to type all-null columns.
    :param secrets: strings redacted from every message (the connection's password).
    """

    dialect = "dbapi"
    #: Driver messages that mean "busy or flaky, try again later" (SQLite's among them).
    transient_markers: tuple[str, ...] = (
        "database is locked",
        "database table is locked",
        "disk i/o error",
    )

    def __init__(
        self,
        connect: Callable[[], Any],
        *,
        name: str,
        lookahead_batches: int = 3,
        secrets: Sequence[str | None] = (),
    ) -> None:
        self._connect_fn = connect
        self._name = name
        self._lookahead_batches = lookahead_batches
        self._secrets = secret_forms(secrets)

    def describe(self) -> str:
        return f"{self.dialect} {self._name}"

    def stream(
        self,
        sql: str,
        parameters: Parameters = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> BatchStream:
        check_batch_size(batch_size)
        resources = contextlib.ExitStack()
        try:
            connection = resources.enter_context(contextlib.closing(self._connect()))
            cursor = connection.cursor()
            resources.callback(cursor.close)
            with self._query_errors(sql):
                if parameters is None:
                    cursor.execute(sql)
                else:
                    cursor.execute(sql, parameters)
            with self._query_errors(sql):
                rows = RowBatches(
                    cursor, batch_size, self.describe(), lookahead=self._lookahead_batches
                )
        except BaseException:
            resources.close()
            raise
        return BatchStream(rows.schema, self._batches(rows, sql), resources)

    def _connect(self) -> Any:
        try:
            return self._connect_fn()
        except AirflowMlopsError:
            raise
        except Exception as exc:
            raise SourceConnectionError(
                f"Cannot connect to {self.describe()} ({self._message(exc)}). Check the "
                "connection's settings and that the database is reachable; the task will retry."
            ) from self._cause(exc)

    def _message(self, exc: BaseException) -> str:
        """``Type: message`` of a driver error, secrets redacted."""
        return redact(f"{type(exc).__name__}: {exc}", self._secrets)

    def _cause(self, exc: BaseException) -> BaseException | None:
        """``exc`` to chain, or None when its text holds a secret (tracebacks show causes)."""
        return None if leaks(exc, self._secrets) else exc

    def _batches(self, rows: RowBatches, sql: str) -> Iterator[pa.RecordBatch]:
        with self._query_errors(sql):
            yield from rows

    @contextlib.contextmanager
    def _query_errors(self, sql: str) -> Iterator[None]:
        try:
            yield
        except AirflowMlopsError:
            raise
        except Exception as exc:
            transient = isinstance(exc, ConnectionError | TimeoutError) or any(
                marker in str(exc).lower() for marker in self.transient_markers
            )
            if transient:
                raise SourceConnectionError(
                    f"{self.describe()} lost its connection or is busy ({self._message(exc)}); "
                    f"the task will retry. Query: {excerpt(sql)}"
                ) from self._cause(exc)
            raise SourceQueryError(
                f"{self.describe()} failed on the query ({self._message(exc)}). Fix the "
                f"query or its parameters. Query: {excerpt(sql)}"
            ) from self._cause(exc)


class SqliteSource(DbApiSource):
    """Streams a SQLite database file's query results (opened read-only).

    Parameters use SQLite's own binding (``:name`` or ``?``). SQLite has no date or
    timestamp type: such columns arrive as text, for the transform step to cast.

    :param path: the database file; it must exist (a missing file is a configuration
        error, :class:`SourceConfigurationError`, not retried).
    """

    dialect = "sqlite"

    def __init__(self, path: str, *, lookahead_batches: int = 3) -> None:
        self.path = path
        super().__init__(self._open, name=path, lookahead_batches=lookahead_batches)

    def _open(self) -> Any:
        import pathlib
        import sqlite3

        file = pathlib.Path(self.path).absolute()
        if not file.is_file():
            what = "is not a file" if file.exists() else "does not exist"
            raise SourceConfigurationError(
                f"The SQLite database {file} {what}. Point the connection's 'host' at an "
                "existing database file; retrying will not help."
            )
        return sqlite3.connect(file.as_uri() + "?mode=ro", uri=True)


class RowBatches:
    """A DB-API cursor's rows as Arrow batches of one schema, ``batch_size`` rows each.

    The schema is inferred from the first batch; while a column is all-null, up to
    ``lookahead`` more batches are read (and held) to find its type. A column still
    all-null after that keeps Arrow's ``null`` type.

    :param cursor: an executed DB-API cursor.
    :param batch_size: rows per ``fetchmany``.
    :param source: the source's description, for messages.
    :param lookahead: how many extra batches may be held to type all-null columns.
    """

    def __init__(self, cursor: Any, batch_size: int, source: str, *, lookahead: int) -> None:
        if cursor.description is None:
            raise SourceQueryError(
                f"{source}: the statement returned no result set. Extract with a query "
                "that returns rows (SELECT …)."
            )
        self._cursor = cursor
        self._batch_size = batch_size
        self._source = source
        self._names = [column[0] for column in cursor.description]
        self._pending = self._read_ahead(lookahead)
        self._inferred_rows = sum(batch.num_rows for batch in self._pending)
        self.schema = self._unify(self._pending)

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        while self._pending:
            yield self._conform(self._pending.pop(0))
        while (batch := self._fetch()) is not None:
            yield self._conform(batch)

    def _read_ahead(self, lookahead: int) -> list[pa.RecordBatch]:
        import pyarrow as pa

        pending: list[pa.RecordBatch] = []
        while (batch := self._fetch()) is not None:
            pending.append(batch)
            untyped = [f for f in self._unify(pending) if pa.types.is_null(f.type)]
            if not untyped or len(pending) > lookahead:
                break
        return pending

    def _fetch(self) -> pa.RecordBatch | None:
        import pyarrow as pa

        rows = self._cursor.fetchmany(self._batch_size)
        if not rows:
            return None
        arrays = []
        for name, values in zip(self._names, zip(*rows, strict=True), strict=True):
            try:
                arrays.append(pa.array(values))
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
                raise SourceQueryError(
                    f"{self._source}: column {name!r} holds values of different types "
                    f"({exc}). CAST it to one type in SQL, e.g. CAST({name} AS TEXT)."
                ) from exc
        return pa.RecordBatch.from_arrays(arrays, names=self._names)

    def _unify(self, batches: list[pa.RecordBatch]) -> pa.Schema:
        """One type per column over ``batches``: null gives way, ints widen to floats."""
        import pyarrow as pa

        fields = []
        for index, name in enumerate(self._names):
            types = list(dict.fromkeys(batch.column(index).type for batch in batches))
            try:
                unified = pa.unify_schemas(
                    [pa.schema([pa.field(name, type_)]) for type_ in types or [pa.null()]],
                    promote_options="permissive",
                )
            except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
                raise self._type_error(name, " vs ".join(map(str, types)), exc) from exc
            fields.append(unified.field(0))
        return pa.schema(fields)

    def _conform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        import pyarrow as pa

        if batch.schema.equals(self.schema):
            return batch
        columns = []
        for column, field in zip(batch.columns, self.schema, strict=True):
            if column.type != field.type:
                if not _castable(column.type, field.type):
                    raise self._type_error(field.name, f"{field.type} vs {column.type}")
                try:
                    column = column.cast(field.type)
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    types = f"{field.type} vs {column.type}"
                    raise self._type_error(field.name, types, exc) from exc
            columns.append(column)
        return pa.RecordBatch.from_arrays(columns, schema=self.schema)

    def _type_error(
        self, name: str, types: str, cause: BaseException | None = None
    ) -> SourceQueryError:
        detail = f": {cause}" if cause is not None else ""
        return SourceQueryError(
            f"{self._source}: column {name!r} changes type within the result ({types}{detail}); "
            f"its type was inferred from the first {self._inferred_rows} rows. CAST it in SQL "
            f"so every row has one type, e.g. CAST({name} AS REAL) or CAST({name} AS TEXT)."
        )


def _castable(source: pa.DataType, target: pa.DataType) -> bool:
    """Null fills any type; otherwise no silent text ↔ non-text conversion."""
    import pyarrow as pa

    if pa.types.is_null(source):
        return True
    if pa.types.is_null(target):
        return False
    return _is_text(source) == _is_text(target)


def _is_text(type_: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(
        pa.types.is_string(type_)
        or pa.types.is_large_string(type_)
        or pa.types.is_binary(type_)
        or pa.types.is_large_binary(type_)
    )
