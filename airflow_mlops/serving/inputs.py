"""Request tensors to Arrow columns, checked against the model's input contract.

Datatypes: a contract column of Arrow type ``T`` is listed in model metadata with the
protocol datatype of ``T`` (:func:`oip_datatype`) and accepts the datatypes batch scoring
would accept for a partition column of type ``T`` (``FeatureContract.check_schema``):
any integer datatype for an integer column, any integer or floating datatype for a
floating column, ``BYTES`` (UTF-8) for a string column and ``BOOL`` for a boolean one.
Values are cast to ``T`` safely: an integer that does not fit, or one a float cannot hold
exactly, is refused rather than changed.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from airflow_mlops.exceptions import ContractError, InferenceRequestError

if TYPE_CHECKING:
    from collections.abc import Sequence

    import pyarrow as pa

    from airflow_mlops.serving.protocol import Tensor

#: Most rows one request may carry; larger requests are refused, not truncated.
MAX_ROWS_PER_REQUEST = 10_000

_INTEGERS = ("INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64")
_FLOATS = ("FP16", "FP32", "FP64")


def oip_datatype(arrow_type: pa.DataType) -> str:
    """The protocol datatype of an Arrow type (``int64`` → ``INT64``, ``string`` → ``BYTES``).

    :raises ContractError: for a type no protocol datatype carries (dates, decimals…).
    """
    import pyarrow.types as pt

    if pt.is_boolean(arrow_type):
        return "BOOL"
    if pt.is_integer(arrow_type):
        unsigned = "U" if pt.is_unsigned_integer(arrow_type) else ""
        return f"{unsigned}INT{arrow_type.bit_width}"
    if pt.is_floating(arrow_type):
        return f"FP{arrow_type.bit_width}"
    if pt.is_string(arrow_type) or pt.is_large_string(arrow_type):
        return "BYTES"
    raise ContractError(
        f"Arrow type {arrow_type} has no Open Inference Protocol datatype: a model with such "
        "an input cannot be served. Convert the column to a number or string in its table."
    )


def accepted_datatypes(arrow_type: pa.DataType) -> tuple[str, ...]:
    """The request datatypes a column of ``arrow_type`` accepts (see the module docstring)."""
    import pyarrow.types as pt

    if pt.is_integer(arrow_type):
        return _INTEGERS
    if pt.is_floating(arrow_type):
        return (*_FLOATS, *_INTEGERS)
    return (oip_datatype(arrow_type),)


def tensor_rows(tensor: Tensor) -> int:
    """The rows of an input tensor of shape ``[n]`` or ``[n, 1]`` whose data holds ``n`` values.

    :raises InferenceRequestError: for another shape, a data length that is not the shape's
        product, zero rows or more than :data:`MAX_ROWS_PER_REQUEST`.
    """
    shape = tuple(tensor.shape)
    name = tensor.name
    if len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1) or min(shape) < 0:
        raise InferenceRequestError(
            f"Input {name!r} has shape {list(shape)}; inputs are one value per row: send "
            "shape [n] or [n, 1].",
            input_name=name,
        )
    rows, values = shape[0], len(flat_values(tensor.data))
    if values != math.prod(shape):
        raise InferenceRequestError(
            f"Input {name!r} has shape {list(shape)} but {values} value(s) in its "
            f"data; send {math.prod(shape)} values (row-major) or fix the shape.",
            input_name=name,
        )
    if rows == 0:
        raise InferenceRequestError(
            f"Input {name!r} has no rows (shape {list(shape)}); send at least one row.",
            input_name=name,
        )
    if rows > MAX_ROWS_PER_REQUEST:
        raise InferenceRequestError(
            f"Input {name!r} has {rows} rows, more than the {MAX_ROWS_PER_REQUEST} one request "
            "may carry; split it into several requests.",
            input_name=name,
        )
    return rows


def tensor_to_arrow(tensor: Tensor, field: pa.Field) -> pa.Array:
    """An input tensor's values as an Arrow array of the contract column ``field``.

    :raises InferenceRequestError: for a datatype the column does not accept, values that
        are not of the datatype or do not fit the column, a null or NaN in a non-nullable
        column, or an infinite value.
    """
    import pyarrow as pa

    name, datatype = tensor.name, tensor.datatype
    accepted = accepted_datatypes(field.type)
    if datatype not in accepted:
        raise InferenceRequestError(
            f"Input {name!r} has datatype {datatype!r}; the model's contract declares it "
            f"{field.type}: send it as {accepted[0]}"
            + (f" (or {', '.join(accepted[1:])})." if len(accepted) > 1 else "."),
            input_name=name,
        )
    try:
        if datatype == "BYTES":
            array = pa.array([_text(value) for value in flat_values(tensor.data)], pa.string())
        else:
            array = pa.array(flat_values(tensor.data), _arrow_type(datatype))
        if array.type != field.type:
            array = array.cast(field.type, safe=True)
    except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
        raise InferenceRequestError(
            f"Input {name!r} holds values that are not {datatype} or do not fit its contract "
            f"type {field.type} ({exc}); send {datatype} values only.",
            input_name=name,
        ) from exc
    _check_values(array, field, name)
    return array


def _check_values(array: pa.Array, field: pa.Field, name: str) -> None:
    """Nulls (and NaN, in a floating column) where the contract forbids them, and ±inf.

    Floating values are checked with numpy on the array's values (nulls read as NaN): a
    request's few rows cost a few microseconds, not one compute kernel call per check."""
    import numpy as np
    import pyarrow.types as pt

    if not pt.is_floating(field.type):
        if array.null_count and not field.nullable:
            row = array.to_pylist().index(None)
            raise InferenceRequestError(
                f"Input {name!r} has a null value at row {row}; the model's contract declares "
                "it non-nullable: send a value for every row.",
                input_name=name,
            )
        return
    values = array.to_numpy(zero_copy_only=False)
    if not field.nullable:
        absent = np.isnan(values)
        if absent.any():
            raise InferenceRequestError(
                f"Input {name!r} has a null or NaN value at row {int(absent.argmax())}; the "
                "model's contract declares it non-nullable: send a value for every row.",
                input_name=name,
            )
    infinite = np.isinf(values)
    if infinite.any():
        raise InferenceRequestError(
            f"Input {name!r} has an infinite value at row {int(infinite.argmax())}; models are "
            "not defined on ±inf (batch scoring refuses them too): send a finite number"
            + (" or null." if field.nullable else "."),
            input_name=name,
        )


def flat_values(data: Sequence[Any]) -> Sequence[Any]:
    """Row-major values: numpy arrays and nested ``[[v], [v]]`` lists flattened."""
    if hasattr(data, "reshape"):
        return data.reshape(-1)
    if isinstance(data, list | tuple) and data and isinstance(data[0], list | tuple):
        return [value for row in data for value in row]
    return data


def _text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8")
    raise TypeError(f"{value!r} is not a string")


def key_field(tensor: Tensor) -> pa.Field:
    """The field an entity-key tensor is read as when no table fixes the key's type: its
    datatype's Arrow type (``BYTES`` as strings)."""
    import pyarrow as pa

    datatype = tensor.datatype.upper()
    return pa.field(tensor.name, pa.string() if datatype == "BYTES" else _arrow_type(datatype))


def _arrow_type(datatype: str) -> pa.DataType:
    import pyarrow as pa

    if datatype == "BOOL":
        return pa.bool_()
    if datatype.startswith("FP"):
        return {"FP16": pa.float16(), "FP32": pa.float32(), "FP64": pa.float64()}[datatype]
    return pa.type_for_alias(datatype.lower())
