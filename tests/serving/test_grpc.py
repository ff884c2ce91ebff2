"""The gRPC front end, driven by clients nobody here wrote: ``tritonclient.grpc`` (and, for
requests it cannot build, Triton's own generated messages over a plain channel), the
standard health checking client and the reflection client, against a server process over
a fake :class:`InferenceService` (``grpc_server_process``)."""

from __future__ import annotations

import re
import subprocess
import sys

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from airflow_mlops.demo.stack import free_port

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def ports(repo):
    """The server process: ``(port, token_port)`` on 127.0.0.1, stopped by PID at the end."""
    port, token_port = free_port(), free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.serving.grpc_server_process",
            str(port),
            str(token_port),
            TOKEN,
        ],
        cwd=repo,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for target in (port, token_port):
            with grpc.insecure_channel(f"127.0.0.1:{target}") as channel:
                try:
                    grpc.channel_ready_future(channel).result(timeout=30)
                except grpc.FutureTimeoutError:
                    process.kill()
                    pytest.fail(f"gRPC server did not start: {process.communicate()[1]}")
        yield port, token_port
    finally:
        process.terminate()
        process.communicate(timeout=10)


@pytest.fixture
def client(ports):
    with triton.InferenceServerClient(f"127.0.0.1:{ports[0]}") as client:
        yield client


@pytest.fixture
def stub(ports):
    """Triton's generated stub (a superset of the protocol's service) for hand-built requests."""
    with grpc.insecure_channel(f"127.0.0.1:{ports[0]}") as channel:
        yield service_pb2_grpc.GRPCInferenceServiceStub(channel)


def raw_inputs(income=(50_000.0, 500.0), age=(30, 60), region=(b"north", b"south")):
    inputs = []
    for name, datatype, values in (
        ("income", "FP64", np.array(income, dtype=np.float64)),
        ("age", "INT64", np.array(age, dtype=np.int64)),
        ("region", "BYTES", np.array(region, dtype=np.object_)),
    ):
        inputs.append(triton.InferInput(name, [len(values)], datatype).set_data_from_numpy(values))
    return inputs


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


def call_error(call):
    with pytest.raises(InferenceServerException) as raised:
        call()
    return raised.value.status(), raised.value.message()


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


def typed_request(**changes):
    """A valid one-row typed request, with ``changes`` applied to its inputs by name."""
    request = service_pb2.ModelInferRequest(model_name="credit")
    for name, datatype, field, value in (
        ("income", "FP64", "fp64_contents", 50_000.0),
        ("age", "INT64", "int64_contents", 30),
        ("region", "BYTES", "bytes_contents", b"north"),
    ):
        tensor = request.inputs.add(name=name, datatype=datatype, shape=[1])
        getattr(tensor.contents, field).append(value)
        if name in changes:
            changes[name](tensor)
    return request


def raw_request(*contents):
    request = service_pb2.ModelInferRequest(model_name="credit")
    for name, datatype in (("income", "FP64"), ("age", "INT64"), ("region", "BYTES")):
        request.inputs.add(name=name, datatype=datatype, shape=[1])
    request.raw_input_contents.extend(contents)
    return request


ONE_ROW_RAW = (np.float64(5e4).tobytes(), np.int64(30).tobytes(), b"\x05\x00\x00\x00north")


