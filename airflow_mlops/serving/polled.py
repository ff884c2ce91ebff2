"""A bounded queue the request path feeds without waking anyone, taken by a background
thread on a timer: how the serving log and the online shadow stay off the request path.

Waking a thread for every request made the request path and that thread hand the GIL to and
fro; polling every :data:`POLL_SECONDS` costs one wake-up per poll, whatever the rate.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

#: How often the thread takes what the request path queued (seconds).
POLL_SECONDS = 0.1

T = TypeVar("T")


class PolledQueue(Generic[T]):
    """Items offered without waiting; a daemon thread calls ``work(items, stopping)`` with what
    was queued, every ``wait()`` seconds (default :data:`POLL_SECONDS`), and once more, with
    ``stopping=True``, when :meth:`stop` is called.

    :param work: handles the items taken (oldest first; maybe none).
    :param max_queue: items held at most; :meth:`offer` refuses more.
    :param name: the thread's name.
    :param wait: seconds until the next call (default: :data:`POLL_SECONDS`).
    """

    def __init__(
        self,
        work: Callable[[list[T], bool], None],
        max_queue: int,
        *,
        name: str,
        wait: Callable[[], float] = lambda: POLL_SECONDS,
    ) -> None:
        self.max_queue = max_queue
        self._work, self._wait, self._name = work, wait, name
        self._items: deque[T] = deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __len__(self) -> int:
        return len(self._items)

    def offer(self, item: T) -> bool:
        """Queue ``item`` without waiting or waking the thread; False when the queue is full."""
        if len(self._items) >= self.max_queue:
            return False
        self._items.append(item)
        return True

    def start(self) -> None:
        """Start the thread (a no-op when running)."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float) -> None:
        """Have the thread take what is queued once more, then end; wait up to ``timeout``
        seconds for it (a thread stuck in ``work`` is left behind: it is a daemon)."""
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        thread.join(timeout)
        self._thread = None

    def _run(self) -> None:
        stopping = False
        while not stopping:
            stopping = self._stop.wait(self._wait())
            taken = []
            while self._items:
                taken.append(self._items.popleft())
            self._work(taken, stopping)
