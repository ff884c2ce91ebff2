"""SQL query results as streams of Arrow record batches, memory bounded by the batch size.

Three sources share one interface, :class:`SqlSource`:

- :class:`PostgresSource` streams through ADBC, which reads ``COPY … TO STDOUT (FORMAT
  binary)`` straight into Arrow. Parameters (psycopg's ``%(name)s`` / ``%s``) are bound
  client-side by psycopg's own quoting, because ADBC buffers the whole result when the
  server binds them.
- :class:`SqliteSource` reads with ``sqlite3`` (native ``:name`` / ``?`` binding).
- :class:`DbApiSource` is the fallback for any other DB-API driver: ``fetchmany`` rows
  turned into Arrow columns, the schema inferred from the first batches.

``stream()`` runs the query at once (so a bad query or an unreachable server fails there)
and returns a :class:`BatchStream`: an iterator of batches whose ``schema`` is known before
the first batch, even when there is none.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import queue
import re
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from airflow_mlops.exceptions import ArgumentError, SourceConnectionError, SourceQueryError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from types import TracebackType

    import pyarrow as pa

    Parameters = Mapping[str, Any] | Sequence[Any] | None

DEFAULT_BATCH_SIZE = 100_000
SQL_EXCERPT_CHARS = 200
#: a ``:name`` placeholder (not a ``::type`` cast, not a time like ``10:30``).
_NAMED_PLACEHOLDER = re.compile(r"(?<![:\w]):[A-Za-z_]\w*")
#: ADBC's own batch size target; each ADBC batch is then cut to ``batch_size`` rows.
POSTGRES_BATCH_SIZE_HINT_BYTES = 16 << 20
#: ADBC batches read ahead on a background thread while the caller writes the last one.
POSTGRES_PREFETCH_BATCHES = 2
#: SQLSTATE classes that mean "try again later": connection exception, operator
#: intervention (shutdown), insufficient resources (too many connections).
_RETRYABLE_SQLSTATE_PREFIXES = ("08", "57P", "53")
#: Phrases libpq uses when the server goes away in the middle of a result.
_CONNECTION_LOST_MARKERS = (
    "server closed the connection",
    "terminating connection",
    "could not receive data",
    "could not send data",
    "connection to server",
    "no connection to the server",
)


class BatchStream(Iterator["pa.RecordBatch"]):
    """The record batches of one query result, with the result's schema known up front.

    Iterate it (once) for the batches; the database connection closes when the batches
    are exhausted, when iteration fails, on :meth:`close` or when leaving a ``with`` block.

    :param schema: the result's Arrow schema (also for empty results).
    :param batches: the batches, each conforming to ``schema``.
    :param resources: closed with the stream (cursor, connection).
    """

    def __init__(
        self,
        schema: pa.Schema,
        batches: Iterator[pa.RecordBatch],
        resources: contextlib.ExitStack,
    ) -> None:
        self.schema = schema
        self._batches = batches
        self._resources = resources

    def __next__(self) -> pa.RecordBatch:
        try:
            return next(self._batches)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        close_batches = getattr(self._batches, "close", None)
        if close_batches is not None:
            close_batches()
        self._resources.close()

    def __enter__(self) -> BatchStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


class SqlSource(Protocol):
    """A database that streams query results as Arrow record batches."""

    def stream(
        self,
        sql: str,
        parameters: Parameters = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> BatchStream:
        """Run ``sql`` with ``parameters`` bound by the driver; batches of ≤ ``batch_size`` rows."""
        ...

    def describe(self) -> str:
        """The dialect and where it points (host, database or file), never a password."""
        ...


def query_sha256(sql: str, parameters: Parameters) -> str:
    """A stable SHA-256 of a rendered query and its parameters, for lineage.

    Parameters are hashed as sorted JSON (non-JSON values by ``str``), so mapping order and
    tuple-vs-list make no difference.
    """
    if isinstance(parameters, Mapping):
        normalised: Any = dict(parameters)
    elif parameters is None or isinstance(parameters, str | bytes):
        normalised = parameters
    else:
        normalised = list(parameters)
    payload = json.dumps(
        {"sql": sql, "parameters": normalised},
        sort_keys=True,
        default=str,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def bind_postgres_parameters(
    sql: str, parameters: Parameters, *, source: str = "postgresql"
) -> str:
    """``sql`` with ``parameters`` merged in by psycopg's client-side binding.

    This is what ``psycopg.ClientCursor.mogrify`` does (and what psycopg2 did for every
    query): values are adapted and quoted by the driver, never formatted by us. It needs
    no connection: strings with backslashes use the ``E'…'`` form, valid whatever the
    server's ``standard_conforming_strings``.
    """
    import psycopg

    # psycopg's client-side query merger: the engine behind ClientCursor.mogrify.
    from psycopg._queries import PostgresClientQuery
    from psycopg.adapt import Transformer

    if parameters is None:
        return sql
    if isinstance(parameters, Mapping) and "%(" not in sql and _NAMED_PLACEHOLDER.search(sql):
        sql = named_to_pyformat(sql)
    query = PostgresClientQuery(Transformer())
    try:
        query.convert(sql, parameters)
    except (psycopg.Error, TypeError, ValueError) as exc:
        raise SourceQueryError(
            f"{source}: the parameters do not fit the query ({exc}). Use psycopg placeholders "
            f"(%(name)s or %s) and give one value per placeholder. Query: {excerpt(sql)}"
        ) from exc
    return bytes(query.query).decode(query._tx.encoding)


def named_to_pyformat(sql: str) -> str:
    """``:name`` placeholders → psycopg's ``%(name)s``, by SQLAlchemy's ``text()`` parser.

    ``:name`` is the portable style: the same query file runs on SQLite and PostgreSQL.
    ``::type`` casts are left alone and literal ``%`` signs are escaped; as in SQLAlchemy,
    write ``\\:`` for a colon that must stay inside a string literal.
    """
    from sqlalchemy import text
    from sqlalchemy.dialects.postgresql import psycopg as postgresql_psycopg

    return str(text(sql).compile(dialect=postgresql_psycopg.dialect()))


def excerpt(sql: str, limit: int = SQL_EXCERPT_CHARS) -> str:
    """The first ``limit`` characters of ``sql`` on one line, for messages."""
    flat = " ".join(sql.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def check_batch_size(batch_size: int) -> None:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ArgumentError(f"batch_size must be an int >= 1. Got {batch_size!r} instead.")


class PostgresSource:
    """Streams PostgreSQL query results through ADBC's binary ``COPY`` reader.

    Each :meth:`stream` opens its own connection and closes it with the stream.
    ``numeric``, ``json`` and ``uuid`` columns arrive as their Arrow storage (text, text,
    16 bytes): CAST them in SQL (e.g. ``amount::float8``) when you want another type.

    :param uri: a libpq URI, ``postgresql://user:password@host:port/db?sslmode=require``.
    :param batch_size_hint_bytes: the size ADBC aims at for each batch it reads.
    :param prefetch_batches: how many ADBC batches a background thread reads ahead, so the
        database read overlaps the caller's work (0: read on the caller's thread). Peak
        memory grows by about this many times ``batch_size_hint_bytes``.

    .. code-block:: python

        source = PostgresSource("postgresql://reader@db:5432/warehouse")
        with source.stream("SELECT * FROM t WHERE day = %(day)s", {"day": "2026-01-04"}) as s:
            write_batches(s, fs, path, schema=s.schema)
    """

    def __init__(
        self,
        uri: str,
        *,
        batch_size_hint_bytes: int = POSTGRES_BATCH_SIZE_HINT_BYTES,
        prefetch_batches: int = POSTGRES_PREFETCH_BATCHES,
    ) -> None:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict

        try:
            info = conninfo_to_dict(uri)
        except psycopg.Error as exc:
            raise ArgumentError(
                f"Not a valid libpq URI for PostgresSource: {_redact(str(exc), uri)}"
            ) from None
        self._uri = uri
        self._password = str(info.get("password") or "")
        self._batch_size_hint_bytes = batch_size_hint_bytes
        self._prefetch_batches = prefetch_batches
        host = info.get("host") or info.get("hostaddr") or "localhost"
        port = f":{info['port']}" if info.get("port") else ""
        user = f"{info['user']}@" if info.get("user") else ""
        self._description = f"postgresql {user}{host}{port}/{info.get('dbname') or ''}"

    def describe(self) -> str:
        return self._description

    def stream(
        self,
        sql: str,
        parameters: Parameters = None,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> BatchStream:
        from adbc_driver_postgresql import StatementOptions

        check_batch_size(batch_size)
        bound = _sql_for_copy(bind_postgres_parameters(sql, parameters, source=self._description))
        resources = contextlib.ExitStack()
        with self._errors_as_source_errors(sql, resources):
            connection = resources.enter_context(contextlib.closing(self._connect()))
            cursor = resources.enter_context(contextlib.closing(connection.cursor()))
            cursor.adbc_statement.set_options(
                **{StatementOptions.BATCH_SIZE_HINT_BYTES.value: str(self._batch_size_hint_bytes)}
            )
            cursor.execute(bound)
            reader = cursor.fetch_record_batch()
            resources.callback(reader.close)
            schema = storage_schema(reader.schema)
            batches: Iterator[pa.RecordBatch] = map(storage_batch, reader)
            if self._prefetch_batches > 0:
                prefetcher = Prefetcher(batches, self._prefetch_batches)
                resources.callback(prefetcher.close)
                batches = iter(prefetcher)
        return BatchStream(schema, self._batches(batches, sql, batch_size), resources)

    def _connect(self) -> Any:
        import adbc_driver_postgresql.dbapi as adbc

        try:
            return adbc.connect(self._uri)
        except Exception as exc:
            raise SourceConnectionError(
                f"Cannot connect to {self._description} ({self._message(exc)}). Check the host, "
                "port, credentials and that the server accepts connections; the task will retry."
            ) from (None if self._leaks(exc) else exc)

    def _batches(
        self, batches: Iterator[pa.RecordBatch], sql: str, batch_size: int
    ) -> Iterator[pa.RecordBatch]:
        with self._errors_as_source_errors(sql):
            for batch in batches:
                yield from rechunk(batch, batch_size)

    @contextlib.contextmanager
    def _errors_as_source_errors(
        self, sql: str, resources: contextlib.ExitStack | None = None
    ) -> Iterator[None]:
        """Driver errors → SourceQueryError / SourceConnectionError; close ``resources``."""
        import adbc_driver_manager

        try:
            yield
        except (SourceQueryError, SourceConnectionError):
            if resources is not None:
                resources.close()
            raise
        except (adbc_driver_manager.Error, OSError) as exc:
            if resources is not None:
                resources.close()
            message = f"{self._description} failed on the query ({self._message(exc)})."
            cause = None if self._leaks(exc) else exc
            if _is_connection_trouble(exc):
                raise SourceConnectionError(
                    f"{message} The connection was lost; the task will retry. Query: {excerpt(sql)}"
                ) from cause
            raise SourceQueryError(
                f"{message} Fix the query or its parameters. Query: {excerpt(sql)}"
            ) from cause

    def _message(self, exc: BaseException) -> str:
        """The driver's message, without ADBC's echo of the whole query, password redacted."""
        text = str(exc).split("\nQuery was:", 1)[0]
        sqlstate = getattr(exc, "sqlstate", None)
        text = " ".join(text.split())
        if sqlstate and sqlstate not in text:
            text += f" (SQLSTATE {sqlstate})"
        return _redact(text, self._password)

    def _leaks(self, exc: BaseException) -> bool:
        return bool(self._password) and self._password in str(exc)


def _sql_for_copy(sql: str) -> str:
    """ADBC wraps the query in ``COPY (…) TO STDOUT``: no trailing ``;``, comments closed."""
    return sql.rstrip().rstrip(";").rstrip() + "\n"


def _is_connection_trouble(exc: BaseException) -> bool:
    sqlstate = getattr(exc, "sqlstate", None) or ""
    if sqlstate.startswith(_RETRYABLE_SQLSTATE_PREFIXES):
        return True
    text = str(exc).lower()
    return "error:" not in text and any(marker in text for marker in _CONNECTION_LOST_MARKERS)


def _redact(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text


def storage_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with extension types (ADBC's numeric, json, uuid) as their storage type."""
    import pyarrow as pa

    fields = [
        field.with_type(field.type.storage_type)
        if isinstance(field.type, pa.BaseExtensionType)
        else field
        for field in schema
    ]
    return pa.schema(fields, metadata=schema.metadata)


