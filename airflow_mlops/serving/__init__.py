"""Online inference on the Open Inference Protocol (REST and gRPC), over the registry's
champion and the feature store's published tables. No Airflow import.

``protocol`` holds the transport-free messages and the :class:`InferenceService` both front
ends call.
"""

from __future__ import annotations

from airflow_mlops.serving.protocol import (
    InferenceRequest,
    InferenceResponse,
    InferenceService,
    ModelMetadata,
    ServerMetadata,
    Tensor,
    TensorMetadata,
)

__all__ = [
    "InferenceRequest",
    "InferenceResponse",
    "InferenceService",
    "ModelMetadata",
    "ServerMetadata",
    "Tensor",
    "TensorMetadata",
]
