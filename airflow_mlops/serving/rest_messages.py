"""The Open Inference Protocol's REST messages: JSON (and Triton's binary tensor extension)
to and from :mod:`airflow_mlops.serving.protocol`'s types.

A request's ``data`` may be flat or nested row-major lists; with the header
``Inference-Header-Content-Length`` the JSON part is followed by the inputs' raw bytes
(little-endian; ``BYTES`` elements each a 4-byte length and UTF-8 text), each input saying
its ``binary_data_size`` — what ``tritonclient.http`` sends by default.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import msgspec

from airflow_mlops.exceptions import InferenceRequestError
from airflow_mlops.serving.protocol import InferenceRequest, InferenceResponse, Tensor

#: Triton's binary tensor extension: the JSON part's length when binary data follows it.
BINARY_HEADER = "inference-header-content-length"
#: numpy dtypes of the protocol's fixed-size datatypes, for binary tensor data.
NUMPY_DTYPES = {
    "BOOL": "?",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}


class InferInput(msgspec.Struct):
    """An input tensor of an inference request."""

    name: str
    shape: list[Annotated[int, msgspec.Meta(ge=0)]]
    datatype: str
    data: Annotated[Any, msgspec.Meta(description="the values, flat or nested row-major")] = None
    parameters: dict[str, Any] | None = None


class RequestedOutput(msgspec.Struct):
    """An output the client asks for."""

    name: str
    parameters: dict[str, Any] | None = None


class InferRequestBody(msgspec.Struct):
    """The protocol's inference request object."""

    inputs: Annotated[list[InferInput], msgspec.Meta(min_length=1)]
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[RequestedOutput] | None = None


_DECODER = msgspec.json.Decoder(InferRequestBody)


def parse_infer_request(body: bytes, binary_header: str | None = None) -> InferenceRequest:
    """An :class:`InferenceRequest` from a ``POST …/infer`` body.

    Decoded and validated by msgspec against :class:`InferRequestBody`; JSON that msgspec
    refuses (``NaN`` and ``Infinity`` literals, which Python's ``json`` writes, or a syntax
    error) is read by Python's ``json`` and then validated, so those literals are accepted
    as before and a syntax error is described by ``json``.

    :param body: the JSON request, followed by the inputs' binary data when ``binary_header``
        (the ``Inference-Header-Content-Length`` header) gives the JSON part's length.
    :raises InferenceRequestError: malformed JSON, a body that breaks the protocol's schema
        (the message names the field), binary data that does not add up.
    """
    json_size = _json_size(binary_header, len(body))
    parsed = _decoded(body[:json_size])
    binary = memoryview(body)[json_size:]
    inputs = []
    for item in parsed.inputs:
        data: Any
        size = None if item.parameters is None else item.parameters.get("binary_data_size")
        if size is not None:
            data, binary = _binary_tensor(item.name, item.datatype, size, binary)
        elif item.data is None:
            raise InferenceRequestError(
                f"Input {item.name!r} has no 'data' (and no binary_data_size parameter). "
                "Give its values, flattened or nested in row-major order.",
                input_name=item.name,
            )
        else:
            data = flatten(item.data)
        inputs.append(
            Tensor(item.name, item.datatype, tuple(item.shape), data, item.parameters or {})
        )
    if len(binary):
        raise InferenceRequestError(
            f"The request has {len(binary)} byte(s) of binary data that no input's "
            "binary_data_size claims."
        )
    outputs = None if parsed.outputs is None else tuple(o.name for o in parsed.outputs)
    return InferenceRequest(tuple(inputs), outputs, parsed.id, parsed.parameters or {})


def _decoded(document: bytes) -> InferRequestBody:
    try:
        try:
            return _DECODER.decode(document)
        except msgspec.ValidationError:
            raise
        except msgspec.DecodeError:  # NaN/Infinity literals, or not JSON: json says which
            return msgspec.convert(json.loads(document), InferRequestBody)
    except msgspec.ValidationError as exc:
        raise InferenceRequestError(f"Invalid request body: {exc}.") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InferenceRequestError(
            f"The request body is not valid JSON ({exc}). Send an Open Inference Protocol "
            'inference request: {"inputs": [{"name", "shape", "datatype", "data"}]}.'
        ) from None


def _json_size(header: str | None, body_size: int) -> int:
    if header is None:
        return body_size
    try:
        size = int(header)
    except ValueError:
        size = -1
    if not 0 <= size <= body_size:
        raise InferenceRequestError(
            f"The Inference-Header-Content-Length header must be the JSON part's length, "
            f"an integer in [0, {body_size}]. Got {header!r} instead."
        )
    return size


