"""The serving log: what a server answered, as Parquet segments under the store.

Each answered request becomes a :class:`ServedRequest` (its rows' features, outputs, the
model version and the time the model took); each challenger comparison a shadow record.
The request path only puts the record in a bounded queue (a full queue drops it, counted,
rather than slow a response); a :class:`SegmentWriter` thread turns records into Arrow
rows, gathers them per log and appends them to the store's logs
(:class:`~airflow_mlops.store.segments.StoreLogs`) as one segment when a log reaches
``max_rows`` rows or its oldest row ``max_seconds`` seconds — rotated by size and time, so
memory stays bounded and a crash loses at most that much. Rows go to the day (UTC) they
were served on. :func:`~airflow_mlops.serving.log_tables.publish_log_day` publishes a day.

Logs of model ``m``: ``m_requests`` (every row answered) and ``m_shadow`` (every row the
challenger scored beside the champion).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from airflow_mlops.checks import check_int, check_number
from airflow_mlops.serving.polled import POLL_SECONDS, PolledQueue
from airflow_mlops.serving.protocol import ERROR_OUTPUT

if TYPE_CHECKING:
    from collections.abc import Hashable, Sequence
    from datetime import datetime

    import pyarrow as pa

    from airflow_mlops.models.records import ModelOutput
    from airflow_mlops.serving.requests import ScoredRequest
    from airflow_mlops.serving.state import ServingState
    from airflow_mlops.store.segments import StoreLogs

_log = logging.getLogger(__name__)

#: the column every log row carries: when the request was served (UTC, microseconds)
SERVED_AT = "served_at"


def requests_log(model_name: str) -> str:
    """The log every answered row of ``model_name`` is appended to."""
    return f"{model_name}_requests"


def shadow_log(model_name: str) -> str:
    """The log of ``model_name``'s champion/challenger comparisons."""
    return f"{model_name}_shadow"


class LogRecord(Protocol):
    """What a log is fed: ``rows`` rows, made into Arrow off the request path, many records
    at once: records of one kind and equal ``batch_key`` join in one batch."""

    @property
    def rows(self) -> int: ...

    @property
    def batch_key(self) -> Hashable: ...

    @classmethod
    def joined(cls, records: Sequence[Any]) -> pa.RecordBatch: ...


@dataclass(frozen=True)
class ServedRequest:
    """One answered request, as the requests log and the shadow challenger see it.

    :param served_at: when the request reached the model (UTC).
    :param request_id: the caller's request id, if any.
    :param model_version: the champion version that answered.
    :param output: the model's score and decision columns.
    :param key_column: the entity key's name; :param keys: each row's key (or None).
    :param features: the rows' model inputs as scored (null where a key was not found).
    :param outputs: output name → one value per row, as answered.
    :param seconds: the time the request spent in the server core (lookup, batching, model).
    """

    served_at: datetime
    request_id: str | None
    model_version: str
    output: ModelOutput
    key_column: str
    keys: pa.Array | None
    features: pa.Table
    outputs: dict[str, list[Any]]
    seconds: float

    @classmethod
    def answered(
        cls,
        state: ServingState,
        request_id: str | None,
        scored: ScoredRequest,
        served_at: datetime,
        seconds: float,
    ) -> ServedRequest:
        """The record of a request ``state`` answered with ``scored``."""
        model = state.model
        return cls(
            served_at,
            request_id,
            model.version,
            model.output,
            state.key_column,
            scored.keys,
            scored.features,
            scored.columns,
            seconds,
        )

    @property
    def rows(self) -> int:
        return self.features.num_rows

    @property
    def batch_key(self) -> Hashable:
        """Requests join in one batch when their columns and types agree."""
        keys = None if self.keys is None else self.keys.type
        return (self.features.schema, self.key_column, keys, tuple(self.outputs))

    @classmethod
    def joined(cls, records: Sequence[ServedRequest]) -> pa.RecordBatch:
        """The rows of ``records`` (one ``batch_key``): time, id, row number, version, key,
        features, outputs and ``latency_ms`` (the request's, on each of its rows)."""
        import numpy as np
        import pyarrow as pa

        first = records[0]
        counts = np.array([record.rows for record in records])
        owner = pa.array(np.repeat(np.arange(len(records)), counts))

        def per_row(values: list[Any], kind: pa.DataType) -> pa.Array:
            return pa.array(values, kind).take(owner)

        keys = [record.keys for record in records]
        columns: dict[str, pa.Array] = {
            SERVED_AT: per_row([r.served_at for r in records], pa.timestamp("us", tz="UTC")),
            "request_id": per_row([record.request_id for record in records], pa.string()),
            "row": pa.array(
                np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts), pa.int32()
            ),
            "model_version": per_row([record.model_version for record in records], pa.string()),
            first.key_column: pa.nulls(len(owner), pa.int64())
            if first.keys is None
            else pa.concat_arrays([key for key in keys if key is not None]),
        }
        features = pa.concat_tables([record.features for record in records])
        for name in features.column_names:
            if name not in columns:
                columns[name] = features.column(name).combine_chunks()
        kinds = {first.output.score_column: pa.float64(), first.output.decision_column: pa.string()}
        if ERROR_OUTPUT in first.outputs:
            kinds[ERROR_OUTPUT] = pa.string()
        for name, kind in kinds.items():
            columns[name] = pa.array([v for record in records for v in record.outputs[name]], kind)
        columns["latency_ms"] = per_row([r.seconds * 1e3 for r in records], pa.float64())
        return pa.RecordBatch.from_pydict(columns)


