"""Prometheus metrics and structured access logs of the inference server, for both protocols.

One :class:`ServingMetrics` per app owns its own registry (never the process-wide default, so
apps built in one process do not collide). The front ends report each finished request to
:meth:`ServingMetrics.observe`: the REST middleware :class:`RequestObserver` here, the gRPC
interceptor in :mod:`airflow_mlops.serving.grpc`. The model and version a request was
answered by, and its rows, come from the service's own response (:class:`ObservedService`
notes them), so labels stay bounded whatever names clients send. What the server serves
(ready, model version, feature partition, swaps, refusals) is read from ``describe()`` at
scrape time by :class:`ServerStateCollector`.

Metrics (all prefixed ``airflow_mlops_serving_``): ``requests_total{protocol,route,model,
version,outcome}``, ``request_errors_total{protocol,route,code}``,
``request_duration_seconds{protocol,route,model,version}`` (histogram),
``request_rows{protocol,model,version}`` (histogram: rows per inference request),
``ready``, ``model_info{model,version,alias,runtime}``, ``features_info{table,partition,
version}``, ``feature_rows``, ``swaps_total``, ``refusals_total``; with a shadow challenger
``shadow_rows_total``, ``shadow_dropped_requests_total``, ``shadow_errors_total``,
``shadow_queued_requests``; with the serving log ``log_segments_total``, ``log_rows_total``,
``log_dropped_rows_total``, ``log_errors_total``.

Access log lines go to the ``airflow_mlops.serving.access`` logger at INFO, one JSON object
per request: protocol, route, method, model, version, status, rows, latency_ms, request_id.
Never a feature value.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import secrets
import time
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator, MutableMapping

    from prometheus_client.metrics_core import Metric

    from airflow_mlops.serving.protocol import (
        InferenceRequest,
        InferenceResponse,
        InferenceService,
        ModelMetadata,
        ServerMetadata,
    )

    Scope = MutableMapping[str, Any]
    Message = MutableMapping[str, Any]
    Receive = Callable[[], Awaitable[Message]]
    Send = Callable[[Message], Awaitable[None]]
    ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The access log's logger.
ACCESS_LOGGER = "airflow_mlops.serving.access"
#: The REST route of the exposition.
METRICS_PATH = "/metrics"
#: The header (REST) or metadata key (gRPC) carrying a caller's request id; echoed back.
REQUEST_ID_HEADER = "x-request-id"
PREFIX = "airflow_mlops_serving_"
#: Latency buckets, seconds: sub-millisecond tree scoring up to slow lookups.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
#: Rows-per-request buckets.
ROW_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000, 10000)
#: ``describe()`` keys read as the swap and refusal counts (plain ints at the top level).
SWAPS_KEY, REFUSALS_KEY = "swaps", "refusals"

access_log = logging.getLogger(ACCESS_LOGGER)
_log = logging.getLogger(__name__)
#: What the service answered the current request with (set by the front end, filled by
#: :class:`ObservedService`; a mutable holder, so a worker thread's note reaches the caller).
_ANSWERED: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "airflow_mlops_answered", default=None
)


@dataclass
class RequestRecord:
    """One finished request, as metrics count it and the access log writes it.

    :param protocol: ``rest`` or ``grpc``; :param route: the route template or gRPC method;
    :param status: the HTTP status, or the gRPC code's name; :param ok: it succeeded.
    """

    protocol: str
    route: str
    method: str
    status: int | str
    ok: bool
    latency_ms: float
    request_id: str
    model: str = ""
    version: str = ""
    rows: int | None = None


#: a :class:`RequestRecord`'s fields as the access log writes them (``ok`` is in ``status``)
_ACCESS_FIELDS = tuple(field.name for field in fields(RequestRecord) if field.name != "ok")
_ID_PREFIX = secrets.token_hex(8)
_ID_COUNTER = itertools.count()


class ServingMetrics:
    """The metrics of one app (its own registry) and its access log switch.

    :param describe: the service's ``describe()``, read at each scrape (optional).
    :param access_log: write one access log line per request.
    """

    def __init__(
        self, describe: Callable[[], dict[str, object]] | None = None, *, access_log: bool = True
    ) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry(auto_describe=False)
        self.access_log = access_log
        labels = ("protocol", "route", "model", "version")
        self.requests = Counter(
            f"{PREFIX}requests",
            "Requests by protocol, route, answering model version and outcome (ok, error).",
            (*labels, "outcome"),
            registry=self.registry,
        )
        self.errors = Counter(
            f"{PREFIX}request_errors",
            "Failed requests by HTTP status or gRPC code.",
            ("protocol", "route", "code"),
            registry=self.registry,
        )
        self.latency = Histogram(
            f"{PREFIX}request_duration_seconds",
            "Request latency, seconds, as the server measures it.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rows = Histogram(
            f"{PREFIX}request_rows",
            "Rows per answered inference request (batch sizes).",
            ("protocol", "model", "version"),
            buckets=ROW_BUCKETS,
            registry=self.registry,
        )
        if describe is not None:
            self.registry.register(ServerStateCollector(describe))
        #: the labelled series of each label set seen, looked up once (``labels()`` costs
        #: more than the count itself)
        self._series: dict[tuple[object, ...], Any] = {}

    def observe(self, record: RequestRecord) -> None:
        """Count ``record`` and write its access log line."""
        labels = (record.protocol, record.route, record.model, record.version)
        self._series_of(self.requests, (*labels, "ok" if record.ok else "error")).inc()
        self._series_of(self.latency, labels).observe(record.latency_ms / 1000)
        if not record.ok:
            self._series_of(self.errors, (*labels[:2], str(record.status))).inc()
        if record.rows is not None:
            rows = (record.protocol, record.model, record.version)
            self._series_of(self.rows, rows).observe(record.rows)
        if self.access_log and access_log.isEnabledFor(logging.INFO):
            access = {name: getattr(record, name) for name in _ACCESS_FIELDS}
            access["latency_ms"] = round(record.latency_ms, 3)
            line = msgspec.json.encode(access).decode()
            access_log.info(line, extra={"access": access})

    def _series_of(self, metric: Any, labels: tuple[str, ...]) -> Any:
        series = self._series.get((id(metric), *labels))
        if series is None:
            series = self._series[(id(metric), *labels)] = metric.labels(*labels)
        return series

    def exposition(self) -> tuple[bytes, str]:
        """The registry in Prometheus' text format, and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def start_request() -> tuple[dict[str, Any], contextvars.Token[dict[str, Any] | None]]:
    """A fresh holder for what the service answers the current request with (reset the
    returned token when the request ends)."""
    answered: dict[str, Any] = {}
    return answered, _ANSWERED.set(answered)


