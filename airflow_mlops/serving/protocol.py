"""The Open Inference Protocol's messages, free of any transport.

The REST (``serving.rest``) and gRPC (``serving.grpc``) front ends translate their wire
formats into these types and call one :class:`InferenceService`; nothing below them knows
which protocol a request came by. Names follow the protocol (KServe's "V2 inference
protocol", spoken by Triton and MLServer): a request is named input tensors with a
``datatype``, a ``shape`` and row-major ``data``; a response is named output tensors.

Errors are the package's exceptions, mapped once per transport (in ``serving.rest`` and
:data:`airflow_mlops.serving.grpc.GRPC_STATUS`): an unknown model or version is
:class:`~airflow_mlops.exceptions.ModelNotFoundError` (404 / ``NOT_FOUND``), a request
that is wrong in itself is :class:`~airflow_mlops.exceptions.InferenceRequestError`
(400 / ``INVALID_ARGUMENT``), a server without a loaded model is
:class:`~airflow_mlops.exceptions.ServingUnavailableError` (503 / ``UNAVAILABLE``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow_mlops.contract import FeatureContract, FeatureField
    from airflow_mlops.models.records import ModelOutput

#: The protocol's tensor datatypes (``BYTES`` carries strings, UTF-8).
DATATYPES = (
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
)

#: The output naming, for each row whose key was looked up, why it has no score ("" if none).
ERROR_OUTPUT = "error"
#: Name of the protocol extension-free server this package runs, for ``GET /v2``.
SERVER_NAME = "airflow-mlops"


@dataclass(frozen=True)
class Tensor:
    """A named tensor: an input of a request or an output of a response.

    :param name: the input or output name (a feature column, ``default_probability``…).
    :param datatype: one of :data:`DATATYPES`.
    :param shape: dimensions; ``[n]`` or ``[n, 1]`` for one value per row.
    :param data: the values, flattened row-major (a list, or a numpy array once decoded).
    :param parameters: the protocol's free-form per-tensor parameters.
    """

    name: str
    datatype: str
    shape: tuple[int, ...]
    data: Sequence[Any]
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InferenceRequest:
    """``POST /v2/models/{name}[/versions/{v}]/infer`` / ``ModelInfer``.

    :param inputs: the input tensors: every feature of the model's input contract (raw
        features), or only the entity key (the features are looked up in the table).
    :param outputs: names of the outputs to return; ``None`` for all of them.
    :param id: the request id, echoed in the response.
    :param parameters: the protocol's request parameters.
    """

    inputs: tuple[Tensor, ...]
    outputs: tuple[str, ...] | None = None
    id: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InferenceResponse:
    """The answer: the model and version that produced it, and the requested outputs."""

    model_name: str
    model_version: str
    outputs: tuple[Tensor, ...]
    id: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TensorMetadata:
    """An input or output as model metadata lists it (``-1`` for a variable dimension)."""

    name: str
    datatype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class ModelMetadata:
    """``GET /v2/models/{name}[/versions/{v}]`` / ``ModelMetadata``."""

    name: str
    versions: tuple[str, ...]
    platform: str
    inputs: tuple[TensorMetadata, ...]
    outputs: tuple[TensorMetadata, ...]


@dataclass(frozen=True)
class ServerMetadata:
    """``GET /v2`` / ``ServerMetadata``."""

    name: str
    version: str
    extensions: tuple[str, ...] = ()


class InferenceService(Protocol):
    """What both front ends call; :class:`airflow_mlops.serving.service.ModelServer` is it."""

    def live(self) -> bool:
        """The process answers (``/v2/health/live``)."""
        ...

    def ready(self) -> bool:
        """A verified model (and its feature table, if any) is loaded (``/v2/health/ready``)."""
        ...

    def model_ready(self, name: str, version: str | None = None) -> bool:
        """``name`` (at ``version``, if given) is the loaded model.

        :raises ModelNotFoundError: no such model or version is served.
        """
        ...

    def server_metadata(self) -> ServerMetadata: ...

    def model_metadata(self, name: str, version: str | None = None) -> ModelMetadata:
        """:raises ModelNotFoundError: no such model or version is served."""
        ...

    def infer(self, name: str, version: str | None, request: InferenceRequest) -> InferenceResponse:
        """Score the request's rows with the served model.

        :raises ModelNotFoundError: no such model or version is served.
        :raises InferenceRequestError: a missing, unknown or mistyped input, a wrong shape,
            NaN where the contract forbids it, an unknown requested output.
        :raises ServingUnavailableError: no verified model is loaded yet.
        """
        ...


@dataclass(frozen=True)
class ServedContract:
    """What the served model reads and writes, for a front end that builds a typed schema
    from it (REST's ``POST /v2/models/{name}/predict``).

    :param model_name: the served model's name.
    :param contract: its input contract (raw features, one per column).
    :param key: the entity key column the features are looked up by; ``None`` when the
        server has no feature table (raw features only).
    :param output: its score and decision columns, decisions and threshold.
    """

    model_name: str
    contract: FeatureContract
    key: FeatureField | None
    output: ModelOutput
