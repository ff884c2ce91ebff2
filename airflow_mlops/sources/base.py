"""SQL query results as streams of Arrow record batches, memory bounded by the batch size.

Every source (:mod:`airflow_mlops.sources.postgres`, :mod:`airflow_mlops.sources.dbapi`) follows
:class:`SqlSource`: ``stream()`` runs the query at once (so a bad query or an unreachable
server fails there) and returns a :class:`BatchStream`, an iterator of batches whose
``schema`` is known before the first batch, even when there is none.

- :class:`~airflow_mlops.sources.postgres.PostgresSource` streams through ADBC, which reads
  ``COPY … TO STDOUT (FORMAT binary)`` straight into Arrow. Parameters are bound
  client-side by psycopg's own quoting, because ADBC buffers the whole result when the
  server binds them.
- :class:`~airflow_mlops.sources.dbapi.SqliteSource` reads with ``sqlite3`` (native binding);
  :class:`~airflow_mlops.sources.dbapi.DbApiSource` is the fallback for any other DB-API
  driver: ``fetchmany`` rows turned into Arrow columns.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from airflow_mlops.exceptions import ArgumentError

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType

    import pyarrow as pa

    Parameters = Mapping[str, Any] | Sequence[Any] | None

DEFAULT_BATCH_SIZE = 100_000
SQL_EXCERPT_CHARS = 200


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


def excerpt(sql: str, limit: int = SQL_EXCERPT_CHARS) -> str:
    """The first ``limit`` characters of ``sql`` on one line, for messages."""
    flat = " ".join(sql.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def secret_forms(secrets: Sequence[str | None]) -> list[str]:
    """Each secret as written and URL-encoded (as in a URI), longest first, for redaction."""
    from urllib.parse import quote, quote_plus

    forms = {form for s in secrets if s for form in (s, quote(s, safe=""), quote_plus(s))}
    return sorted(forms, key=len, reverse=True)


def redact(text: str, secrets: Sequence[str]) -> str:
    """``text`` with every secret (see :func:`secret_forms`) replaced by ``***``."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def leaks(exc: BaseException, secrets: Sequence[str]) -> bool:
    """Whether ``exc``'s message or repr holds a secret (then it must not be chained)."""
    text = f"{exc} {exc!r}"
    return any(secret in text for secret in secrets)


def check_batch_size(batch_size: int) -> None:
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ArgumentError(f"batch_size must be an int >= 1. Got {batch_size!r} instead.")


def rechunk(batch: pa.RecordBatch, batch_size: int) -> Iterator[pa.RecordBatch]:
    """Zero-copy slices of ``batch`` with at most ``batch_size`` rows (none if empty)."""
    for offset in range(0, batch.num_rows, batch_size):
        yield batch.slice(offset, batch_size)
