"""The end of ``make demo``: ``airflow-mlops serve`` on the demo's store and registry, one
prediction by REST (raw HTTP JSON) and one by gRPC (the protocol's generated stubs), each
compared with the batch score of the same customer, then a little live traffic for the
challenger to shadow and the serving log to record.

The server runs as its own process (127.0.0.1, free ports, a fresh bearer token) and is
stopped by its PID; this process is only a client of it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlops.demo.credit_model import MODEL_NAME
from airflow_mlops.demo.environment import REPO
from airflow_mlops.demo.stack import SERVED_TABLE, free_port

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

KEY = "customer_id"


@dataclass(frozen=True)
class Served:
    """A running server: where it answers and the token it wants."""

    http_port: int
    grpc_port: int
    token: str
    pid: int


@dataclass(frozen=True)
class Prediction:
    """One customer's online answer."""

    protocol: str
    model_version: str
    default_probability: float
    decision: str


def _live(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/live", timeout=2):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def serving(
    store_root: str, registry_root: str, workdir: Path, partition: str | None = None
) -> Iterator[Served]:
    """``airflow-mlops serve`` of the champion with ``customer_features`` lookups (in
    ``partition``, default the latest), until the block ends (SIGTERM by PID, then SIGKILL
    if it lingers).

    :raises RuntimeError: the server exited or did not answer within 60 s (its log attached).
    """
    http_port, grpc_port, token = free_port(), free_port(), secrets.token_urlsafe(24)
    token_file = workdir / "serve-token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    command = [
        *(sys.executable, "-m", "airflow_mlops", "--root", store_root, "serve"),
        *(MODEL_NAME, "--registry", registry_root, "--feature-table", SERVED_TABLE),
        *("--http-port", str(http_port), "--grpc-port", str(grpc_port)),
        *("--token-file", str(token_file)),
        *(("--partition", partition) if partition else ()),
        # the challenger shadows the half of the customers batch scoring shadows
        *("--shadow-alias", "challenger", "--shadow-fraction", "0.5"),
    ]
    log = workdir / "serve.log"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with open(log, "wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not _live(http_port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"airflow-mlops serve did not start:\n{log.read_text()}")
            time.sleep(0.1)
        yield Served(http_port, grpc_port, token, process.pid)
    finally:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _infer(served: Served, customer_ids: list[int]) -> dict[str, Any]:
    """``POST /v2/models/credit_risk/infer`` with the customers' keys only, raw JSON.

    :raises urllib.error.HTTPError: a refused request.
    """
    rows = len(customer_ids)
    body = {"inputs": [{"name": KEY, "shape": [rows], "datatype": "INT64", "data": customer_ids}]}
    request = urllib.request.Request(
        f"http://127.0.0.1:{served.http_port}/v2/models/{MODEL_NAME}/infer",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {served.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, Any] = json.load(response)
    return answer


def live_traffic(served: Served, customer_ids: list[int], per_request: int = 50) -> int:
    """Ask for every customer of ``customer_ids``, ``per_request`` at a time; rows answered."""
    answered = 0
    for start in range(0, len(customer_ids), per_request):
        answer = _infer(served, customer_ids[start : start + per_request])
        answered += len(answer["outputs"][0]["data"])
    return answered


def rest_predict(served: Served, customer_id: int) -> Prediction:
    """``POST /v2/models/credit_risk/infer`` with the customer's key only, raw JSON.

    :raises urllib.error.HTTPError: a refused request.
    """
    answer = _infer(served, [customer_id])
    outputs = {output["name"]: output["data"][0] for output in answer["outputs"]}
    return Prediction(
        "REST", answer["model_version"], outputs["default_probability"], outputs["decision"]
    )


def grpc_predict(served: Served, customer_id: int) -> Prediction:
    """``ModelInfer`` with the customer's key only, through the protocol's stubs.

    :raises grpc.RpcError: a refused call.
    """
    import grpc

    from airflow_mlops.serving.proto import grpc_predict_v2_pb2 as pb
    from airflow_mlops.serving.proto import grpc_predict_v2_pb2_grpc as pb_grpc

    request = pb.ModelInferRequest(model_name=MODEL_NAME)
    key = request.inputs.add(name=KEY, datatype="INT64", shape=[1])
    key.contents.int64_contents.append(customer_id)
    with grpc.insecure_channel(f"127.0.0.1:{served.grpc_port}") as channel:
        grpc.channel_ready_future(channel).result(timeout=30)
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        metadata = (("authorization", f"Bearer {served.token}"),)
        answer = stub.ModelInfer(request, metadata=metadata, timeout=30)
    outputs = {output.name: output.contents for output in answer.outputs}
    return Prediction(
        "gRPC",
        answer.model_version,
        outputs["default_probability"].fp64_contents[0],
        outputs["decision"].bytes_contents[0].decode(),
    )
