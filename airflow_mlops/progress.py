"""Progress lines for long work: rows, rows/s and elapsed time, at a bounded rate."""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

_log = logging.getLogger(__name__)


class InfoLogger(Protocol):
    """Anything with ``info(msg, *args)``: a stdlib logger or Airflow's task logger."""

    def info(self, msg: Any, /, *args: Any) -> Any: ...


class Progress:
    """Counts rows and logs ``<what>: N rows, R rows/s, T s elapsed`` every ``every`` seconds.

    :param what: what is being counted, e.g. ``"extract customers"``.
    :param logger: where lines go (the task's logger in operators).
    :param every: minimum seconds between two lines.
    """

    def __init__(self, what: str, *, logger: InfoLogger | None = None, every: float = 10.0) -> None:
        self.what = what
        self.rows = 0
        self._log = logger or _log
        self._every = every
        self._start = time.monotonic()
        self._last = self._start

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._start

    def add(self, rows: int) -> None:
        self.rows += rows
        now = time.monotonic()
        if now - self._last >= self._every:
            self._last = now
            self._emit("progress")

    def done(self) -> None:
        self._emit("done")

    def _emit(self, state: str) -> None:
        elapsed = self.elapsed
        rate = self.rows / elapsed if elapsed > 0 else 0.0
        self._log.info(
            "%s %s: %d rows, %.0f rows/s, %.1f s elapsed",
            self.what,
            state,
            self.rows,
            rate,
            elapsed,
        )
