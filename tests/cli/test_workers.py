"""``serve --workers N``: each worker listens on its own SO_REUSEPORT socket of one port."""

from __future__ import annotations

import socket

import pytest

from airflow_mlops.cli.workers import listening_socket


def test_workers_bind_one_port_each_with_its_own_socket() -> None:
    first = listening_socket("127.0.0.1", 0)
    port = first.getsockname()[1]
    second = listening_socket("127.0.0.1", port)  # a second worker on the same port
    try:
        assert second.getsockname() == ("127.0.0.1", port)
        # the kernel spreads connections over both listeners
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(64)]
        accepted = []
        for listener in (first, second):
            listener.setblocking(False)
            while True:
                try:
                    accepted.append((listener, listener.accept()[0]))
                except BlockingIOError:
                    break
        per_listener = [sum(1 for lst, _ in accepted if lst is each) for each in (first, second)]
        assert sum(per_listener) == 64
        assert min(per_listener) >= 16  # 32 ± chance; never one listener taking them all
        for _, connection in accepted:
            connection.close()
        for client in clients:
            client.close()
        plain = socket.socket()
        with pytest.raises(OSError, match="in use"):  # no SO_REUSEPORT: the port is taken
            plain.bind(("127.0.0.1", port))
        plain.close()
    finally:
        first.close()
        second.close()
