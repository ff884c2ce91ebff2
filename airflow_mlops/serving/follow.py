"""Following what a :class:`~airflow_mlops.serving.service.ModelServer` serves: a background
thread that calls the server's cheap poll every ``interval`` seconds.

The poll itself (:meth:`ModelServer.follow_once`) reads only the alias file and the feature
table's ref; when either moved, it builds the new state off the request path and swaps it in,
or refuses it. This module only schedules it.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    from collections.abc import Callable

_log = logging.getLogger(__name__)

#: What a state serves: (model version, partition, partition version); no feature table: Nones.
Source = tuple[str, str | None, str | None]


class Refusal(TypedDict):
    """A state that was not swapped in, and why (``ModelServer.describe()["last_refusal"]``)."""

    model_version: str | None
    partition: str | None
    partition_version: str | None
    error: str
    at: str


class Follower:
    """Calls ``poll`` every ``interval`` seconds on a daemon thread until :meth:`stop`.

    An exception from ``poll`` is logged and the next poll runs as planned: a registry or
    store briefly unreadable never stops the following.

    :param poll: what to call (the server's :meth:`follow_once`).
    :param interval: seconds between the end of one poll and the start of the next (> 0).
    :param name: the thread's name, for logs.
    :raises ValueError: ``interval`` is not positive.
    """

    def __init__(self, poll: Callable[[], object], interval: float, *, name: str) -> None:
        if not interval > 0:
            raise ValueError(f"The follow interval must be a float > 0. Got {interval!r} instead.")
        self.poll = poll
        self.interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop polling and wait (up to ``timeout`` s) for a poll in progress to finish."""
        self._stopped.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive() and not self._stopped.is_set()

    def _run(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                self.poll()
            except Exception:
                _log.exception("Following the served model: a poll failed; retrying")
