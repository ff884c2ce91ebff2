"""The gRPC front end over a fake service, driven by ``tritonclient.grpc`` (and, for typed
contents, which it cannot send, by Triton's own generated messages over a plain channel)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import tritonclient.grpc as triton
from tritonclient.grpc import service_pb2

from tests.serving.grpc_client import call_error, raw_inputs


def expected_probability(income, age):
    income, age = np.asarray(income), np.asarray(age)
    return income / (income + 1000 * age)


def test_health_and_metadata_calls(client):
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("credit")
    assert client.is_model_ready("credit", "3")
    server = client.get_server_metadata()
    assert (server.name, server.version, list(server.extensions)) == ("airflow-mlops", "0.1.0", [])
    model = client.get_model_metadata("credit", as_json=True)
    assert model == {
        "name": "credit",
        "versions": ["3"],
        "platform": "sklearn",
        "inputs": [
            {"name": "income", "datatype": "FP64", "shape": ["-1"]},
            {"name": "age", "datatype": "INT64", "shape": ["-1"]},
            {"name": "region", "datatype": "BYTES", "shape": ["-1"]},
        ],
        "outputs": [
            {"name": "default_probability", "datatype": "FP64", "shape": ["-1"]},
            {"name": "decision", "datatype": "BYTES", "shape": ["-1"]},
        ],
    }


def test_infer_raw_contents_round_trip(client):
    result = client.infer(
        "credit",
        raw_inputs(),
        model_version="3",
        request_id="req-17",
        outputs=[
            triton.InferRequestedOutput("default_probability"),
            triton.InferRequestedOutput("decision"),
        ],
    )
    response = result.get_response()
    assert (response.model_name, response.model_version, response.id) == ("credit", "3", "req-17")
    assert response.parameters["rows"].int64_param == 2
    probability = result.as_numpy("default_probability")
    assert probability.dtype == np.float64
    assert probability.tolist() == expected_probability([50_000.0, 500.0], [30, 60]).tolist()
    assert result.as_numpy("decision").tolist() == [b"decline", b"approve"]


def test_infer_returns_only_the_requested_outputs(client):
    result = client.infer("credit", raw_inputs(), outputs=[triton.InferRequestedOutput("decision")])
    assert [output.name for output in result.get_response().outputs] == ["decision"]
    assert result.as_numpy("default_probability") is None


def test_infer_typed_contents_answers_typed(stub):
    request = service_pb2.ModelInferRequest(model_name="credit", id="typed-1")
    for name, datatype, field, values in (
        ("income", "FP64", "fp64_contents", [50_000.0]),
        ("age", "INT64", "int64_contents", [30]),
        ("region", "BYTES", "bytes_contents", [b"north"]),
    ):
        tensor = request.inputs.add(name=name, datatype=datatype, shape=[1])
        getattr(tensor.contents, field).extend(values)
    response = stub.ModelInfer(request)
    assert list(response.raw_output_contents) == []
    assert response.id == "typed-1"
    probability, decision = response.outputs
    assert (
        list(probability.contents.fp64_contents) == expected_probability([50_000.0], [30]).tolist()
    )
    assert list(decision.contents.bytes_contents) == [b"decline"]


@pytest.mark.parametrize(
    ("call", "status", "message"),
    [
        pytest.param(
            lambda c: c.is_model_ready("fraud"),
            "StatusCode.NOT_FOUND",
            "No model 'fraud' version None is served.",
            id="ready-unknown-model",
        ),
        pytest.param(
            lambda c: c.get_model_metadata("credit", "9"),
            "StatusCode.NOT_FOUND",
            "No model 'credit' version '9' is served.",
            id="metadata-unknown-version",
        ),
        pytest.param(
            lambda c: c.infer("fraud", raw_inputs()),
            "StatusCode.NOT_FOUND",
            "No model 'fraud' version None is served.",
            id="infer-unknown-model",
        ),
        pytest.param(
            lambda c: c.infer("warming", raw_inputs()),
            "StatusCode.UNAVAILABLE",
            "Model 'warming' is still loading; retry shortly.",
            id="infer-not-loaded",
        ),
        pytest.param(
            lambda c: c.infer("broken", raw_inputs()),
            "StatusCode.INTERNAL",
            "The server failed: RuntimeError.",
            id="server-fault-is-internal",
        ),
        pytest.param(
            lambda c: c.infer("credit", raw_inputs()[:2]),
            "StatusCode.INVALID_ARGUMENT",
            "Missing input 'region'.",
            id="missing-input",
        ),
        pytest.param(
            lambda c: c.infer(
                "credit",
                [
                    *raw_inputs()[:1],
                    triton.InferInput("age", [2], "FP64").set_data_from_numpy(np.array([1.0, 2.0])),
                    *raw_inputs()[2:],
                ],
            ),
            "StatusCode.INVALID_ARGUMENT",
            "Input 'age' must be INT64, got FP64.",
            id="wrong-datatype",
        ),
        pytest.param(
            lambda c: c.infer(
                "credit", raw_inputs(), outputs=[triton.InferRequestedOutput("score")]
            ),
            "StatusCode.INVALID_ARGUMENT",
            "Unknown output 'score'.",
            id="unknown-output",
        ),
        pytest.param(
            lambda c: c.infer("credit", raw_inputs(region=(b"north", b"\xff\xfe"))),
            "StatusCode.INVALID_ARGUMENT",
            "Input 'region' (BYTES) has an element that is not UTF-8 (invalid start byte at "
            "byte 0); BYTES inputs carry UTF-8 text.",
            id="bytes-not-utf8",
        ),
    ],
)
def test_errors_through_tritonclient(client, call, status, message):
    assert call_error(lambda: call(client)) == (status, message)


def test_message_over_16_mib_is_refused_by_grpc(client):
    rows = 3 * 1024 * 1024  # 24 MiB of FP64 income alone
    inputs = raw_inputs(
        income=np.ones(rows), age=np.ones(rows, dtype=np.int64), region=[b"x"] * rows
    )
    status, message = call_error(lambda: client.infer("credit", inputs))
    assert status == "StatusCode.RESOURCE_EXHAUSTED"
    assert re.search(r"Received message larger than max \(\d+ vs\. 16777216\)", message)
