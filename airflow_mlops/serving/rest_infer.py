"""The REST inference route, ``POST /v2/models/{name}[/versions/{v}]/infer``, as a plain ASGI
layer in front of the FastAPI app.

Inference is the one route on the hot path, and FastAPI's request machinery (routing, the
``Request`` object, dependency solving, exception middleware) cost more than everything the
route itself does on a one-row request. So :class:`InferRoute` answers it directly: it reads
the body, parses it (:func:`~airflow_mlops.serving.rest_messages.parse_infer_request`),
awaits the service's ``infer_async`` and writes the JSON response. Errors are answered as the
app answers them (:func:`error_status`); the middlewares around it (the request observer,
the bearer token, the body limit) and the OpenAPI document see it as any route. Any other
path goes on to the app.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, NamedTuple

from airflow_mlops.exceptions import (
    AirflowMlopsError,
    InferenceRequestError,
    ModelNotFoundError,
    ServingUnavailableError,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow_mlops.serving.metrics import (
        ASGIApp,
        ObservedService,
        Receive,
        Scope,
        Send,
    )

log = logging.getLogger(__name__)

#: The inference routes' path templates (OpenAPI's and the metrics' ``route`` label).
INFER_PATHS = ("/v2/models/{name}/infer", "/v2/models/{name}/versions/{version}/infer")
_STATUS: tuple[tuple[type[AirflowMlopsError], int], ...] = (
    (ModelNotFoundError, 404),
    (InferenceRequestError, 400),
    (ServingUnavailableError, 503),
)
_BINARY_HEADER = b"inference-header-content-length"


class RoutePath(NamedTuple):
    """What ``scope["route"]`` holds for an inference request (Starlette's routes have a
    ``path`` too): the matched template."""

    path: str


def error_status(exc: BaseException) -> int | None:
    """The HTTP status of a package error the client caused or may retry; None for others
    (a server error, 500)."""
    for kind, status in _STATUS:
        if isinstance(exc, kind):
            return status
    return None


def match_infer(path: str) -> tuple[str, str | None, str] | None:
    """``(name, version or None, template)`` of an inference path, else None."""
    parts = path.split("/")
    if parts[-1] != "infer" or parts[1:3] != ["v2", "models"]:
        return None
    if len(parts) == 5 and parts[3]:
        return parts[3], None, INFER_PATHS[0]
    if len(parts) == 7 and parts[3] and parts[4] == "versions" and parts[5]:
        return parts[3], parts[5], INFER_PATHS[1]
    return None


async def send_json(
    send: Send, status: int, document: Any, headers: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    """Send ``document`` as the JSON response (NaN must already be ``None``)."""
    import msgspec

    body = msgspec.json.encode(document)
    head = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": [*head, *headers]})
    await send({"type": "http.response.body", "body": body})


class InferRoute:
    """ASGI middleware answering the inference route (module docstring).

    :param app: the wrapped app (every other route); :param service: what answers.
    """

    def __init__(self, app: ASGIApp, *, service: ObservedService) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        matched = match_infer(scope["path"]) if scope["type"] == "http" else None
        if matched is None:
            await self.app(scope, receive, send)
            return
        name, version, template = matched
        scope["route"] = RoutePath(template)
        if scope["method"] != "POST":
            message = f"Method Not Allowed: {scope['method']} {scope['path']}"
            await send_json(send, 405, {"error": message}, [(b"allow", b"POST")])
            return
        body = await _body(receive)
        status, document = await self._answer(scope, name, version, body)
        await send_json(send, status, document)

    async def _answer(
        self, scope: Scope, name: str, version: str | None, body: bytes
    ) -> tuple[int, Any]:
        from airflow_mlops.serving.rest_messages import infer_response_json, parse_infer_request

        binary = next((v for k, v in scope["headers"] if k == _BINARY_HEADER), None)
        try:
            request = parse_infer_request(body, None if binary is None else binary.decode())
            response = await self.service.infer_async(name, version, request)
        except Exception as exc:
            status = error_status(exc)
            if status is not None:
                return status, {"error": str(exc)}
            log.error("POST %s failed", scope["path"], exc_info=exc)
            return 500, {"error": f"Internal server error ({type(exc).__name__}); see its log."}
        return 200, infer_response_json(response)


async def _body(receive: Receive) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)
