"""``airflow-mlops serve`` as a real process over the session's served world (a published
partition, an HGB champion, its batch scores), driven by ``tritonclient.http`` and raw HTTP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from airflow_mlops.demo.credit_model import INPUT_CONTRACT, MODEL_NAME
from airflow_mlops.demo.stack import free_port
from tests.serving.conftest import FEATURES, PARTITION, SCORES

TOKEN = "rest-client-token"


def auth() -> dict[str, str]:
    """A fresh headers dict per call: tritonclient adds its own headers to the one given."""
    return {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def server(served, repo, tmp_path_factory):
    """``(http_port, grpc_port, process)``: the server, started once, stopped by PID."""
    http_port, grpc_port = free_port(), free_port()
    token_file = tmp_path_factory.mktemp("token") / "token"
    token_file.write_text(f"{TOKEN}\n")
    command = [
        *(sys.executable, "-m", "airflow_mlops", "--root", served.store.root, "serve"),
        *("--registry", served.registry.root, MODEL_NAME, "--feature-table", FEATURES),
        *("--http-port", str(http_port), "--grpc-port", str(grpc_port)),
        *("--token-file", str(token_file)),
    ]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    process = subprocess.Popen(command, cwd=repo, env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{http_port}/v2/health/live").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"airflow-mlops serve did not start: {process.communicate()[1]}")
            time.sleep(0.2)
        yield http_port, grpc_port, process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


@pytest.fixture(scope="module")
def client(server):
    return triton.InferenceServerClient(f"127.0.0.1:{server[0]}")


@pytest.fixture(scope="module")
def batch_scores(served):
    """customer_id → (default_probability, decision) as batch scoring published them."""
    table = served.store.read_partition(SCORES, PARTITION)
    keys = table.column("customer_id").to_pylist()
    return dict(
        zip(
            keys,
            zip(
                table.column("default_probability").to_pylist(),
                table.column("decision").to_pylist(),
                strict=True,
            ),
            strict=True,
        )
    )


def test_health_and_metadata_through_tritonclient(client, served):
    assert client.is_server_live()
    assert client.is_server_ready(headers=auth())
    assert client.is_model_ready(MODEL_NAME, headers=auth())
    version = served.server.state.model.version
    assert client.is_model_ready(MODEL_NAME, version, headers=auth())
    meta = client.get_server_metadata(headers=auth())
    assert meta["name"] == "airflow-mlops"
    model = client.get_model_metadata(MODEL_NAME, headers=auth())
    assert model["versions"] == [version]
    names = [tensor["name"] for tensor in model["inputs"]]
    assert names == [*INPUT_CONTRACT.names, "customer_id"]
    assert [o["name"] for o in model["outputs"]] == ["default_probability", "decision", "error"]


@pytest.mark.parametrize(
    "binary", [pytest.param(True, id="binary"), pytest.param(False, id="json")]
)
def test_infer_raw_features_equals_batch(client, served, batch_scores, binary):
    rows = served.features.slice(100, 37)
    inputs = []
    for field in INPUT_CONTRACT.fields:
        column = rows.column(field.name)
        if field.type == "string":
            values, datatype = np.array(column.to_pylist(), dtype=object), "BYTES"
        else:
            values = column.to_numpy(zero_copy_only=False)
            datatype = "INT64" if field.type == "int64" else "FP64"
        tensor = triton.InferInput(field.name, [len(rows)], datatype)
        tensor.set_data_from_numpy(values, binary_data=binary)
        inputs.append(tensor)
    wanted = [triton.InferRequestedOutput("default_probability", binary_data=binary)]
    result = client.infer(MODEL_NAME, inputs, outputs=wanted, request_id="raw-37", headers=auth())
    assert result.get_response()["id"] == "raw-37"
    assert result.as_numpy("decision") is None
    expected = [batch_scores[k][0] for k in rows.column("customer_id").to_pylist()]
    assert result.as_numpy("default_probability").tolist() == expected


def test_infer_by_key_with_a_missing_key(client, batch_scores):
    keys = np.array([5, 999_999, 11_000], dtype=np.int64)
    key = triton.InferInput("customer_id", [3], "INT64")
    key.set_data_from_numpy(keys)
    result = client.infer(MODEL_NAME, [key], request_id="keys", headers=auth())
    scores = result.as_numpy("default_probability")
    assert scores[[0, 2]].tolist() == [batch_scores[5][0], batch_scores[11_000][0]]
    assert np.isnan(scores[1])
    decisions = result.as_numpy("decision").tolist()  # JSON outputs: text, not bytes
    assert [decisions[0], decisions[2]] == [batch_scores[5][1], batch_scores[11_000][1]]
    errors = result.as_numpy("error").tolist()
    assert errors[0] == errors[2] == ""
    assert "999999" in errors[1]


def test_errors_through_tritonclient(client):
    with pytest.raises(InferenceServerException, match="No model 'nope' is served here"):
        client.get_model_metadata("nope", headers=auth())
    wrong = triton.InferInput("customer_id", [1], "FP64")
    wrong.set_data_from_numpy(np.array([1.5]))
    with pytest.raises(InferenceServerException, match="customer_id") as info:
        client.infer(MODEL_NAME, [wrong], headers=auth())
    assert info.value.status() == "400"


def test_raw_http_json_and_the_typed_endpoint(server, batch_scores):
    base = f"http://127.0.0.1:{server[0]}"
    body = {
        "id": "curl-1",
        "inputs": [
            {"name": "customer_id", "shape": [2, 1], "datatype": "INT64", "data": [[7], [8]]}
        ],
        "outputs": [{"name": "decision"}],
    }
    response = httpx.post(f"{base}/v2/models/{MODEL_NAME}/infer", json=body, headers=auth())
    assert response.status_code == 200
    assert response.json()["outputs"][0]["data"] == [batch_scores[7][1], batch_scores[8][1]]
    typed = httpx.post(
        f"{base}/v2/models/{MODEL_NAME}/predict", json={"customer_id": 7}, headers=auth()
    )
    assert typed.json()["predictions"] == [
        {
            "customer_id": 7,
            "default_probability": batch_scores[7][0],
            "decision": batch_scores[7][1],
            "error": "",
        }
    ]
    fields = httpx.get(f"{base}/openapi.json", headers=auth()).json()["components"]["schemas"]
    assert set(fields[f"{MODEL_NAME}_row"]["properties"]) == {"customer_id", *INPUT_CONTRACT.names}


def test_without_the_token_only_live_answers(server, client):
    base = f"http://127.0.0.1:{server[0]}"
    assert httpx.get(f"{base}/v2/health/live").status_code == 200
    assert not client.is_server_ready()
    response = httpx.post(f"{base}/v2/models/{MODEL_NAME}/infer", json={"inputs": []})
    assert response.status_code == 401


def test_the_grpc_server_runs_beside_it(server):
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{server[1]}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        status = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=10).status
    assert status == health_pb2.HealthCheckResponse.SERVING


def test_sigterm_stops_it_cleanly(server):
    """Last in the module: the fixture's server ends on SIGTERM, with its shutdown logged."""
    process = server[2]
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=15)
    assert process.returncode in (0, -signal.SIGTERM), stderr
    assert "Serving credit_risk" in stderr
    assert "Application shutdown complete" in stderr
    assert "Traceback" not in stderr