@pytest.mark.parametrize(
    ("request_message", "message"),
    [
        pytest.param(
            raw_request(*ONE_ROW_RAW[:2]),
            "The request has 3 inputs but 2 raw_input_contents entries; give one entry per "
            "input, in the order of the inputs.",
            id="raw-entry-missing",
        ),
        pytest.param(
            raw_request(np.float64(5e4).tobytes()[:7], *ONE_ROW_RAW[1:]),
            "Input 'income' (FP64, shape [1]) needs 8 bytes of raw_input_contents but has 7; "
            "send 8-byte little-endian values, flattened row-major.",
            id="raw-size",
        ),
        pytest.param(
            raw_request(*ONE_ROW_RAW[:2], b"\x09\x00\x00\x00north"),
            "Input 'region' (BYTES) has raw_input_contents cut short at byte 4 of 9; precede "
            "each element by its length as a 4-byte little-endian integer.",
            id="raw-bytes-cut-short",
        ),
        pytest.param(
            raw_request(*ONE_ROW_RAW[:2], b"\x01\x00\x00\x00a\x01\x00\x00\x00b"),
            "Input 'region' has shape [1] (1 values) but 2 values in raw_input_contents; send "
            "exactly one value per element, flattened row-major.",
            id="raw-bytes-count",
        ),
        pytest.param(
            typed_request(age=lambda t: t.contents.int64_contents.append(31)),
            "Input 'age' has shape [1] (1 values) but 2 values in contents.int64_contents; "
            "send exactly one value per element, flattened row-major.",
            id="typed-count",
        ),
        pytest.param(
            typed_request(
                age=lambda t: (
                    t.contents.ClearField("int64_contents"),
                    t.contents.fp64_contents.append(30),
                )
            ),
            "Input 'age' has shape [1] (1 values) but 0 values in contents.int64_contents; "
            "send exactly one value per element, flattened row-major.",
            id="typed-wrong-field",
        ),
        pytest.param(
            typed_request(age=lambda t: t.ClearField("shape") or t.shape.extend([-1])),
            "Input 'age' has shape [-1]; a request's dimensions must be >= 0.",
            id="negative-dimension",
        ),
        pytest.param(
            typed_request(income=lambda t: setattr(t, "datatype", "FLOAT")),
            "Input 'income' has datatype 'FLOAT', which the protocol does not define; use one "
            "of BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, "
            "FP64, BYTES.",
            id="unknown-datatype",
        ),
        pytest.param(
            typed_request(income=lambda t: setattr(t, "datatype", "FP16")),
            "Input 'income' is FP16, which has no typed contents field; send it in "
            "raw_input_contents.",
            id="fp16-typed",
        ),
        pytest.param(
            typed_request(
                age=lambda t: (
                    setattr(t, "datatype", "INT8"),
                    t.contents.ClearField("int64_contents"),
                    t.contents.int_contents.append(300),
                )
            ),
            "Input 'age' has values outside the range of INT8 in contents.int_contents; send "
            "values that fit the datatype or a wider datatype.",
            id="int8-out-of-range",
        ),
    ],
)
def test_malformed_requests_are_invalid_argument(stub, request_message, message):
    with pytest.raises(grpc.RpcError) as raised:
        stub.ModelInfer(request_message)
    assert (raised.value.code(), raised.value.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        message,
    )


def test_raw_and_typed_contents_mixed_is_invalid_argument(stub):
    request = raw_request(*ONE_ROW_RAW)
    request.inputs[1].contents.int64_contents.append(30)
    with pytest.raises(grpc.RpcError) as raised:
        stub.ModelInfer(request)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == (
        "Input 'age' has typed contents while the request uses raw_input_contents; send every "
        "input raw or every input typed."
    )


def test_message_over_16_mib_is_refused_by_grpc(client):
    rows = 3 * 1024 * 1024  # 24 MiB of FP64 income alone
    inputs = raw_inputs(
        income=np.ones(rows), age=np.ones(rows, dtype=np.int64), region=[b"x"] * rows
    )
    status, message = call_error(lambda: client.infer("credit", inputs))
    assert status == "StatusCode.RESOURCE_EXHAUSTED"
    assert re.search(r"Received message larger than max \(\d+ vs\. 16777216\)", message)


def test_standard_health_service(ports):
    with grpc.insecure_channel(f"127.0.0.1:{ports[0]}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "inference.GRPCInferenceService"):
            answer = health.Check(health_pb2.HealthCheckRequest(service=service))
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as raised:
            health.Check(health_pb2.HealthCheckRequest(service="other.Service"))
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_the_services(ports):
    with grpc.insecure_channel(f"127.0.0.1:{ports[0]}") as channel:
        services = ProtoReflectionDescriptorDatabase(channel).get_services()
        assert set(services) >= {
            "inference.GRPCInferenceService",
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection",
        }


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        pytest.param(
            None,
            "This server requires a bearer token: send 'authorization: Bearer <token>' metadata.",
            id="no-token",
        ),
        pytest.param(
            {"authorization": "Bearer wrong"},
            "The bearer token in 'authorization' is not valid.",
            id="wrong-token",
        ),
    ],
)
def test_token_is_required(ports, headers, message):
    with triton.InferenceServerClient(f"127.0.0.1:{ports[1]}") as client:
        for call in (
            lambda: client.is_server_live(headers=headers),
            lambda: client.get_model_metadata("credit", headers=headers),
            lambda: client.infer("credit", raw_inputs(), headers=headers),
        ):
            assert call_error(call) == ("StatusCode.UNAUTHENTICATED", message)


def test_token_opens_every_call_and_health_stays_open(ports):
    headers = {"authorization": f"Bearer {TOKEN}"}
    with triton.InferenceServerClient(f"127.0.0.1:{ports[1]}") as client:
        assert client.is_server_ready(headers=headers)
        result = client.infer("credit", raw_inputs(), headers=headers)
        assert result.as_numpy("decision").tolist() == [b"decline", b"approve"]
    with grpc.insecure_channel(f"127.0.0.1:{ports[1]}") as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as raised:
            ProtoReflectionDescriptorDatabase(channel).get_services()
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
