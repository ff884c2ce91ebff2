"""Malformed ``ModelInferRequest`` messages, built with Triton's generated messages: every one
is ``INVALID_ARGUMENT`` with a message naming the input and what to send."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from tritonclient.grpc import service_pb2


def typed_request(**changes):
    """A valid one-row typed request, with ``changes`` applied to its inputs by name."""
    request = service_pb2.ModelInferRequest(model_name="credit")
    for name, datatype, field, value in (
        ("income", "FP64", "fp64_contents", 50_000.0),
        ("age", "INT64", "int64_contents", 30),
        ("region", "BYTES", "bytes_contents", b"north"),
    ):
        tensor = request.inputs.add(name=name, datatype=datatype, shape=[1])
        getattr(tensor.contents, field).append(value)
        if name in changes:
            changes[name](tensor)
    return request


def raw_request(*contents):
    request = service_pb2.ModelInferRequest(model_name="credit")
    for name, datatype in (("income", "FP64"), ("age", "INT64"), ("region", "BYTES")):
        request.inputs.add(name=name, datatype=datatype, shape=[1])
    request.raw_input_contents.extend(contents)
    return request


ONE_ROW_RAW = (np.float64(5e4).tobytes(), np.int64(30).tobytes(), b"\x05\x00\x00\x00north")


@pytest.mark.parametrize(
    ("request_message", "message"),
    [
        pytest.param(
            raw_request(*ONE_ROW_RAW[:2]),
            "The request has 3 inputs but 2 raw_input_contents entries; give one entry per "
            "input, in the order of the inputs.",
            id="raw-entry-missing",
        ),
        pytest.param(
            raw_request(np.float64(5e4).tobytes()[:7], *ONE_ROW_RAW[1:]),
            "Input 'income' (FP64, shape [1]) needs 8 bytes of raw_input_contents but has 7; "
            "send 8-byte little-endian values, flattened row-major.",
            id="raw-size",
        ),
        pytest.param(
            raw_request(*ONE_ROW_RAW[:2], b"\x09\x00\x00\x00north"),
            "Input 'region' (BYTES) has raw_input_contents cut short at byte 4 of 9; precede "
            "each element by its length as a 4-byte little-endian integer.",
            id="raw-bytes-cut-short",
        ),
        pytest.param(
            raw_request(*ONE_ROW_RAW[:2], b"\x01\x00\x00\x00a\x01\x00\x00\x00b"),
            "Input 'region' has shape [1] (1 values) but 2 values in raw_input_contents; send "
            "exactly one value per element, flattened row-major.",
            id="raw-bytes-count",
        ),
        pytest.param(
            typed_request(age=lambda t: t.contents.int64_contents.append(31)),
            "Input 'age' has shape [1] (1 values) but 2 values in contents.int64_contents; "
            "send exactly one value per element, flattened row-major.",
            id="typed-count",
        ),
        pytest.param(
            typed_request(
                age=lambda t: (
                    t.contents.ClearField("int64_contents"),
                    t.contents.fp64_contents.append(30),
                )
            ),
            "Input 'age' has shape [1] (1 values) but 0 values in contents.int64_contents; "
            "send exactly one value per element, flattened row-major.",
            id="typed-wrong-field",
        ),
        pytest.param(
            typed_request(age=lambda t: t.ClearField("shape") or t.shape.extend([-1])),
            "Input 'age' has shape [-1]; a request's dimensions must be >= 0.",
            id="negative-dimension",
        ),
        pytest.param(
            typed_request(income=lambda t: setattr(t, "datatype", "FLOAT")),
            "Input 'income' has datatype 'FLOAT', which the protocol does not define; use one "
            "of BOOL, UINT8, UINT16, UINT32, UINT64, INT8, INT16, INT32, INT64, FP16, FP32, "
            "FP64, BYTES.",
            id="unknown-datatype",
        ),
        pytest.param(
            typed_request(income=lambda t: setattr(t, "datatype", "FP16")),
            "Input 'income' is FP16, which has no typed contents field; send it in "
            "raw_input_contents.",
            id="fp16-typed",
        ),
        pytest.param(
            typed_request(
                age=lambda t: (
                    setattr(t, "datatype", "INT8"),
                    t.contents.ClearField("int64_contents"),
                    t.contents.int_contents.append(300),
                )
            ),
            "Input 'age' has values outside the range of INT8 in contents.int_contents; send "
            "values that fit the datatype or a wider datatype.",
            id="int8-out-of-range",
        ),
    ],
)
def test_malformed_requests_are_invalid_argument(stub, request_message, message):
    with pytest.raises(grpc.RpcError) as raised:
        stub.ModelInfer(request_message)
    assert (raised.value.code(), raised.value.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        message,
    )


def test_raw_and_typed_contents_mixed_is_invalid_argument(stub):
    request = raw_request(*ONE_ROW_RAW)
    request.inputs[1].contents.int64_contents.append(30)
    with pytest.raises(grpc.RpcError) as raised:
        stub.ModelInfer(request)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert raised.value.details() == (
        "Input 'age' has typed contents while the request uses raw_input_contents; send every "
        "input raw or every input typed."
    )
