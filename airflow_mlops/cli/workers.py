"""``serve --workers N``: N server processes on one port, each listening on its own socket.

Each worker binds ``host:port`` itself with ``SO_REUSEPORT``, so the kernel spreads new
connections evenly over the workers (by a hash of each connection's addresses). uvicorn's
own ``--workers`` shares one listening socket between processes instead, and whichever is
first to wake accepts a burst: 64 connections opened at once were seen split 60/4 between
two workers, leaving one core idle. gRPC's server already binds with ``SO_REUSEPORT``.

The parent only supervises: it starts the workers (``spawn``: fresh interpreters), forwards
SIGTERM/SIGINT to them, waits for them, and stops them all (exit status 1) when one dies, so
that the deployment restarts the server as a whole. Linux (and the BSDs) only.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger(__name__)

#: Pending connections a worker's socket holds (uvicorn's default backlog).
BACKLOG = 2048
#: Seconds a worker has to stop after SIGTERM before it is killed.
STOP_SECONDS = 30.0


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` with ``SO_REUSEPORT``, listening.

    :raises OSError: the address cannot be bound (in use without ``SO_REUSEPORT``, or not
        an address of this machine).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    return sock


def run_workers(target: Callable[..., None], args: tuple[Any, ...], workers: int) -> None:
    """Run ``target(*args)`` in ``workers`` processes until SIGTERM/SIGINT or one exits.

    :raises SystemExit: status 1 when a worker exited on its own (the others are stopped).
    """
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=target, args=args, name=f"serve-worker-{n}") for n in range(workers)
    ]
    stopping = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopping.set())
    for process in processes:
        process.start()
    log.info("Started %d workers: %s", workers, ", ".join(str(p.pid) for p in processes))
    failed = None
    while failed is None and not stopping.wait(0.5):
        failed = next((p for p in processes if not p.is_alive()), None)
    for process in processes:
        if process.is_alive() and process.pid is not None:
            os.kill(process.pid, signal.SIGTERM)
    for process in processes:
        process.join(STOP_SECONDS)
        if process.is_alive():
            process.kill()
            process.join()
    if failed is not None:
        log.error(
            "Worker %s exited with status %s; stopped the others.", failed.pid, failed.exitcode
        )
        sys.exit(1)
