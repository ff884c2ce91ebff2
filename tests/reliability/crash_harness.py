"""SIGKILL writers at seeded random instants while readers keep reading.

A :class:`WriterHost` is a subprocess (:mod:`tests.reliability.writer_host`) that sets a
writer up once and forks one writer child per trial; :func:`run_crash_trials` kills each
child after a random delay from a seeded schedule, while :class:`Readers` threads in the
test process check every read. The seed is in every assertion message:
``AIRFLOW_MLOPS_CRASH_SEED=<seed>`` reruns the same schedule (and
``AIRFLOW_MLOPS_CRASH_TRIALS`` changes the number of trials).
"""

from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

REPO = Path(__file__).resolve().parents[2]
TRIALS = int(os.environ.get("AIRFLOW_MLOPS_CRASH_TRIALS", "50"))
TEMP_MARK = ".tmp-"  # airflow_mlops.io.durable's temp-file mark


def crash_seed(default: int) -> int:
    """The seed of a test's kill schedule: ``AIRFLOW_MLOPS_CRASH_SEED`` or the default."""
    return int(os.environ.get("AIRFLOW_MLOPS_CRASH_SEED", default))


class Inconsistent(AssertionError):
    """A reader saw a partial, mixed or vanished state."""


class WriterHost:
    """The writer subprocess: ``target`` is ``module:factory`` returning ``write(tag)``."""

    def __init__(self, target: str, env: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        import json

        environment = {**os.environ, **(env or {})}
        environment["PYTHONPATH"] = os.pathsep.join(
            [str(REPO), *filter(None, [environment.get("PYTHONPATH")])]
        )
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.writer_host", target, json.dumps(kwargs)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=environment,
            cwd=REPO,
        )
        self.output: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self._until("ready")

    def __enter__(self) -> WriterHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def loop(self, first_tag: int) -> int:
        """Fork a child publishing ``first_tag``, ``first_tag + 1``… until killed; its pid."""
        self._send(f"loop {first_tag}")
        return int(self._until("pid ").split()[1])

    def once(self, *tags: int) -> list[int]:
        """Fork one child per tag, started together, each publishing once; their pids."""
        self._send("once " + " ".join(map(str, tags)))
        return [int(self._until("pid ").split()[1]) for _ in tags]

    def reap(self, pid: int) -> tuple[int, list[str]]:
        """Wait for a child; its wait status and the lines printed since the last reap."""
        self._send(f"reap {pid}")
        status = int(self._until(f"reaped {pid} ").split()[2])
        lines, self.output = self.output, []
        return status, lines

    def close(self) -> None:
        if self.process.stdin:
            self.process.stdin.close()
        self.process.wait(timeout=30)
        if self.process.stdout:
            self.process.stdout.close()

    def _send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def warm(self, tag: int) -> None:
        """Publish once in the host itself, so that the children inherit lazy imports."""
        self._send(f"warm {tag}")
        self._until("warmed")

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line.strip())
        self._lines.put(None)

    def _until(self, prefix: str, timeout: float = 120.0) -> str:
        """The next line starting with ``prefix``; other lines go to :attr:`output`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.process.kill()
                raise TimeoutError(
                    f"no {prefix!r} from the writer host: {self.output[-5:]}"
                ) from None
            if line is None:
                raise RuntimeError(f"writer host exited before {prefix!r}: {self.output[-5:]}")
            if line.startswith(prefix):
                return line
            self.output.append(line)


@dataclass
class ReadTally:
    """What one reader saw: good reads, tolerated retries, and findings."""

    good: int = 0
    retried: int = 0
    inconsistent: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def reads(self) -> int:
        return self.good + self.retried + len(self.inconsistent) + len(self.errors)


class Readers:
    """One thread reading through every check in turn until the block ends.

    A check returns ``None`` for a good read or ``"retry"`` for an outcome a reader is
    allowed to retry (a plain Parquet reader whose listed files were replaced); it raises
    :class:`Inconsistent` for a partial or mixed read; any other exception is an error.
    """

    def __init__(self, checks: Mapping[str, Callable[[], str | None]]) -> None:
        self.checks = dict(checks)
        self.tallies = {name: ReadTally() for name in checks}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Readers:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.is_set():
            for name, check in self.checks.items():
                tally = self.tallies[name]
                try:
                    outcome = check()
                except Inconsistent as exc:
                    tally.inconsistent.append(str(exc))
                except Exception as exc:  # noqa: BLE001 - every other failure is a finding
                    tally.errors.append(f"{type(exc).__name__}: {exc}")
                else:
                    if outcome == "retry":
                        tally.retried += 1
                    else:
                        tally.good += 1
            time.sleep(0.002)  # leave the writers some CPU on small machines

    @property
    def reads(self) -> int:
        return sum(t.reads for t in self.tallies.values())

    def findings(self) -> dict[str, list[str]]:
        """Inconsistent reads and errors by reader (first five of each); empty if none."""
        found = {}
        for name, tally in self.tallies.items():
            if tally.inconsistent or tally.errors:
                found[name] = [*tally.inconsistent[:5], *tally.errors[:5]]
        return found

    def summary(self) -> str:
        return ", ".join(
            f"{name}: {t.good} good, {t.retried} retried, {len(t.inconsistent)} inconsistent, "
            f"{len(t.errors)} errors"
            for name, t in self.tallies.items()
        )


@dataclass
class CrashStats:
    """Where the kills of a run of trials landed."""

    seed: int
    trials: int = 0
    mid_publish: int = 0  # the child had begun a publish and not ended it
    between: int = 0  # after a publish ended, before the next began
    publishes: int = 0  # publishes that completed before the kill
    debris: int = 0  # kills after which the writer had left something on disk

    def summary(self) -> str:
        return (
            f"seed {self.seed}: {self.trials} trials, kills {self.mid_publish} mid-publish / "
            f"{self.between} between publishes, {self.publishes} completed publishes, "
            f"{self.debris} kills left debris (reproduce: AIRFLOW_MLOPS_CRASH_SEED={self.seed})"
        )


def run_crash_trials(
    host: WriterHost,
    *,
    seed: int,
    max_delay: float,
    debris: Callable[[], int],
    trials: int = TRIALS,
) -> CrashStats:
    """``trials`` times: fork a looping writer, SIGKILL it after ``uniform(0, max_delay)`` s.

    ``debris()`` counts what the killed writer left behind (checked after every kill).
    """
    schedule = random.Random(seed)
    stats = CrashStats(seed=seed)
    for trial in range(1, trials + 1):
        pid = host.loop(trial * 1000)
        time.sleep(schedule.uniform(0.0, max_delay))
        os.kill(pid, signal.SIGKILL)
        status, lines = host.reap(pid)
        errors = [line for line in lines if line.startswith("error")]
        assert not errors, f"{stats.summary()}: the writer failed: {errors[0]}"
        assert os.WIFSIGNALED(status), f"{stats.summary()}: trial {trial} ended before the kill"
        begun = sum(line.startswith("begin") for line in lines)
        ended = sum(line.startswith("end") for line in lines)
        stats.trials += 1
        stats.publishes += ended
        stats.mid_publish += begun > ended
        stats.between += begun == ended
        stats.debris += debris() > 0
    return stats


def run_together(host: WriterHost, *tags: int) -> list[list[str]]:
    """Fork one writer per tag, started at once; wait; each one's status must be 0."""
    pids = host.once(*tags)
    results = [host.reap(pid) for pid in pids]
    assert all(status == 0 for status, _ in results), [lines for _, lines in results]
    return [lines for _, lines in results]


def hidden_temps(*directories: Path) -> list[str]:
    """Temp files (``.<name>.tmp-…``) left in ``directories`` (missing ones count as empty)."""
    return [
        str(directory / name)
        for directory in directories
        if directory.is_dir()
        for name in os.listdir(directory)
        if TEMP_MARK in name
    ]


def walk(root: Path) -> Iterator[Path]:
    """Every path under ``root`` (symlinks not followed)."""
    for directory, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            yield Path(directory) / name
