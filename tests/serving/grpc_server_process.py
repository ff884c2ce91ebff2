"""A gRPC server process for the tests, serving on 127.0.0.1 until SIGTERM:

- ``python -m tests.serving.grpc_server_process fake PORT TOKEN_PORT TOKEN``: a small fake
  :class:`InferenceService` on ``PORT``, and the same with a bearer token on ``TOKEN_PORT``;
- ``python -m tests.serving.grpc_server_process model PORT STORE_ROOT REGISTRY_ROOT``: a real
  :class:`~airflow_mlops.serving.service.ModelServer` over the demo model's champion and
  ``customer_features``;
- ``… metrics PORT METRICS_PORT ACCESS_LOG``: the fake service on ``PORT``, its Prometheus
  metrics over HTTP on ``METRICS_PORT``, its access log lines appended to ``ACCESS_LOG``.

A process of its own because the server's generated ``inference`` messages and
``tritonclient.grpc``'s cannot be imported into one process (one protobuf descriptor pool).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import TYPE_CHECKING

import numpy as np

from airflow_mlops.demo.credit_model import MODEL_NAME
from airflow_mlops.exceptions import (
    InferenceRequestError,
    ModelNotFoundError,
    ServingUnavailableError,
)
from airflow_mlops.models.registry import ModelRegistry
from airflow_mlops.serving.grpc import serve
from airflow_mlops.serving.metrics import ACCESS_LOGGER, ServingMetrics
from airflow_mlops.serving.protocol import (
    InferenceResponse,
    ModelMetadata,
    ServerMetadata,
    Tensor,
    TensorMetadata,
)
from airflow_mlops.serving.service import ModelServer
from airflow_mlops.store.feature_store import FeatureStore

if TYPE_CHECKING:
    import grpc

    from airflow_mlops.serving.protocol import InferenceRequest

#: The fake model: ``default_probability = income / (income + 1000 * age)``, ``decision``
#: ``decline`` at 0.5 and above; ``region`` is checked and otherwise ignored.
INPUTS = {"income": "FP64", "age": "INT64", "region": "BYTES"}
OUTPUTS = {"default_probability": "FP64", "decision": "BYTES"}


class FakeService:
    """Serves model ``credit`` version ``3``; model ``warming`` is not loaded yet; model
    ``broken`` fails as a bug would."""

    def live(self) -> bool:
        return True

    def ready(self) -> bool:
        return True

    def _check(self, name: str, version: str | None) -> None:
        if name == "broken":
            raise RuntimeError("a bug in the service")
        if name == "warming":
            raise ServingUnavailableError("Model 'warming' is still loading; retry shortly.")
        if name != "credit" or version not in (None, "3"):
            raise ModelNotFoundError(f"No model {name!r} version {version!r} is served.")

    def model_ready(self, name: str, version: str | None = None) -> bool:
        self._check(name, version)
        return True

    def server_metadata(self) -> ServerMetadata:
        return ServerMetadata("airflow-mlops", "0.1.0", ())

    def model_metadata(self, name: str, version: str | None = None) -> ModelMetadata:
        self._check(name, version)
        return ModelMetadata(
            name="credit",
            versions=("3",),
            platform="sklearn",
            inputs=tuple(TensorMetadata(n, d, (-1,)) for n, d in INPUTS.items()),
            outputs=tuple(TensorMetadata(n, d, (-1,)) for n, d in OUTPUTS.items()),
        )

    def infer(self, name: str, version: str | None, request: InferenceRequest) -> InferenceResponse:
        self._check(name, version)
        given = {tensor.name: tensor for tensor in request.inputs}
        for input_name, datatype in INPUTS.items():
            if input_name not in given:
                raise InferenceRequestError(f"Missing input {input_name!r}.", input_name=input_name)
            if given[input_name].datatype != datatype:
                raise InferenceRequestError(
                    f"Input {input_name!r} must be {datatype}, got {given[input_name].datatype}.",
                    input_name=input_name,
                )
        probability = np.asarray(given["income"].data) / (
            np.asarray(given["income"].data) + 1000 * np.asarray(given["age"].data)
        )
        decision = ["decline" if p >= 0.5 else "approve" for p in probability]
        outputs = {
            "default_probability": Tensor(
                "default_probability", "FP64", (len(decision),), probability
            ),
            "decision": Tensor("decision", "BYTES", (len(decision),), decision),
        }
        for output in request.outputs or ():
            if output not in outputs:
                raise InferenceRequestError(f"Unknown output {output!r}.", input_name=output)
        return InferenceResponse(
            model_name="credit",
            model_version="3",
            outputs=tuple(outputs[n] for n in request.outputs or outputs),
            id=request.id,
            parameters={"rows": len(decision)},
        )


def model_server(store_root: str, registry_root: str) -> ModelServer:
    """The demo champion over ``customer_features``, loaded."""
    server = ModelServer(
        FeatureStore(store_root),
        ModelRegistry(registry_root),
        MODEL_NAME,
        feature_table="customer_features",
    )
    server.load()
    return server


def _metered(port: int, metrics_port: str, access_log: str) -> grpc.Server:
    """The fake service with metrics exposed on ``metrics_port`` and the access log in a file."""
    from prometheus_client import start_http_server

    handler = logging.FileHandler(access_log)
    logging.getLogger(ACCESS_LOGGER).addHandler(handler)
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.INFO)
    metrics = ServingMetrics()
    start_http_server(int(metrics_port), addr="127.0.0.1", registry=metrics.registry)
    return serve(FakeService(), "127.0.0.1", port, max_workers=4, metrics=metrics)


def main(mode: str, port: str, *args: str) -> None:
    """Serve until SIGTERM."""
    if mode == "fake":
        token_port, token = args
        servers = [
            serve(FakeService(), "127.0.0.1", int(port), max_workers=4),
            serve(FakeService(), "127.0.0.1", int(token_port), token=token, max_workers=4),
        ]
    elif mode == "metrics":
        servers = [_metered(int(port), *args)]
    else:
        servers = [serve(model_server(*args), "127.0.0.1", int(port), max_workers=4)]
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    stopped.wait()
    for server in servers:
        server.stop(grace=1).wait()


if __name__ == "__main__":
    main(*sys.argv[1:])
