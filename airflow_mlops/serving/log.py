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
import queue
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from airflow_mlops.checks import check_int, check_number

if TYPE_CHECKING:
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
    """What a log is fed: ``rows`` rows, made into Arrow off the request path."""

    @property
    def rows(self) -> int: ...

    def to_batch(self) -> pa.RecordBatch: ...


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

    def to_batch(self) -> pa.RecordBatch:
        """The request's rows: time, id, row number, version, key, features, outputs and
        ``latency_ms`` (the request's, on each of its rows)."""
        import pyarrow as pa

        n = self.rows
        key = self.keys if self.keys is not None else pa.nulls(n, pa.int64())
        columns: dict[str, pa.Array] = {
            **request_columns(self.served_at, self.request_id, n),
            "model_version": pa.array([self.model_version] * n, pa.string()),
            self.key_column: key,
        }
        for name in self.features.column_names:
            if name not in columns:
                columns[name] = self.features.column(name).combine_chunks()
        score, decision = self.output.score_column, self.output.decision_column
        columns[score] = pa.array(self.outputs[score], pa.float64())
        columns[decision] = pa.array(self.outputs[decision], pa.string())
        if "error" in self.outputs:
            columns["error"] = pa.array(self.outputs["error"], pa.string())
        columns["latency_ms"] = pa.array([self.seconds * 1e3] * n, pa.float64())
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
        self._queue: queue.Queue[tuple[str, LogRecord] | None] = queue.Queue(
            check_int(max_queue, "max_queue", "SegmentWriter")
        )
        self._pending: dict[str, _Pending] = {}
        self._thread: threading.Thread | None = None
        self.segments = 0
        self.rows_written = 0
        self.dropped = 0
        self.errors = 0
        self.last_error: str | None = None

    def append(self, log: str, record: LogRecord) -> bool:
        """Queue ``record`` for ``log`` without waiting; False (dropped, counted) when the
        queue is full."""
        try:
            self._queue.put_nowait((log, record))
        except queue.Full:
            self.dropped += record.rows
            return False
        return True

    def start(self) -> None:
        """Start the writer thread (a no-op when running)."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._run, name="serving-log", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 30.0) -> None:
        """Write what is queued and pending, then stop the writer thread."""
        thread = self._thread
        if thread is None:
            return
        self._queue.put(None)
        thread.join(timeout)
        self._thread = None

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

    def _run(self) -> None:
        while True:
            try:
                item = self._queue.get(timeout=self._wait())
            except queue.Empty:
                pass
            else:
                if item is None:
                    for log in list(self._pending):
                        self._flush(log)
                    return
                self._add(*item)
            now = time.monotonic()
            for log, pending in list(self._pending.items()):
                if now - pending.since >= self.max_seconds:
                    self._flush(log)

    def _wait(self) -> float:
        if not self._pending:
            return self.max_seconds
        oldest = min(pending.since for pending in self._pending.values())
        return max(0.001, oldest + self.max_seconds - time.monotonic())

    def _add(self, log: str, record: LogRecord) -> None:
        try:
            batch = record.to_batch()
        except Exception as exc:  # a bad record must not stop the log
            self._failed(f"{type(exc).__name__}: {exc}", record.rows)
            return
        pending = self._pending.get(log)
        if pending is not None and not pending.batches[0].schema.equals(batch.schema):
            self._flush(log)  # a new model version's columns start a new segment
            pending = None
        if pending is None:
            pending = self._pending[log] = _Pending([], 0, time.monotonic())
        pending.batches.append(batch)
        pending.rows += batch.num_rows
        if pending.rows >= self.max_rows:
            self._flush(log)

    def _flush(self, log: str) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        pending = self._pending.pop(log, None)
        if pending is None or not pending.rows:
            return
        table = pa.Table.from_batches(pending.batches)
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
