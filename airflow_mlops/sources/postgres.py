"""PostgreSQL as a streaming source: ADBC's binary COPY, parameters bound by psycopg."""

from __future__ import annotations

import contextlib
import queue
import re
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from airflow_mlops.exceptions import (
    AirflowMlopsError,
    ArgumentError,
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
    rechunk,
    redact,
    secret_forms,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pyarrow as pa

    Parameters = Mapping[str, Any] | Sequence[Any] | None


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
#: Phrases libpq uses when the connection's settings are wrong (not worth a retry).
_CONFIGURATION_MARKERS = (
    "password authentication failed",
    "authentication failed for user",
    "no pg_hba.conf entry",
    "does not exist",  # database "x" / role "x"
    "invalid connection option",
    "invalid sslmode value",
)


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
                f"Not a valid libpq URI for PostgresSource: {redact(str(exc), [uri])}"
            ) from None
        self._uri = uri
        self._secrets = secret_forms([str(info.get("password") or "")])
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
            cause = None if self._leaks(exc) else exc
            if any(marker in str(exc) for marker in _CONFIGURATION_MARKERS):
                raise SourceConfigurationError(
                    f"Cannot connect to {self._description} ({self._message(exc)}). Fix the "
                    "connection's database, user or password; retrying will not help."
                ) from cause
            raise SourceConnectionError(
                f"Cannot connect to {self._description} ({self._message(exc)}). Check the host, "
                "port, credentials and that the server accepts connections; the task will retry."
            ) from cause

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
        except AirflowMlopsError:
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
        return redact(text, self._secrets)

    def _leaks(self, exc: BaseException) -> bool:
        return leaks(exc, self._secrets)


def _sql_for_copy(sql: str) -> str:
    """ADBC wraps the query in ``COPY (…) TO STDOUT``: no trailing ``;``, comments closed."""
    return sql.rstrip().rstrip(";").rstrip() + "\n"


def _is_connection_trouble(exc: BaseException) -> bool:
    sqlstate = getattr(exc, "sqlstate", None) or ""
    if sqlstate.startswith(_RETRYABLE_SQLSTATE_PREFIXES):
        return True
    text = str(exc).lower()
    return "error:" not in text and any(marker in text for marker in _CONNECTION_LOST_MARKERS)


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