def end_request(token: contextvars.Token[dict[str, Any] | None]) -> None:
    """Forget the current request's holder."""
    _ANSWERED.reset(token)


def new_request_id(given: str | bytes | None) -> str:
    """The caller's request id (at most 128 characters), else a fresh one: 32 hex digits, a
    random 64-bit prefix drawn once per process then a counter (unique without a system call
    per request, as ``uuid4`` makes)."""
    if isinstance(given, bytes):
        given = given.decode("latin-1")
    return given[:128] if given else f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


class ObservedService:
    """``service``, noting the model, version and rows of each answer for the metrics.

    :param service: the wrapped service; its other attributes pass through.
    """

    def __init__(self, service: InferenceService) -> None:
        self._service = service

    def __getattr__(self, name: str) -> Any:
        return getattr(self._service, name)

    def live(self) -> bool:
        return self._service.live()

    def ready(self) -> bool:
        return self._service.ready()

    def model_ready(self, name: str, version: str | None = None) -> bool:
        return self._service.model_ready(name, version)

    def server_metadata(self) -> ServerMetadata:
        return self._service.server_metadata()

    def model_metadata(self, name: str, version: str | None = None) -> ModelMetadata:
        return self._service.model_metadata(name, version)

    def infer(self, name: str, version: str | None, request: InferenceRequest) -> InferenceResponse:
        return self._noted(self._service.infer(name, version, request))

    async def infer_async(
        self, name: str, version: str | None, request: InferenceRequest
    ) -> InferenceResponse:
        """The service's ``infer_async`` (its ``infer`` on a worker thread when it has none)."""
        infer_async = getattr(self._service, "infer_async", None)
        if infer_async is None:
            from starlette.concurrency import run_in_threadpool

            response = await run_in_threadpool(self._service.infer, name, version, request)
        else:
            response = await infer_async(name, version, request)
        return self._noted(response)

    def _noted(self, response: InferenceResponse) -> InferenceResponse:
        answered = _ANSWERED.get()
        if answered is not None:
            shape = response.outputs[0].shape if response.outputs else ()
            answered.update(
                model=response.model_name,
                version=response.model_version,
                rows=int(shape[0]) if shape else None,
            )
        return response


