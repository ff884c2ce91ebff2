"""Micro-batching: concurrent small requests scored together, in one conversion, one key
lookup and one model call.

Each request is checked in structure on its own first
(:func:`~airflow_mlops.serving.requests.check_request`); batchers gather checked requests and
score them together with :func:`~airflow_mlops.serving.requests.score_requests`, grouping only
requests of the *same* served state (so a hot swap between two requests never mixes model
versions or partitions in one call) and at most ``max_rows`` rows. Each request gets back
exactly its own rows' outputs, or its own values' error. Scores are bit-for-bit those of an
unbatched call: ``ServedModel.predict`` pads to 64-row blocks, so a row's score does not depend
on the rows beside it. A model error fails every request of its call (each re-raises it), and
only those. A request of ``max_rows`` rows or more is a batch already: it is scored alone.

Two batchers, one per way of waiting:

* :class:`Batcher` for threads (gRPC's call threads): one batcher thread takes the oldest
  queued request, waits at most ``wait`` seconds for more (or until ``max_rows`` are queued),
  scores them, and wakes their threads.
* :class:`LoopBatcher` for an asyncio event loop (the REST front end): requests are scored on
  the loop, in a callback scheduled when the first of them is queued, so a batch is every
  request that reached the batcher in the same turn of the loop — under load, those whose
  bytes arrived while the previous batch was scored (natural batching: no timer, no thread,
  no hand-off of the GIL).
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence


class Batchable(Protocol):
    """What a batcher queues: its row count, and what it may be batched with (by identity)."""

    @property
    def rows(self) -> int: ...

    @property
    def batch_key(self) -> object: ...


T = TypeVar("T", bound=Batchable)
R = TypeVar("R")


@dataclass
class BatchStats:
    """Model calls made, requests they scored, and the most requests one call scored (counted
    by both batchers of a server: one lock)."""

    calls: int = 0
    requests: int = 0
    largest: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, requests: int) -> None:
        with self._lock:
            self.calls += 1
            self.requests += requests
            self.largest = max(self.largest, requests)

    def describe(self, wait: float, max_rows: int) -> dict[str, object]:
        """The settings and counts, for ``ModelServer.describe()``."""
        counts = {"calls": self.calls, "requests": self.requests, "largest": self.largest}
        return {"wait_ms": wait * 1000, "max_rows": max_rows, **counts}


def take_batch(queue: list[Any], rows_of: Callable[[Any], Batchable], max_rows: int) -> list[Any]:
    """Remove from ``queue`` and return its oldest entry and the later ones of the same
    ``batch_key``, in order, up to ``max_rows`` rows (the first always taken)."""
    first = rows_of(queue[0]).batch_key
    batch: list[Any] = []
    rows = 0
    for entry in queue:
        item = rows_of(entry)
        if item.batch_key is first:
            if batch and rows + item.rows > max_rows:
                break
            batch.append(entry)
            rows += item.rows
    taken = {id(entry) for entry in batch}
    queue[:] = [entry for entry in queue if id(entry) not in taken]
    return batch


def _scored(score: Callable[[Sequence[T]], Sequence[R | Exception]], items: Sequence[T]) -> Any:
    """``score(items)``, or the exception every item of the call gets."""
    try:
        return score(items)
    except Exception as exc:
        return [exc] * len(items)


@dataclass(eq=False)
class _Pending(Generic[T, R]):
    item: T
    done: threading.Event = field(default_factory=threading.Event)
    result: R | Exception | None = None


class Batcher(Generic[T, R]):
    """A thread-safe micro-batcher: :meth:`score` blocks its thread until its batch is scored.

    :param score: scores a batch of items of one ``batch_key``.
    :param wait: the longest an item waits for others, in seconds (> 0).
    :param max_rows: the most rows scored in one call (>= 1).
    :raises ValueError: ``wait`` not positive or ``max_rows`` below 1.
    """

    def __init__(
        self,
        score: Callable[[Sequence[T]], Sequence[R | Exception]],
        wait: float,
        max_rows: int,
        stats: BatchStats | None = None,
    ) -> None:
        if not wait > 0:
            raise ValueError(f"Batcher wait must be a float > 0 seconds. Got {wait} instead.")
        if max_rows < 1:
            raise ValueError(f"Batcher max_rows must be an int >= 1. Got {max_rows} instead.")
        self._score = score
        self.wait = wait
        self.max_rows = max_rows
        self.stats = stats or BatchStats()
        self._queue: list[_Pending[T, R]] = []
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="serving-batcher", daemon=True)
        self._thread.start()

    def score(self, item: T) -> R:
        """``item``'s result, scored in one call with other threads' items.

        :raises Exception: the item's own error, or whatever its batch's call raised.
        """
        if item.rows >= self.max_rows:
            result = _scored(self._score, [item])[0]
        else:
            pending: _Pending[T, R] = _Pending(item)
            with self._ready:
                self._queue.append(pending)
                self._ready.notify()
            pending.done.wait()
            result = pending.result
        if isinstance(result, Exception):
            raise result
        return result

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            results = _scored(self._score, [pending.item for pending in batch])
            self.stats.count(len(batch))
            for pending, result in zip(batch, results, strict=True):
                pending.result = result
                pending.done.set()

    def _next_batch(self) -> list[_Pending[T, R]]:
        with self._ready:
            while not self._queue:
                self._ready.wait()
            deadline = time.monotonic() + self.wait
            while (left := deadline - time.monotonic()) > 0 and self._rows() < self.max_rows:
                self._ready.wait(left)
            return take_batch(self._queue, lambda pending: pending.item, self.max_rows)

    def _rows(self) -> int:
        return sum(pending.item.rows for pending in self._queue)


class LoopBatcher(Generic[T, R]):
    """A micro-batcher for one asyncio event loop: :meth:`score` awaits its batch, scored on
    the loop in the turn after the batch's first item was queued (module docstring).

    :param score: scores a batch of items of one ``batch_key``.
    :param max_rows: the most rows scored in one call (>= 1).
    :raises ValueError: ``max_rows`` below 1.
    """

    def __init__(
        self,
        score: Callable[[Sequence[T]], Sequence[R | Exception]],
        max_rows: int,
        stats: BatchStats | None = None,
    ) -> None:
        if max_rows < 1:
            raise ValueError(f"Batcher max_rows must be an int >= 1. Got {max_rows} instead.")
        self._score = score
        self.max_rows = max_rows
        self.stats = stats or BatchStats()
        self._queue: list[tuple[T, asyncio.Future[Any]]] = []
        self._scheduled = False

    async def score(self, item: T) -> R:
        """``item``'s result, scored in one call with the items queued in the same turn.

        :raises Exception: the item's own error, or whatever its batch's call raised.
        """
        if item.rows >= self.max_rows:
            result = _scored(self._score, [item])[0]
        else:
            loop = asyncio.get_running_loop()
            future: asyncio.Future[Any] = loop.create_future()
            self._queue.append((item, future))
            if not self._scheduled:
                self._scheduled = True
                loop.call_soon(self._flush)
            result = await future
        if isinstance(result, Exception):
            raise result
        return result

    def _flush(self) -> None:
        self._scheduled = False
        while self._queue:
            batch = take_batch(self._queue, lambda entry: entry[0], self.max_rows)
            results = _scored(self._score, [item for item, _ in batch])
            self.stats.count(len(batch))
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():  # a request whose client went away is cancelled
                    future.set_result(result)