def request_columns(served_at: datetime, request_id: str | None, rows: int) -> dict[str, pa.Array]:
    """``served_at``, ``request_id`` and ``row`` (the row's position in its request)."""
    import pyarrow as pa

    return {
        SERVED_AT: pa.array([served_at] * rows, pa.timestamp("us", tz="UTC")),
        "request_id": pa.array([request_id] * rows, pa.string()),
        "row": pa.array(range(rows), pa.int32()),
    }


@dataclass
class _Pending:
    batches: list[pa.RecordBatch]
    rows: int
    since: float


class SegmentWriter:
    """Appends records to the store's logs from a background thread, in rotated segments.

    :param logs: the store's logs.
    :param max_rows: a log's rows that make a segment (the size rotation).
    :param max_seconds: the longest a row waits before its segment is written (the time
        rotation, and the most a crash loses).
    :param max_queue: records waiting for the writer; more are dropped and counted.
    :raises ArgumentError: for a bound out of range.
    """

    def __init__(
        self,
        logs: StoreLogs,
        *,
        max_rows: int = 50_000,
        max_seconds: float = 60.0,
        max_queue: int = 10_000,
    ) -> None:
        self.logs = logs
        self.max_rows = check_int(max_rows, "max_rows", "SegmentWriter")
        self.max_seconds = check_number(
            max_seconds, "max_seconds", "SegmentWriter", low=0.01, expected="seconds >= 0.01"
        )
        self._queue: PolledQueue[tuple[str, LogRecord]] = PolledQueue(
            self._write_taken,
            check_int(max_queue, "max_queue", "SegmentWriter"),
            name="serving-log",
            wait=self._wait,
        )
        self._pending: dict[str, _Pending] = {}
        self.segments = 0
        self.rows_written = 0
        self.dropped = 0
        self.errors = 0
        self.last_error: str | None = None

    def append(self, log: str, record: LogRecord) -> bool:
        """Queue ``record`` for ``log`` without waiting and without waking the writer (it
        takes the queue every :data:`~airflow_mlops.serving.polled.POLL_SECONDS`); False
        (dropped, counted) when the queue is full."""
        if self._queue.offer((log, record)):
            return True
        self.dropped += record.rows
        return False

    def start(self) -> None:
        """Start the writer thread (a no-op when running)."""
        self._queue.start()

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued and pending, then stop the writer thread."""
        self._queue.stop(timeout)

    def describe(self) -> dict[str, Any]:
        """Segments and rows written, rows dropped and write errors, for readiness and
        metrics."""
        return {
            "segments": self.segments,
            "rows": self.rows_written,
            "dropped_rows": self.dropped,
            "errors": self.errors,
            "last_error": self.last_error,
        }

    def _write_taken(self, taken: list[tuple[str, LogRecord]], stopping: bool) -> None:
        """Join the records taken from the queue, and write the segments that are due (all of
        them when ``stopping``)."""
        groups: dict[tuple[str, type, Hashable], list[LogRecord]] = {}
        for log, record in taken:
            groups.setdefault((log, type(record), record.batch_key), []).append(record)
        for (log, kind, _), records in groups.items():
            self._add(log, kind, records)
        now = time.monotonic()
        for log, pending in list(self._pending.items()):
            if stopping or now - pending.since >= self.max_seconds:
                self._flush(log)

    def _wait(self) -> float:
        """Until the next poll of the queue, or sooner when a segment is due."""
        if not self._pending:
            return POLL_SECONDS
        oldest = min(pending.since for pending in self._pending.values())
        return min(POLL_SECONDS, max(0.001, oldest + self.max_seconds - time.monotonic()))

    def _add(self, log: str, kind: type, records: list[LogRecord]) -> None:
        try:
            batch = kind.joined(records)  # type: ignore[attr-defined]
        except Exception as exc:  # a bad record must not stop the log
            self._failed(f"{type(exc).__name__}: {exc}", sum(r.rows for r in records))
            return
        pending = self._pending.get(log)
        if pending is not None and not pending.batches[0].schema.equals(batch.schema):
            self._flush(log)  # a new model version's columns start a new segment
            pending = None
        if pending is None:
            pending = self._pending[log] = _Pending([], 0, time.monotonic())
        pending.batches.append(batch)
        pending.rows += batch.num_rows
        while pending.rows >= self.max_rows:  # segments of max_rows rows, the rest pending
            import pyarrow as pa

            table = pa.Table.from_batches(pending.batches)
            self._write(log, table.slice(0, self.max_rows))
            rest = table.slice(self.max_rows)
            pending.batches, pending.rows = rest.to_batches(), rest.num_rows
            pending.since = time.monotonic()
        if not pending.rows:
            del self._pending[log]

    def _flush(self, log: str) -> None:
        import pyarrow as pa

        pending = self._pending.pop(log, None)
        if pending is not None and pending.rows:
            self._write(log, pa.Table.from_batches(pending.batches))

    def _write(self, log: str, table: pa.Table) -> None:
        import pyarrow.compute as pc

        days = pc.strftime(table.column(SERVED_AT), format="%Y-%m-%d")
        for day in pc.unique(days).to_pylist():
            rows = table.filter(pc.equal(days, day))
            try:
                self.logs.write(log, day, rows)
            except Exception as exc:  # the store is down: count and go on serving
                self._failed(f"{type(exc).__name__}: {exc}", rows.num_rows)
                continue
            self.segments += 1
            self.rows_written += rows.num_rows

    def _failed(self, error: str, rows: int) -> None:
        self.errors += 1
        self.dropped += rows
        self.last_error = error
        _log.error("Serving log: %s; %d row(s) lost", error, rows)
