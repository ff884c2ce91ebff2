"""The standard health checking and reflection services beside the inference service, and
the bearer token (health ``Check`` stays open)."""

from __future__ import annotations

import grpc
import pytest
import tritonclient.grpc as triton
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

from tests.serving.grpc_client import TOKEN, call_error, raw_inputs


def test_standard_health_service(grpc_ports):
    with grpc.insecure_channel(f"127.0.0.1:{grpc_ports[0]}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "inference.GRPCInferenceService"):
            answer = health.Check(health_pb2.HealthCheckRequest(service=service))
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as raised:
            health.Check(health_pb2.HealthCheckRequest(service="other.Service"))
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_the_services(grpc_ports):
    with grpc.insecure_channel(f"127.0.0.1:{grpc_ports[0]}") as channel:
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
def test_token_is_required(grpc_ports, headers, message):
    with triton.InferenceServerClient(f"127.0.0.1:{grpc_ports[1]}") as client:
        for call in (
            lambda: client.is_server_live(headers=headers),
            lambda: client.get_model_metadata("credit", headers=headers),
            lambda: client.infer("credit", raw_inputs(), headers=headers),
        ):
            assert call_error(call) == ("StatusCode.UNAUTHENTICATED", message)


def test_token_opens_every_call_and_health_stays_open(grpc_ports):
    headers = {"authorization": f"Bearer {TOKEN}"}
    with triton.InferenceServerClient(f"127.0.0.1:{grpc_ports[1]}") as client:
        assert client.is_server_ready(headers=headers)
        result = client.infer("credit", raw_inputs(), headers=headers)
        assert result.as_numpy("decision").tolist() == [b"decline", b"approve"]
    with grpc.insecure_channel(f"127.0.0.1:{grpc_ports[1]}") as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as raised:
            ProtoReflectionDescriptorDatabase(channel).get_services()
        assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED
