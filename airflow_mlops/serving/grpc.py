"""The Open Inference Protocol over gRPC: ``inference.GRPCInferenceService`` in front of an
:class:`~airflow_mlops.serving.protocol.InferenceService`, with the standard health checking
(``grpc.health.v1.Health``) and reflection services and an optional bearer token.

Errors map to status codes once, in :data:`GRPC_STATUS`: an unknown model or version is
``NOT_FOUND``, a wrong request ``INVALID_ARGUMENT`` (its message names the input), a server
without a loaded model ``UNAVAILABLE``; with a token configured, a call without
``authorization: Bearer <token>`` metadata is ``UNAUTHENTICATED`` (health ``Check`` and
``Watch`` stay open for load balancers and orchestrators).

Example::

    server = serve(model_server, "127.0.0.1", 8001, token=os.environ["SERVING_TOKEN"])
    server.wait_for_termination()
"""

from __future__ import annotations

import hmac
import logging
import time
from concurrent import futures
from typing import TYPE_CHECKING, Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from airflow_mlops.exceptions import (
    InferenceRequestError,
    ModelNotFoundError,
    ServingUnavailableError,
)
from airflow_mlops.serving.grpc_codec import decode_request, encode_response
from airflow_mlops.serving.metrics import (
    REQUEST_ID_HEADER,
    ObservedService,
    RequestRecord,
    ServingMetrics,
    end_request,
    new_request_id,
    start_request,
)
from airflow_mlops.serving.proto import grpc_predict_v2_pb2 as pb
from airflow_mlops.serving.proto import grpc_predict_v2_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_mlops.serving.protocol import InferenceService

log = logging.getLogger(__name__)

#: The inference service's full name, as health checks and reflection list it.
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].full_name
#: Largest request or response message, in bytes (gRPC's default is 4 MiB).
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
#: The gRPC status code of each error the service raises.
GRPC_STATUS: dict[type[Exception], grpc.StatusCode] = {
    ModelNotFoundError: grpc.StatusCode.NOT_FOUND,
    InferenceRequestError: grpc.StatusCode.INVALID_ARGUMENT,
    ServingUnavailableError: grpc.StatusCode.UNAVAILABLE,
}
_OPEN_METHODS = frozenset({"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch"})


def _status(error: Exception) -> tuple[grpc.StatusCode, str]:
    """The status code and message a call ends with when the service raised ``error``."""
    for kind, code in GRPC_STATUS.items():
        if isinstance(error, kind):
            return code, str(error)
    log.error("gRPC call failed unexpectedly", exc_info=error)
    return grpc.StatusCode.INTERNAL, f"The server failed: {type(error).__name__}."


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    """Translates the protocol's messages to and from ``service`` calls.

    :param service: what answers (a :class:`~airflow_mlops.serving.service.ModelServer`).
    """

    def __init__(self, service: InferenceService) -> None:
        self.service = service

    def ServerLive(
        self, request: pb.ServerLiveRequest, context: grpc.ServicerContext
    ) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=self.service.live())

    def ServerReady(
        self, request: pb.ServerReadyRequest, context: grpc.ServicerContext
    ) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.service.ready())

    def ModelReady(
        self, request: pb.ModelReadyRequest, context: grpc.ServicerContext
    ) -> pb.ModelReadyResponse:
        try:
            ready = self.service.model_ready(request.name, request.version or None)
        except Exception as error:
            context.abort(*_status(error))
        return pb.ModelReadyResponse(ready=ready)

    def ServerMetadata(
        self, request: pb.ServerMetadataRequest, context: grpc.ServicerContext
    ) -> pb.ServerMetadataResponse:
        metadata = self.service.server_metadata()
        return pb.ServerMetadataResponse(
            name=metadata.name, version=metadata.version, extensions=metadata.extensions
        )

    def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: grpc.ServicerContext
    ) -> pb.ModelMetadataResponse:
        try:
            metadata = self.service.model_metadata(request.name, request.version or None)
        except Exception as error:
            context.abort(*_status(error))
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=metadata.name,
            versions=metadata.versions,
            platform=metadata.platform,
            inputs=[
                tensor(name=t.name, datatype=t.datatype, shape=t.shape) for t in metadata.inputs
            ],
            outputs=[
                tensor(name=t.name, datatype=t.datatype, shape=t.shape) for t in metadata.outputs
            ],
        )

    def ModelInfer(
        self, request: pb.ModelInferRequest, context: grpc.ServicerContext
    ) -> pb.ModelInferResponse:
        try:
            response = self.service.infer(
                request.model_name, request.model_version or None, decode_request(request)
            )
        except Exception as error:
            context.abort(*_status(error))
        return encode_response(response, raw=bool(request.raw_input_contents))