class ServerStateCollector:
    """What ``describe()`` reports, as metrics at scrape time (nothing on the request path).

    :param describe: the service's ``describe()``; a failure is logged, never a failed scrape.
    """

    def __init__(self, describe: Callable[[], dict[str, object]]) -> None:
        self._describe = describe

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        try:
            state = self._describe()
        except Exception:
            _log.exception("describe() failed; its metrics are left out of this scrape")
            return
        yield GaugeMetricFamily(
            f"{PREFIX}ready", "1 while a verified model is served.", value=int(bool(state["ready"]))
        )
        model = state.get("model")
        if isinstance(model, dict):
            names = ["name", "version", "alias", "runtime"]
            info = GaugeMetricFamily(
                f"{PREFIX}model_info", "The served model (value 1).", labels=names
            )
            info.add_metric([str(model.get(k, "")) for k in names], 1)
            yield info
        features = state.get("features")
        if isinstance(features, dict):
            keys = ("table", "partition", "version")
            table = GaugeMetricFamily(
                f"{PREFIX}features_info", "The served feature partition (value 1).", labels=keys
            )
            table.add_metric([str(features.get(k, "")) for k in keys], 1)
            yield table
            yield GaugeMetricFamily(
                f"{PREFIX}feature_rows", "Rows of the served partition.", value=features["rows"]
            )
        for key, text in ((SWAPS_KEY, "Hot swaps done."), (REFUSALS_KEY, "Hot swaps refused.")):
            count = state.get(key)
            if isinstance(count, int):
                yield CounterMetricFamily(f"{PREFIX}{key}", text, value=count)
        batching = state.get("batching")
        if isinstance(batching, dict):  # micro-batching is on
            yield CounterMetricFamily(
                f"{PREFIX}batch_calls", "Model calls made by the batcher.", value=batching["calls"]
            )
            yield CounterMetricFamily(
                f"{PREFIX}batched_requests",
                "Requests the batcher served.",
                value=batching["requests"],
            )
            yield GaugeMetricFamily(
                f"{PREFIX}batch_largest_requests",
                "The most requests one model call has served.",
                value=batching["largest"],
            )
        yield from _off_path_metrics(state)


def _off_path_metrics(state: dict[str, object]) -> Iterator[Metric]:
    """The shadow challenger's and the serving log's counts, when they are on."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    shadow = state.get("shadow")
    if isinstance(shadow, dict):
        for key, name, text in (
            ("rows_scored", "shadow_rows", "Rows the shadow challenger scored."),
            ("dropped_requests", "shadow_dropped_requests", "Requests not shadowed: queue full."),
            ("errors", "shadow_errors", "Shadow challenger failures (loading or scoring)."),
        ):
            yield CounterMetricFamily(f"{PREFIX}{name}", text, value=shadow[key])
        yield GaugeMetricFamily(
            f"{PREFIX}shadow_queued_requests",
            "Requests waiting for the shadow challenger.",
            value=shadow["queued_requests"],
        )
    log = state.get("serving_log")
    if isinstance(log, dict):
        for key, name, text in (
            ("segments", "log_segments", "Serving log segments written."),
            ("rows", "log_rows", "Rows written to the serving log."),
            ("dropped_rows", "log_dropped_rows", "Rows lost to the serving log (queue full or "
             "write failed)."),
            ("errors", "log_errors", "Serving log write failures."),
        ):  # fmt: skip
            yield CounterMetricFamily(f"{PREFIX}{name}", text, value=log[key])


class RequestObserver:
    """ASGI middleware: times each HTTP request, reports it to ``metrics`` and echoes (or
    assigns) its ``x-request-id``.

    :param app: the wrapped app; :param metrics: where requests are counted and logged.
    """

    def __init__(self, app: ASGIApp, *, metrics: ServingMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        request_id = new_request_id(dict(scope["headers"]).get(REQUEST_ID_HEADER.encode()))
        status = 500

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (REQUEST_ID_HEADER.encode(), request_id.encode()),
                ]
            await send(message)

        answered, token = start_request()
        try:
            await self.app(scope, receive, send_observed)
        finally:
            end_request(token)
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.observe(
                RequestRecord(
                    "rest",
                    route,
                    scope["method"],
                    status,
                    status < 400,
                    (time.perf_counter() - start) * 1000,
                    request_id,
                    answered.get("model", ""),
                    answered.get("version", ""),
                    answered.get("rows"),
                )
            )
