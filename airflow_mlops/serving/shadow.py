"""Online shadow traffic: the challenger scores a sample of served rows, off the request path.

The sample is batch shadow scoring's (:func:`~airflow_mlops.scoring.shadow.shadow_mask`:
the same seeded hash of the entity key and the same fraction choose the same customers),
so an online comparison and a nightly one look at the same people. Rows without a key
(a raw-features request that does not send it) and rows whose key was not found are never
shadowed.

The request path only offers each answered request to a bounded queue, without waking the
challenger's thread: when the challenger is slow, hangs or the queue is full, the request is
dropped from the shadow and counted, and the champion's response is never delayed. One
thread follows the challenger alias (loading a new version checksum-verified, refusing a
damaged one), takes the queue every 0.1 s (:mod:`~airflow_mlops.serving.polled`), scores
the sampled rows of all the requests it took in one model call and appends the comparisons
to the shadow log (:func:`~airflow_mlops.serving.log.shadow_log`).
A challenger that raises is counted and logged; serving goes on.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlops.checks import check_int, check_number
from airflow_mlops.exceptions import ModelNotFoundError
from airflow_mlops.serving.log import request_columns, shadow_log
from airflow_mlops.serving.polled import PolledQueue

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable, Sequence

    import numpy as np
    import pyarrow as pa

    from airflow_mlops.models.registry import ModelRegistry
    from airflow_mlops.serving.log import SegmentWriter, ServedRequest
    from airflow_mlops.serving.model import ServedModel

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShadowRecord:
    """The challenger's outputs for the sampled rows of one served request.

    :param served: the champion's request; :param positions: the sampled rows' positions.
    :param challenger_version: the challenger version that scored them.
    :param scores: its ``P(class 1)``; :param decisions: its decisions.
    :param seconds: these rows' share of the challenger's model call that scored them (one
        call scores the sampled rows of several requests: its time × these rows ÷ its rows).
    """

    served: ServedRequest
    positions: np.ndarray
    challenger_version: str
    scores: np.ndarray
    decisions: pa.Array
    seconds: float

    @property
    def rows(self) -> int:
        return len(self.positions)

    @property
    def batch_key(self) -> Hashable:
        """Comparisons join in one batch when their key columns agree."""
        keys = self.served.keys
        return (self.served.key_column, None if keys is None else keys.type)

    @classmethod
    def joined(cls, records: Sequence[ShadowRecord]) -> pa.RecordBatch:
        """The rows of ``records`` (one ``batch_key``), as :meth:`to_batch` gives each."""
        import pyarrow as pa

        return pa.concat_batches([record.to_batch() for record in records])

    def to_batch(self) -> pa.RecordBatch:
        """Time, request id, row, key, both versions, scores, decisions and latencies (ms)."""
        import pyarrow as pa

        served, n = self.served, len(self.positions)
        take = pa.array(self.positions, pa.int64())
        output = served.output
        columns = request_columns(served.served_at, served.request_id, n)
        columns["row"] = pa.array(self.positions, pa.int32())
        assert served.keys is not None  # unkeyed rows are never sampled
        columns[served.key_column] = served.keys.take(take)
        champion_scores = pa.array(served.outputs[output.score_column], pa.float64())
        champion_decisions = pa.array(served.outputs[output.decision_column], pa.string())
        columns.update(
            champion_version=pa.array([served.model_version] * n, pa.string()),
            challenger_version=pa.array([self.challenger_version] * n, pa.string()),
            champion_score=champion_scores.take(take),
            challenger_score=pa.array(self.scores, pa.float64()),
            champion_decision=champion_decisions.take(take),
            challenger_decision=self.decisions.cast(pa.string()),
            champion_latency_ms=pa.array([served.seconds * 1e3] * n, pa.float64()),
            challenger_latency_ms=pa.array([self.seconds * 1e3] * n, pa.float64()),
        )
        return pa.RecordBatch.from_pydict(columns)


class OnlineShadow:
    """A challenger alias scoring a hash sample of served rows on its own thread.

    :param registry: the model registry; :param model_name: the served model's name.
    :param load: loads ``alias`` as a verified :class:`ServedModel` with its runtime chosen
        (the server's own loader, so the challenger runs as batch scoring would run it).
    :param sink: the serving log the comparisons are appended to (``None``: counted only).
    :param alias: the challenger's alias.
    :param fraction: share of entity keys shadowed, in ``[0, 1]`` (as batch shadow scoring).
    :param seed: the key hash's seed (as batch shadow scoring).
    :param max_queue: served requests waiting for the challenger; more are dropped.
    :param poll_interval: seconds between checks of where the alias points.
    :raises ArgumentError: for a fraction, seed or bound out of range.
    """

    def __init__(
        self,
        registry: ModelRegistry,
        model_name: str,
        load: Callable[[str], ServedModel],
        *,
        sink: SegmentWriter | None,
        alias: str = "challenger",
        fraction: float = 1.0,
        seed: int = 0,
        max_queue: int = 1_000,
        poll_interval: float = 1.0,
    ) -> None:
        self.registry, self.model_name, self.alias = registry, model_name, alias
        self._load, self.sink = load, sink
        self.fraction = check_number(fraction, "fraction", "OnlineShadow", low=0.0, high=1.0)
        self.seed = check_int(seed, "seed", "OnlineShadow", min_value=0)
        self.poll_interval = check_number(
            poll_interval, "poll_interval", "OnlineShadow", low=0.01, expected="seconds >= 0.01"
        )
        self._queue: PolledQueue[ServedRequest] = PolledQueue(
            self._score_taken, check_int(max_queue, "max_queue", "shadow"), name="shadow"
        )
        #: the loaded challenger (None: no such alias, or not loaded yet)
        self.model: ServedModel | None = None
        self._refused: str | None = None
        self._polled = 0.0
        self.status = "starting"
        self.dropped_requests = 0
        self.rows_scored = 0
        self.errors = 0
        self.last_error: str | None = None

    def submit(self, served: ServedRequest) -> None:
        """Offer one answered request; never waits (a full queue drops it, counted)."""
        if not self._queue.offer(served):
            self.dropped_requests += 1

    def start(self) -> None:
        """Start the challenger's thread (a no-op when running)."""
        self._queue.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Score what is queued and stop; a hung challenger is left behind (a daemon thread)."""
        self._queue.stop(timeout)

    def describe(self) -> dict[str, Any]:
        """The challenger served beside the champion and the shadow's counts."""
        model = self.model
        return {
            "alias": self.alias,
            "status": self.status,
            "challenger_version": model.version if model is not None else None,
            "fraction": self.fraction,
            "seed": self.seed,
            "rows_scored": self.rows_scored,
            "dropped_requests": self.dropped_requests,
            "queued_requests": len(self._queue),
            "errors": self.errors,
            "last_error": self.last_error,
        }

    def _score_taken(self, taken: list[ServedRequest], stopping: bool) -> None:
        """Follow the alias when a poll is due, then score the requests taken."""
        if time.monotonic() - self._polled >= self.poll_interval:
            self._follow()
        if taken and self.model is not None:
            self._score(self.model, taken)

    def _follow(self) -> None:
        """Load the version the alias names when it is new (and not refused before)."""
        self._polled = time.monotonic()
        try:
            version = self.registry.resolve(self.model_name, self.alias)
        except ModelNotFoundError:
            self.model, self.status = None, f"no {self.alias!r} alias: nothing shadowed"
            return
        except Exception as exc:  # the registry is unreachable: keep the challenger we have
            self._error(f"resolving {self.alias!r}: {type(exc).__name__}: {exc}")
            return
        if (self.model is not None and self.model.version == version) or version == self._refused:
            return
        try:
            model = self._load(self.alias)
        except Exception as exc:
            self._refused = version
            self.model, self.status = None, f"refused version {version}"
            self._error(f"loading {self.alias!r} version {version}: {type(exc).__name__}: {exc}")
            return
        self.model, self._refused, self.status = model, None, "shadowing"
        _log.info("Shadowing with %s %s (alias %r)", model.name, model.version, self.alias)

    def _score(self, model: ServedModel, taken: list[ServedRequest]) -> None:
        """Score the sampled rows of ``taken`` in one call per features schema."""
        groups: dict[pa.Schema, list[tuple[ServedRequest, np.ndarray]]] = {}
        for served in taken:
            positions = self._sampled(served)
            if len(positions):
                groups.setdefault(served.features.schema, []).append((served, positions))
        for sampled in groups.values():
            self._score_sampled(model, sampled)

    def _sampled(self, served: ServedRequest) -> np.ndarray:
        """The positions of ``served``'s rows the sample chooses (none without keys)."""
        import numpy as np

        from airflow_mlops.scoring.shadow import shadow_mask

        if served.keys is None:
            return np.empty(0, dtype=np.int64)
        chosen = np.asarray(shadow_mask(served.keys, self.fraction, seed=self.seed))
        if "error" in served.outputs:  # keys not found were not scored
            chosen &= np.asarray([not error for error in served.outputs["error"]])
        return np.flatnonzero(chosen)

    def _score_sampled(
        self, model: ServedModel, sampled: list[tuple[ServedRequest, np.ndarray]]
    ) -> None:
        import pyarrow as pa

        rows = pa.concat_tables([served.features.take(at) for served, at in sampled])
        started = time.perf_counter()
        try:
            scores, decisions = model.predict(rows)
        except Exception as exc:  # the challenger never fails the champion
            self._error(f"challenger {model.version}: {type(exc).__name__}: {exc}")
            return
        seconds, start = time.perf_counter() - started, 0
        for served, positions in sampled:
            stop = start + len(positions)
            record = ShadowRecord(
                served,
                positions,
                model.version,
                scores[start:stop],
                decisions.slice(start, len(positions)),
                seconds * len(positions) / rows.num_rows,
            )
            start = stop
            self.rows_scored += record.rows
            if self.sink is not None:
                self.sink.append(shadow_log(self.model_name), record)

    def _error(self, error: str) -> None:
        self.errors += 1
        self.last_error = error
        _log.error("Shadow: %s", error)
