"""Online inference on the Open Inference Protocol (REST and gRPC), over the registry's
champion and the feature store's published tables. No Airflow import.

``protocol`` holds the transport-free messages and the :class:`InferenceService` both front
ends call; ``service`` its implementation, :class:`ModelServer`, over a :class:`ServedModel`
(``model``) and a :class:`FeatureIndex` (``features``); ``inputs`` turns request tensors into
Arrow columns and ``requests`` scores a request's rows. Importing this package stays cheap:
the classes below that need numpy or pyarrow are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_mlops.serving.protocol import (
    InferenceRequest,
    InferenceResponse,
    InferenceService,
    ModelMetadata,
    ServerMetadata,
    Tensor,
    TensorMetadata,
)

if TYPE_CHECKING:
    from airflow_mlops.serving.features import FeatureIndex
    from airflow_mlops.serving.inputs import MAX_ROWS_PER_REQUEST
    from airflow_mlops.serving.log import SegmentWriter
    from airflow_mlops.serving.model import ServedModel
    from airflow_mlops.serving.service import ModelServer
    from airflow_mlops.serving.shadow import OnlineShadow
    from airflow_mlops.serving.state import ServingState

#: public name → the module defining it, imported on first use
_LAZY = {
    "FeatureIndex": "airflow_mlops.serving.features",
    "MAX_ROWS_PER_REQUEST": "airflow_mlops.serving.inputs",
    "ModelServer": "airflow_mlops.serving.service",
    "OnlineShadow": "airflow_mlops.serving.shadow",
    "SegmentWriter": "airflow_mlops.serving.log",
    "ServedModel": "airflow_mlops.serving.model",
    "ServingState": "airflow_mlops.serving.state",
}


def __getattr__(name: str) -> Any:
    import importlib

    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)


__all__ = [
    "MAX_ROWS_PER_REQUEST",
    "FeatureIndex",
    "InferenceRequest",
    "InferenceResponse",
    "InferenceService",
    "ModelMetadata",
    "ModelServer",
    "OnlineShadow",
    "ServedModel",
    "SegmentWriter",
    "ServerMetadata",
    "ServingState",
    "Tensor",
    "TensorMetadata",
]