def _binary_tensor(
    name: str, datatype: str, size: object, binary: memoryview
) -> tuple[Any, memoryview]:
    """The values of input ``name`` from the front of ``binary``, and what follows them."""
    import numpy as np

    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= len(binary):
        raise InferenceRequestError(
            f"Input {name!r} claims binary_data_size {size!r}, but {len(binary)} byte(s) of "
            "binary data remain. Give the byte length of its data.",
            input_name=name,
        )
    chunk, rest = bytes(binary[:size]), binary[size:]
    if datatype == "BYTES":
        return _length_prefixed(name, chunk), rest
    dtype = NUMPY_DTYPES.get(datatype)
    if dtype is None:
        raise InferenceRequestError(
            f"Input {name!r} has datatype {datatype!r}, which is not a protocol datatype.",
            input_name=name,
        )
    width = np.dtype(dtype).itemsize
    if size % width:
        raise InferenceRequestError(
            f"Input {name!r}: {size} byte(s) of binary data is not a whole number of "
            f"{datatype} values ({width} byte(s) each).",
            input_name=name,
        )
    return np.frombuffer(chunk, dtype=dtype), rest


def _length_prefixed(name: str, chunk: bytes) -> list[str]:
    """BYTES elements, each a 4-byte little-endian length then that many UTF-8 bytes."""
    values, offset = [], 0
    while offset < len(chunk):
        length = int.from_bytes(chunk[offset : offset + 4], "little")
        start, offset = offset + 4, offset + 4 + length
        if offset > len(chunk):
            raise InferenceRequestError(
                f"Input {name!r}: its BYTES binary data ends inside an element. Each element "
                "is a 4-byte little-endian length followed by that many bytes.",
                input_name=name,
            )
        try:
            values.append(chunk[start:offset].decode())
        except UnicodeDecodeError:
            raise InferenceRequestError(
                f"Input {name!r}: element {len(values)} of its BYTES data is not UTF-8 text.",
                input_name=name,
            ) from None
    return values


def flatten(data: Any) -> list[Any]:
    """``data`` (nested lists, row-major, or already flat) as one flat list (nesting is read
    from the first value: a row-major tensor is nested all through or not at all)."""
    if not isinstance(data, list):
        return [data]
    if not data or not isinstance(data[0], list):
        return data
    flat: list[Any] = []
    for item in data:
        flat.extend(flatten(item))
    return flat


def infer_response_json(response: InferenceResponse) -> dict[str, Any]:
    """The protocol's inference response object (NaN as ``null``, bytes as text)."""
    document: dict[str, Any] = {
        "model_name": response.model_name,
        "model_version": response.model_version,
        "outputs": [
            {
                "name": tensor.name,
                "datatype": tensor.datatype,
                "shape": list(tensor.shape),
                "data": json_values(tensor.data),
            }
            for tensor in response.outputs
        ],
    }
    if response.id is not None:
        document["id"] = response.id
    if response.parameters:
        document["parameters"] = dict(response.parameters)
    return document


def json_values(data: Any) -> list[Any]:
    """A tensor's values as JSON can hold them: NaN as ``None``, bytes as text."""
    values = data.tolist() if hasattr(data, "tolist") else list(data)
    for i, value in enumerate(values):
        if isinstance(value, float) and value != value:
            values[i] = None  # JSON has no NaN: a row without a score
        elif isinstance(value, bytes):
            values[i] = value.decode()
    return values


def validation_message(errors: list[Any]) -> str:
    """One line from pydantic's errors, naming each field (``inputs[0].shape``)."""
    parts = []
    for error in errors[:3]:
        loc = list(error["loc"])
        loc = loc[1:] if loc[:1] == ["body"] else loc  # FastAPI's prefix for the body
        if error["type"] == "json_invalid":  # FastAPI's: loc is the character
            reason = error.get("ctx", {}).get("error", "")
            parts.append(f"not valid JSON ({reason} at character {loc[0] if loc else 0})")
            continue
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
        where = where.lstrip(".") or "body"
        got = "" if error["type"] == "missing" else f" (got {error.get('input')!r:.80})"
        parts.append(f"{where}: {error['msg']}{got}")
    more = f"; and {len(errors) - 3} more" if len(errors) > 3 else ""
    return f"Invalid request body: {'; '.join(parts)}{more}."