class _ReadinessHealth(health.HealthServicer):
    """The standard health service, ``SERVING`` while ``service.ready()``: each ``Check``
    asks the service afresh (``Watch`` streams what the latest ``Check`` saw)."""

    def __init__(self, service: InferenceService) -> None:
        super().__init__()
        self._service = service
        self.refresh()

    def refresh(self) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if self._service.ready()
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", SERVICE_NAME):
            self.set(name, status)

    def Check(
        self, request: health_pb2.HealthCheckRequest, context: grpc.ServicerContext
    ) -> health_pb2.HealthCheckResponse:
        self.refresh()
        return super().Check(request, context)


class MetricsInterceptor(grpc.ServerInterceptor):
    """Times each unary call, reports it to ``metrics`` (code, answering model version,
    rows) and writes its access log line; streaming calls (health ``Watch``) pass untouched.

    :param metrics: where calls are counted and logged.
    """

    def __init__(self, metrics: ServingMetrics) -> None:
        self._metrics = metrics

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None or handler.request_streaming or handler.response_streaming:
            return handler
        method = handler_call_details.method
        given = dict(handler_call_details.invocation_metadata).get(REQUEST_ID_HEADER)
        behavior = handler.unary_unary

        def observed(request: Any, context: grpc.ServicerContext) -> Any:
            start = time.perf_counter()
            request_id = new_request_id(given)
            context.set_trailing_metadata(((REQUEST_ID_HEADER, request_id),))
            answered, token = start_request()
            code = grpc.StatusCode.UNKNOWN
            try:
                response = behavior(request, context)
                code = context.code() or grpc.StatusCode.OK
                return response
            except BaseException:
                code = context.code() or grpc.StatusCode.UNKNOWN
                raise
            finally:
                end_request(token)
                self._metrics.observe(
                    RequestRecord(
                        "grpc",
                        method,
                        "unary",
                        code.name,
                        code is grpc.StatusCode.OK,
                        (time.perf_counter() - start) * 1000,
                        request_id,
                        answered.get("model", ""),
                        answered.get("version", ""),
                        answered.get("rows"),
                    )
                )

        return grpc.unary_unary_rpc_method_handler(
            observed,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


class BearerTokenInterceptor(grpc.ServerInterceptor):
    """Refuses calls without ``authorization: Bearer <token>`` metadata (``UNAUTHENTICATED``),
    except the health service's.

    :param token: the secret; compared in constant time.
    """

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None or handler_call_details.method in _OPEN_METHODS:
            return handler
        given = dict(handler_call_details.invocation_metadata).get("authorization", "")
        if hmac.compare_digest(_as_bytes(given), self._expected):
            return handler
        message = (
            "This server requires a bearer token: send 'authorization: Bearer <token>' metadata."
            if not given
            else "The bearer token in 'authorization' is not valid."
        )
        return _refusal(handler, message)


def _as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def _refusal(handler: grpc.RpcMethodHandler, message: str) -> grpc.RpcMethodHandler:
    """A handler of the same kind as ``handler`` that aborts with ``UNAUTHENTICATED``."""

    def refuse(request: Any, context: grpc.ServicerContext) -> None:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    kinds = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }
    make = kinds[(handler.request_streaming, handler.response_streaming)]
    return make(refuse, request_deserializer=handler.request_deserializer)


def serve(
    service: InferenceService,
    host: str,
    port: int,
    *,
    token: str | None = None,
    max_workers: int = 64,
    metrics: ServingMetrics | None = None,
) -> grpc.Server:
    """Start the gRPC server (inference, health, reflection) on ``host:port`` and return it
    running; stop it with ``server.stop(grace)``.

    :param service: what answers the calls.
    :param host: the address to bind (``127.0.0.1`` keeps it local).
    :param port: the TCP port.
    :param token: if set, every call but health checks must carry it as a bearer token.
    :param max_workers: threads answering calls concurrently: a call waits in its thread
        for the micro-batcher, so this also bounds how many calls one batch can gather.
    :param metrics: where calls are counted and logged (default: new ones, reading
        ``service.describe()``); pass the REST app's (``app.state.metrics``) to share them.
    :raises RuntimeError: the address could not be bound (gRPC's own error).
    """
    if metrics is None:
        metrics = ServingMetrics(getattr(service, "describe", None))
    interceptors: list[grpc.ServerInterceptor] = [MetricsInterceptor(metrics)]
    if token:
        interceptors.append(BearerTokenInterceptor(token))
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="grpc"),
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    servicer = InferenceServicer(ObservedService(service))
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, server)
    health_pb2_grpc.add_HealthServicer_to_server(_ReadinessHealth(service), server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    server.add_insecure_port(f"{host}:{port}")
    server.start()
    return server
