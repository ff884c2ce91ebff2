"""The Open Inference Protocol's REST API (v2) over an :class:`InferenceService`, as a FastAPI app.

Routes (``{v}`` optional throughout: ``/v2/models/{name}[/versions/{v}]…``):

========================================  ==================================================
``GET  /v2/health/live``                  the process answers (never needs the token)
``GET  /v2/health/ready``                 a verified model is loaded (503 until then)
``GET  /v2``                              server metadata
``GET  /v2/models/{name}``                model metadata
``GET  /v2/models/{name}/ready``          the model is loaded (503 until then)
``POST /v2/models/{name}/infer``          inference (:mod:`serving.rest_infer`, before FastAPI)
``POST /v2/models/{name}/predict``        the typed endpoint (:mod:`serving.predict`)
``GET  /metrics``                         Prometheus metrics (:mod:`serving.metrics`)
========================================  ==================================================

Errors are ``{"error": "<message>"}``: 400 for a request that is wrong in itself (malformed
JSON, a schema violation naming the field, :class:`InferenceRequestError`), 401 without the
bearer token, 404 for an unknown model, version or route, 413 for a body over
:data:`MAX_BODY_BYTES`, 503 (:class:`ServingUnavailableError`) before a model is loaded.
Inputs may also come in Triton's binary tensor extension (``Inference-Header-Content-Length``),
as ``tritonclient.http`` sends them by default.
"""

from __future__ import annotations

import hmac
import logging
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from airflow_mlops.exceptions import AirflowMlopsError
from airflow_mlops.serving.metrics import METRICS_PATH
from airflow_mlops.serving.rest_infer import INFER_PATHS, InferRoute, error_status, send_json
from airflow_mlops.serving.rest_messages import InferRequestBody, validation_message

if TYPE_CHECKING:
    from airflow_mlops.serving.metrics import (
        ASGIApp,
        Message,
        ObservedService,
        Receive,
        Scope,
        Send,
        ServingMetrics,
    )
    from airflow_mlops.serving.protocol import InferenceService

log = logging.getLogger(__name__)

#: The largest request body accepted (bytes); a larger one gets 413.
MAX_BODY_BYTES = 16 * 1024 * 1024
#: Paths served without the bearer token.
OPEN_PATHS = frozenset({"/v2/health/live"})

_COMPONENTS = "#/components/schemas/"


def create_app(
    service: InferenceService,
    *,
    token: str | None = None,
    metrics: ServingMetrics | None = None,
    open_metrics: bool = False,
) -> FastAPI:
    """The REST front end of ``service``; its :class:`ServingMetrics` is ``app.state.metrics``.

    :param service: what answers (a loaded :class:`~airflow_mlops.serving.service.ModelServer`).
    :param token: when given, every route but ``/v2/health/live`` needs
        ``Authorization: Bearer <token>`` (401 otherwise).
    :param metrics: where requests are counted and logged (default: new ones, reading
        ``service.describe()`` when it has one); pass the gRPC server's to share them.
    :param open_metrics: serve ``GET /metrics`` without the token.
    """
    from airflow_mlops import __version__
    from airflow_mlops.serving.metrics import ObservedService, RequestObserver, ServingMetrics
    from airflow_mlops.serving.rest_predict import add_predict_route

    if metrics is None:
        metrics = ServingMetrics(getattr(service, "describe", None))
    observed = ObservedService(service)

    app = FastAPI(
        title="airflow-mlops inference server",
        version=__version__,
        description="Open Inference Protocol v2 (REST) over the registry's served model.",
    )
    _add_error_handlers(app)
    _add_protocol_routes(app, observed)
    _add_metrics_route(app, metrics)
    describe = getattr(service, "served_contract", None)
    if describe is not None:  # the typed endpoint, for a service that describes its model
        add_predict_route(app, observed, describe())
    app.add_middleware(InferRoute, service=observed)
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    if token:
        open_paths = OPEN_PATHS | {METRICS_PATH} if open_metrics else OPEN_PATHS
        app.add_middleware(BearerAuth, token=token, open_paths=open_paths)
    app.add_middleware(RequestObserver, metrics=metrics)
    app.state.metrics = metrics
    return app


def _add_metrics_route(app: FastAPI, metrics: ServingMetrics) -> None:
    def prometheus_metrics() -> Response:
        """Prometheus metrics, text exposition format."""
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    app.get(METRICS_PATH, include_in_schema=False)(prometheus_metrics)


