"""A writer process that sets up once and forks one writer per crash trial.

Run as ``python -m tests.reliability.writer_host <module>:<factory> <json kwargs>``. The
factory (called once, in this process) imports what the writer needs and returns
``write(tag)``, one publish. Then, on stdin:

- ``loop <tag>``: fork a child that calls ``write(tag)``, ``write(tag + 1)``… until killed;
  print ``pid <pid>``.
- ``once <tag>…``: fork one child per tag; they start together, each calls
  ``write(tag)`` once and exits; print ``pid <pid>`` for each.
- ``warm <tag>``: call ``write(tag)`` in the host itself (lazy imports happen once).
- ``reap <pid>``: wait for the child, print ``reaped <pid> <status>``.

Children print ``begin <tag>`` before and ``end <tag>`` after every publish, so a trial
knows whether a kill landed inside one. Forking a set-up process makes a trial cost
milliseconds instead of the seconds of importing Airflow, pandas and scikit-learn.
"""

from __future__ import annotations

import importlib
import itertools
import json
import os
import sys
import traceback
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable


def say(line: str) -> None:
    """One line on stdout, unbuffered (children share the pipe; short writes are atomic)."""
    os.write(1, f"{line}\n".encode())


def _child(write: Callable[[int], object], tags: Iterable[int]) -> None:
    status = 0
    try:
        for tag in tags:
            say(f"begin {tag}")
            write(tag)
            say(f"end {tag}")
    except BaseException:  # noqa: BLE001 - reported on the pipe, the parent decides
        say("error " + traceback.format_exc().replace("\n", " | "))
        status = 1
    os._exit(status)


def _fork(
    write: Callable[[int], object], tags: Iterable[int], gate: tuple[int, int] | None = None
) -> int:
    pid = os.fork()
    if pid == 0:
        if gate is not None:
            os.close(gate[1])
            os.read(gate[0], 1)  # returns when the parent closes its end: all start together
        _child(write, tags)
    return pid


def main() -> None:
    target, kwargs = sys.argv[1], json.loads(sys.argv[2])
    module, factory = target.split(":")
    write = getattr(importlib.import_module(module), factory)(**kwargs)
    say("ready")
    for line in sys.stdin:
        command, *args = line.split()
        if command == "loop":
            say(f"pid {_fork(write, itertools.count(int(args[0])))}")
        elif command == "once":
            gate = os.pipe()
            pids = [_fork(write, [int(tag)], gate) for tag in args]
            os.close(gate[1])
            os.close(gate[0])
            for pid in pids:
                say(f"pid {pid}")
        elif command == "warm":
            write(int(args[0]))
            say("warmed")
        elif command == "reap":
            _, status = os.waitpid(int(args[0]), 0)
            say(f"reaped {args[0]} {status}")


if __name__ == "__main__":
    main()
