"""Tensors between the Open Inference Protocol's gRPC messages and :mod:`serving.protocol`.

An input tensor's values come either in the ``contents`` field of its datatype
(``fp64_contents`` for ``FP64``…) or, for every input at once, in ``raw_input_contents``:
fixed-size values little-endian and unpadded, ``BYTES`` elements each after a 4-byte
little-endian length. Decoded values are flat: a numpy array over the raw bytes, a list of the
typed contents' values (narrow integers range-checked), a list of ``str`` for ``BYTES``. A
response is raw when its request was raw (what ``tritonclient.grpc`` sends and
reads) and typed otherwise. Anything malformed is an
:class:`~airflow_mlops.exceptions.InferenceRequestError` naming the input.
"""

from __future__ import annotations

import math
import struct
from typing import TYPE_CHECKING, Any

import numpy as np

from airflow_mlops.exceptions import InferenceRequestError
from airflow_mlops.serving.proto import grpc_predict_v2_pb2 as pb
from airflow_mlops.serving.protocol import InferenceRequest, InferenceResponse, Tensor

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from google.protobuf.internal.containers import MessageMap

#: numpy dtype of each fixed-size datatype, little-endian as the raw encoding is.
NUMPY_DTYPES = {
    "BOOL": np.dtype("?"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
#: The ``InferTensorContents`` field of each datatype (FP16 has none: raw only).
CONTENTS_FIELDS = {
    "BOOL": "bool_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
_LENGTH = struct.Struct("<I")
#: integer datatypes whose contents field is wider than they are: their values are range-checked
_NARROW = frozenset({"INT8", "INT16", "UINT8", "UINT16"})


def decode_request(message: pb.ModelInferRequest) -> InferenceRequest:
    """The protocol's request for a ``ModelInferRequest``.

    :raises InferenceRequestError: raw and typed contents mixed, a raw entry per input
        missing, an unknown datatype, a bad shape, or values that do not fill the shape.
    """
    raw = list(message.raw_input_contents)
    if raw and len(raw) != len(message.inputs):
        raise InferenceRequestError(
            f"The request has {len(message.inputs)} inputs but {len(raw)} raw_input_contents "
            "entries; give one entry per input, in the order of the inputs."
        )
    inputs = []
    for index, tensor in enumerate(message.inputs):
        shape = _shape(tensor.name, tensor.datatype, tensor.shape)
        if raw:
            if tensor.HasField("contents") and tensor.contents.ByteSize():
                raise InferenceRequestError(
                    f"Input {tensor.name!r} has typed contents while the request uses "
                    "raw_input_contents; send every input raw or every input typed.",
                    input_name=tensor.name,
                )
            data = _decode_raw(tensor.name, tensor.datatype, shape, raw[index])
        else:
            data = _decode_typed(tensor.name, tensor.datatype, shape, tensor.contents)
        inputs.append(
            Tensor(tensor.name, tensor.datatype, shape, data, _parameters(tensor.parameters))
        )
    return InferenceRequest(
        inputs=tuple(inputs),
        outputs=tuple(output.name for output in message.outputs) or None,
        id=message.id or None,
        parameters=_parameters(message.parameters),
    )


def encode_response(response: InferenceResponse, *, raw: bool) -> pb.ModelInferResponse:
    """The ``ModelInferResponse`` for a response: values in ``raw_output_contents`` if ``raw``
    (or if an output's datatype has no typed field), else in each output's ``contents``."""
    message = pb.ModelInferResponse(
        model_name=response.model_name,
        model_version=response.model_version,
        id=response.id or "",
    )
    _set_parameters(message.parameters, response.parameters)
    raw = raw or any(output.datatype not in CONTENTS_FIELDS for output in response.outputs)
    for output in response.outputs:
        tensor = message.outputs.add(name=output.name, datatype=output.datatype)
        tensor.shape.extend(output.shape)
        _set_parameters(tensor.parameters, output.parameters)
        if raw:
            message.raw_output_contents.append(_encode_raw(output))
        elif output.datatype == "BYTES":
            tensor.contents.bytes_contents.extend(_as_bytes(value) for value in output.data)
        else:
            values = np.asarray(output.data, dtype=NUMPY_DTYPES[output.datatype])
            getattr(tensor.contents, CONTENTS_FIELDS[output.datatype]).extend(values.tolist())
    return message


def _shape(name: str, datatype: str, dims: Sequence[int]) -> tuple[int, ...]:
    if datatype not in NUMPY_DTYPES and datatype != "BYTES":
        raise InferenceRequestError(
            f"Input {name!r} has datatype {datatype!r}, which the protocol does not define; "
            f"use one of {', '.join([*NUMPY_DTYPES, 'BYTES'])}.",
            input_name=name,
        )
    if any(dim < 0 for dim in dims):
        raise InferenceRequestError(
            f"Input {name!r} has shape {list(dims)}; a request's dimensions must be >= 0.",
            input_name=name,
        )
    return tuple(dims)


def _wrong_count(name: str, shape: tuple[int, ...], count: int, where: str) -> Exception:
    return InferenceRequestError(
        f"Input {name!r} has shape {list(shape)} ({math.prod(shape)} values) but {count} "
        f"values in {where}; send exactly one value per element, flattened row-major.",
        input_name=name,
    )


def _decode_raw(name: str, datatype: str, shape: tuple[int, ...], raw: bytes) -> Any:
    expected = math.prod(shape)
    if datatype == "BYTES":
        values = _split_bytes(name, raw)
        if len(values) != expected:
            raise _wrong_count(name, shape, len(values), "raw_input_contents")
        return _utf8(name, values)
    dtype = NUMPY_DTYPES[datatype]
    if len(raw) != expected * dtype.itemsize:
        raise InferenceRequestError(
            f"Input {name!r} ({datatype}, shape {list(shape)}) needs "
            f"{expected * dtype.itemsize} bytes of raw_input_contents but has {len(raw)}; "
            f"send {dtype.itemsize}-byte little-endian values, flattened row-major.",
            input_name=name,
        )
    return np.frombuffer(raw, dtype=dtype)


def _decode_typed(
    name: str, datatype: str, shape: tuple[int, ...], contents: pb.InferTensorContents
) -> Any:
    field = CONTENTS_FIELDS.get(datatype)
    if field is None:
        raise InferenceRequestError(
            f"Input {name!r} is {datatype}, which has no typed contents field; send it in "
            "raw_input_contents.",
            input_name=name,
        )
    values = getattr(contents, field)
    if len(values) != math.prod(shape):
        raise _wrong_count(name, shape, len(values), f"contents.{field}")
    if datatype == "BYTES":
        return _utf8(name, list(values))
    if datatype not in _NARROW:
        return list(values)  # the field holds exactly the datatype's values
    dtype = NUMPY_DTYPES[datatype]
    wide = np.asarray(values)
    array = wide.astype(dtype)
    if wide.dtype.kind in "iu" and not np.array_equal(array, wide):
        raise InferenceRequestError(
            f"Input {name!r} has values outside the range of {datatype} in "
            f"contents.{field}; send values that fit the datatype or a wider datatype.",
            input_name=name,
        )
    return array


def _split_bytes(name: str, raw: bytes) -> list[bytes]:
    values, offset = [], 0
    while offset < len(raw):
        if offset + _LENGTH.size > len(raw):
            break
        (length,) = _LENGTH.unpack_from(raw, offset)
        offset += _LENGTH.size
        if offset + length > len(raw):
            break
        values.append(raw[offset : offset + length])
        offset += length
    else:
        return values
    raise InferenceRequestError(
        f"Input {name!r} (BYTES) has raw_input_contents cut short at byte {offset} of "
        f"{len(raw)}; precede each element by its length as a 4-byte little-endian integer.",
        input_name=name,
    )


def _utf8(name: str, values: list[bytes]) -> list[str]:
    try:
        return [value.decode("utf-8") for value in values]
    except UnicodeDecodeError as error:
        raise InferenceRequestError(
            f"Input {name!r} (BYTES) has an element that is not UTF-8 ({error.reason} at "
            f"byte {error.start}); BYTES inputs carry UTF-8 text.",
            input_name=name,
        ) from None


def _as_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def _encode_raw(output: Tensor) -> bytes:
    if output.datatype == "BYTES":
        return b"".join(_LENGTH.pack(len(item)) + item for item in map(_as_bytes, output.data))
    return np.ascontiguousarray(output.data, dtype=NUMPY_DTYPES[output.datatype]).tobytes()


def _parameters(message: MessageMap[str, pb.InferParameter]) -> dict[str, Any]:
    if not message:
        return {}
    return {
        key: getattr(value, value.WhichOneof("parameter_choice"))
        for key, value in message.items()
        if value.WhichOneof("parameter_choice")
    }


def _set_parameters(target: MessageMap[str, pb.InferParameter], values: Mapping[str, Any]) -> None:
    for key, value in values.items():
        if isinstance(value, bool):
            target[key].bool_param = value
        elif isinstance(value, int):
            target[key].int64_param = value
        elif isinstance(value, float):
            target[key].double_param = value
        else:
            target[key].string_param = str(value)