def _add_protocol_routes(app: FastAPI, service: ObservedService) -> None:
    def server_live() -> JSONResponse:
        """Server live: the process answers."""
        return _json({"live": service.live()})

    def server_ready() -> JSONResponse:
        """Server ready: a verified model is loaded (503 until then); ``details`` says what is
        served and the last hot-swap refusal, when the service describes itself."""
        ready = service.ready()
        describe = getattr(service, "describe", None)
        body = {"ready": ready} if describe is None else {"ready": ready, "details": describe()}
        return _json(body, 200 if ready else 503)

    def server_metadata() -> dict[str, Any]:
        """Server metadata: name, version, extensions."""
        meta = service.server_metadata()
        return {"name": meta.name, "version": meta.version, "extensions": list(meta.extensions)}

    def model_metadata(name: str, version: str | None = None) -> dict[str, Any]:
        """Model metadata: versions, platform, input and output tensors."""
        meta = service.model_metadata(name, version)
        return {
            "name": meta.name,
            "versions": list(meta.versions),
            "platform": meta.platform,
            "inputs": [_tensor_metadata(t) for t in meta.inputs],
            "outputs": [_tensor_metadata(t) for t in meta.outputs],
        }

    def model_ready(name: str, version: str | None = None) -> JSONResponse:
        """Model ready: the model (at the version) is loaded (503 until then)."""
        ready = service.model_ready(name, version)
        return _json({"name": name, "ready": ready}, 200 if ready else 503)

    _document_infer(app)
    app.get("/v2/health/live")(server_live)
    app.get("/v2/health/ready")(server_ready)
    app.get("/v2")(server_metadata)
    for prefix in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        app.get(prefix)(model_metadata)
        app.get(f"{prefix}/ready")(model_ready)


def _path_parameters(prefix: str) -> list[dict[str, Any]]:
    """The OpenAPI path parameters of ``prefix`` (``name``, and ``version`` if it has one)."""
    names = ["name", "version"] if "{version}" in prefix else ["name"]
    schema = {"type": "string"}
    return [{"name": n, "in": "path", "required": True, "schema": schema} for n in names]


def _document_infer(app: FastAPI) -> None:
    """List the inference routes (answered by :class:`~airflow_mlops.serving.rest_infer.
    InferRoute`, not by FastAPI) and their body's schema in the OpenAPI document."""
    import msgspec

    (ref,), schemas = msgspec.json.schema_components(
        [InferRequestBody], ref_template=f"{_COMPONENTS}{{name}}"
    )
    answer = {"description": "The output tensors", "content": {"application/json": {}}}
    paths = {
        path: {
            "post": {
                "summary": "Model Infer",
                "description": "Inference: named input tensors in, the requested output "
                "tensors out (JSON, or Triton's binary tensor extension).",
                "parameters": _path_parameters(path.removesuffix("/infer")),
                "requestBody": {"required": True, "content": {"application/json": {"schema": ref}}},
                "responses": {"200": answer},
            }
        }
        for path in INFER_PATHS
    }
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()
        document.setdefault("paths", {}).update(paths)
        document.setdefault("components", {}).setdefault("schemas", {}).update(schemas)
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def _tensor_metadata(tensor: Any) -> dict[str, Any]:
    return {"name": tensor.name, "datatype": tensor.datatype, "shape": list(tensor.shape)}


def _json(document: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(document, status_code=status)


def _add_error_handlers(app: FastAPI) -> None:
    async def package_error(request: Request, exc: Exception) -> JSONResponse:
        status = error_status(exc)
        if status is not None:
            return _json({"error": str(exc)}, status)
        return await unexpected(request, exc)

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return _json({"error": validation_message(list(exc.errors()))}, 400)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            message = (
                f"No route {request.method} {request.url.path}. The server answers the Open "
                "Inference Protocol under /v2 (the routes are listed at /docs)."
            )
        else:
            message = f"{exc.detail}: {request.method} {request.url.path}"
        return _json({"error": message}, exc.status_code)

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return _json({"error": f"Internal server error ({type(exc).__name__}); see its log."}, 500)

    app.add_exception_handler(AirflowMlopsError, package_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


async def _send_error(send: Send, status: int, message: str, headers: list[Any]) -> None:
    await send_json(send, status, {"error": message}, headers)


class BearerAuth:
    """ASGI middleware: 401 unless ``Authorization: Bearer <token>`` (but on ``open_paths``).

    :param app: the wrapped app; :param token: the expected token (compared in constant time).
    :param open_paths: the paths served without it.
    """

    def __init__(
        self, app: ASGIApp, *, token: str, open_paths: frozenset[str] = OPEN_PATHS
    ) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/") in self.open_paths:
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"authorization", b"")
        if hmac.compare_digest(given, self.expected):
            await self.app(scope, receive, send)
            return
        what = "a wrong bearer token" if given else "no Authorization header"
        open_paths = " and ".join(sorted(self.open_paths))
        verb = "is" if len(self.open_paths) == 1 else "are"
        await _send_error(
            send,
            401,
            f"The request has {what}. Send 'Authorization: Bearer <token>' with the "
            f"server's token (only {open_paths} {verb} open).",
            [(b"www-authenticate", b"Bearer")],
        )


class BodyLimit:
    """ASGI middleware: 413 for a request body over ``limit`` bytes, declared or streamed.

    :param app: the wrapped app; :param limit: the largest body accepted, in bytes.
    """

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit():
            if int(declared) > self.limit:
                await self._refuse(send, int(declared))
            else:  # the HTTP parser holds the body to its declared length
                await self.app(scope, receive, send)
            return
        chunks, size, more = [], 0, True  # no declared length (chunked): count what comes
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await self._refuse(send, size)
                return
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send, size: int) -> None:
        await _send_error(
            send,
            413,
            f"The request body has {size:,} bytes (or more), over the server's limit of "
            f"{self.limit:,}. Split the rows into several requests.",
            [],
        )
