"""Client-side helpers of the gRPC tests: the server process (``grpc_server_process``) started
and stopped by PID, fixtures over the fake service's (``conftest`` exposes them), and request
builders. ``tritonclient.grpc`` is imported only when used: a process holding it cannot load
the server's generated messages (see ``grpc_server_process``)."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from typing import TYPE_CHECKING

import grpc
import numpy as np
import pytest

from airflow_mlops.demo.stack import free_port

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

TOKEN = "s3cret-token"


@contextlib.contextmanager
def server_process(repo: Path, *args: str, ports: tuple[int, ...]) -> Iterator[None]:
    """``grpc_server_process`` with ``args``, once every port in ``ports`` accepts a channel;
    terminated (by its PID) on exit."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.serving.grpc_server_process", *args],
        cwd=repo,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for port in ports:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                try:
                    grpc.channel_ready_future(channel).result(timeout=60)
                except grpc.FutureTimeoutError:
                    process.kill()
                    pytest.fail(f"gRPC server did not start: {process.communicate()[1]}")
        yield
    finally:
        process.terminate()
        process.communicate(timeout=10)


@pytest.fixture(scope="package")
def grpc_ports(repo):
    """The fake service's server process: ``(port, token_port)`` on 127.0.0.1."""
    port, token_port = free_port(), free_port()
    args = ("fake", str(port), str(token_port), TOKEN)
    with server_process(repo, *args, ports=(port, token_port)):
        yield port, token_port


@pytest.fixture
def client(grpc_ports):
    import tritonclient.grpc as triton

    with triton.InferenceServerClient(f"127.0.0.1:{grpc_ports[0]}") as client:
        yield client


@pytest.fixture
def stub(grpc_ports):
    """Triton's generated stub (a superset of the protocol's service) for hand-built requests."""
    from tritonclient.grpc import service_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{grpc_ports[0]}") as channel:
        yield service_pb2_grpc.GRPCInferenceServiceStub(channel)


def raw_inputs(income=(50_000.0, 500.0), age=(30, 60), region=(b"north", b"south")):
    """The fake model's inputs, raw, through ``tritonclient.grpc``."""
    import tritonclient.grpc as triton

    inputs = []
    for name, datatype, values in (
        ("income", "FP64", np.array(income, dtype=np.float64)),
        ("age", "INT64", np.array(age, dtype=np.int64)),
        ("region", "BYTES", np.array(region, dtype=np.object_)),
    ):
        inputs.append(triton.InferInput(name, [len(values)], datatype).set_data_from_numpy(values))
    return inputs


def call_error(call):
    """The status and message of the ``InferenceServerException`` that ``call()`` raises."""
    from tritonclient.utils import InferenceServerException

    with pytest.raises(InferenceServerException) as raised:
        call()
    return raised.value.status(), raised.value.message()
