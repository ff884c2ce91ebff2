"""Micro-batching: concurrent small requests' checked rows scored in one model call.

Each request is validated on its own thread first (:func:`~airflow_mlops.serving.requests.
score_request`); only its checked feature rows reach :meth:`Batcher.predict`, which queues
them and waits. One batcher thread takes the oldest queued rows, waits at most ``wait``
seconds for more (or until ``max_rows`` are queued), concatenates the rows queued for the
*same* :class:`~airflow_mlops.serving.model.ServedModel` (so a hot swap between two requests
never mixes versions in one call) with the same schema, calls ``ServedModel.predict`` once
and hands each request back exactly its own rows' scores and decisions.

Scores are bit-for-bit those of an unbatched call: ``ServedModel.predict`` pads to 64-row
blocks, so a row's score does not depend on the rows beside it. A model error in a call fails
every request of that call (each re-raises it), and only those. A request of ``max_rows`` rows
or more skips the queue: it is a batch already.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from airflow_mlops.serving.model import ServedModel


@dataclass(eq=False)
class _Pending:
    """One request's rows, queued, and (once scored) their outputs or the call's error."""

    model: ServedModel
    features: pa.Table
    done: threading.Event = field(default_factory=threading.Event)
    result: tuple[np.ndarray, pa.Array] | None = None
    error: BaseException | None = None


class Batcher:
    """A thread-safe micro-batcher in front of ``ServedModel.predict``.

    :param wait: the longest a request's rows wait for others, in seconds (> 0).
    :param max_rows: the most rows scored in one call (>= 1).
    :raises ValueError: ``wait`` not positive or ``max_rows`` below 1.
    """

    def __init__(self, wait: float, max_rows: int) -> None:
        if not wait > 0:
            raise ValueError(f"Batcher wait must be a float > 0 seconds. Got {wait} instead.")
        if max_rows < 1:
            raise ValueError(f"Batcher max_rows must be an int >= 1. Got {max_rows} instead.")
        self.wait = wait
        self.max_rows = max_rows
        #: model calls made, requests they scored, and the most requests one call scored
        self.calls = 0
        self.requests = 0
        self.largest = 0
        self._queue: list[_Pending] = []
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="serving-batcher", daemon=True)
        self._thread.start()

    def predict(self, model: ServedModel, features: pa.Table) -> tuple[np.ndarray, pa.Array]:
        """``model.predict(features)``, scored in one call with other threads' rows.

        :raises Exception: whatever the model call that scored these rows raised.
        """
        if features.num_rows >= self.max_rows:
            return model.predict(features)
        pending = _Pending(model, features)
        with self._ready:
            self._queue.append(pending)
            self._ready.notify()
        pending.done.wait()
        if pending.error is not None:
            raise pending.error
        assert pending.result is not None
        return pending.result

    def describe(self) -> dict[str, object]:
        """The settings and counts, for ``ModelServer.describe()``."""
        return {
            "wait_ms": self.wait * 1000,
            "max_rows": self.max_rows,
            "calls": self.calls,
            "requests": self.requests,
            "largest": self.largest,
        }

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            try:
                self._score(batch)
            except BaseException as exc:  # every request of the call fails, the thread lives
                for pending in batch:
                    pending.error = exc
            for pending in batch:
                pending.done.set()

    def _next_batch(self) -> list[_Pending]:
        """The oldest queued request and those queued (within ``wait``) for its model and
        schema, up to ``max_rows`` rows."""
        with self._ready:
            while not self._queue:
                self._ready.wait()
            deadline = time.monotonic() + self.wait
            while (left := deadline - time.monotonic()) > 0 and self._rows() < self.max_rows:
                self._ready.wait(left)
            first = self._queue[0]
            batch: list[_Pending] = []
            rows = 0
            for pending in self._queue:
                same = pending.model is first.model
                if same and pending.features.schema.equals(first.features.schema):
                    if batch and rows + pending.features.num_rows > self.max_rows:
                        break
                    batch.append(pending)
                    rows += pending.features.num_rows
            self._queue = [pending for pending in self._queue if pending not in batch]
            return batch

    def _rows(self) -> int:
        return sum(pending.features.num_rows for pending in self._queue)

    def _score(self, batch: list[_Pending]) -> None:
        import pyarrow as pa

        model = batch[0].model
        features = pa.concat_tables([pending.features for pending in batch])
        scores, decisions = model.predict(features)
        self.calls += 1
        self.requests += len(batch)
        self.largest = max(self.largest, len(batch))
        start = 0
        for pending in batch:
            stop = start + pending.features.num_rows
            pending.result = (scores[start:stop], decisions.slice(start, stop - start))
            start = stop