def storage_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    import pyarrow as pa

    if not any(isinstance(field.type, pa.BaseExtensionType) for field in batch.schema):
        return batch
    columns = [
        column.storage if isinstance(column, pa.ExtensionArray) else column
        for column in batch.columns
    ]
    return pa.RecordBatch.from_arrays(columns, schema=storage_schema(batch.schema))


def rechunk(batch: pa.RecordBatch, batch_size: int) -> Iterator[pa.RecordBatch]:
    """Zero-copy slices of ``batch`` with at most ``batch_size`` rows (none if empty)."""
    for offset in range(0, batch.num_rows, batch_size):
        yield batch.slice(offset, batch_size)


class Prefetcher:
    """Reads an iterator ``depth`` items ahead on a background thread.

    Iterate it on the consumer's thread; an error in the reader is raised there.
    :meth:`close` stops the reader and waits for it (at most one item being read), so the
    resources the iterator reads from can be closed right after.
    """

    _END = object()

    def __init__(self, items: Iterator[Any], depth: int) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._pump, args=(items,), name="sql-source-prefetch", daemon=True
        )
        self._thread.start()

    def __iter__(self) -> Iterator[Any]:
        while (item := self._queue.get()) is not self._END:
            if isinstance(item, _Failure):
                raise item.error
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def _pump(self, items: Iterator[Any]) -> None:
        try:
            for item in items:
                if not self._put(item):
                    return
        except BaseException as exc:  # handed to the consumer's thread
            self._put(_Failure(exc))
        else:
            self._put(self._END)

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


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
    """

    dialect = "dbapi"

    def __init__(
        self, connect: Callable[[], Any], *, name: str, lookahead_batches: int = 3
    ) -> None:
        self._connect_fn = connect
        self._name = name
        self._lookahead_batches = lookahead_batches

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
        except Exception as exc:
            raise SourceConnectionError(
                f"Cannot connect to {self.describe()} ({type(exc).__name__}: {exc}). Check the "
                "connection's settings and that the database is reachable; the task will retry."
            ) from exc

    def _batches(self, rows: RowBatches, sql: str) -> Iterator[pa.RecordBatch]:
        with self._query_errors(sql):
            yield from rows

    @contextlib.contextmanager
    def _query_errors(self, sql: str) -> Iterator[None]:
        try:
            yield
        except (SourceQueryError, SourceConnectionError):
            raise
        except ConnectionError as exc:
            raise SourceConnectionError(
                f"{self.describe()} lost its connection ({exc}). Query: {excerpt(sql)}"
            ) from exc
        except Exception as exc:
            raise SourceQueryError(
                f"{self.describe()} failed on the query ({type(exc).__name__}: {exc}). Fix the "
                f"query or its parameters. Query: {excerpt(sql)}"
            ) from exc


class SqliteSource(DbApiSource):
    """Streams a SQLite database file's query results (opened read-only).

    Parameters use SQLite's own binding (``:name`` or ``?``). SQLite has no date or
    timestamp type: such columns arrive as text, for the transform step to cast.

    :param path: the database file; it must exist.
    """

    dialect = "sqlite"

    def __init__(self, path: str, *, lookahead_batches: int = 3) -> None:
        self.path = path
        super().__init__(self._open, name=path, lookahead_batches=lookahead_batches)

    def _open(self) -> Any:
        import pathlib
        import sqlite3

        uri = pathlib.Path(self.path).absolute().as_uri() + "?mode=ro"
        return sqlite3.connect(uri, uri=True)


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
