"""The serving benchmark's gRPC load generator, run in its own process: ``--connections`` N
coroutines of one ``grpc.aio`` client, each sending one single-row ``ModelInfer`` after the
other (closed loop) over one channel, for ``--seconds``; one JSON line on stdout.

The same generator drives every server: ``ours-raw`` (the eleven inputs, typed contents),
``ours-key`` (only ``customer_id``) and ``mlserver`` (the eleven inputs, typed contents,
``content_type: pd`` so MLServer builds a DataFrame, ``region`` as ``str``, the
``predict_proba`` output requested). A null feature travels as NaN (typed contents have no
null). ``--check N`` sends the first N rows one by one and prints their probabilities.

    python benchmarks/serving_grpc_load.py 127.0.0.1:8081 ours-key rows.json -c 64 -s 10
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from collections import Counter
from typing import Any

import grpc
import numpy as np

from airflow_mlops.demo.credit_model import INPUT_CONTRACT, MODEL_NAME
from airflow_mlops.serving.inputs import oip_datatype
from airflow_mlops.serving.proto import grpc_predict_v2_pb2 as pb
from airflow_mlops.serving.proto import grpc_predict_v2_pb2_grpc as pb_grpc

FLAVORS = ("ours-raw", "ours-key", "mlserver")
_CONTENTS = {"FP64": "fp64_contents", "INT64": "int64_contents", "BYTES": "bytes_contents"}


def build_request(row: dict[str, Any], flavor: str) -> pb.ModelInferRequest:
    """One row as a ``ModelInferRequest`` of ``flavor``."""
    request = pb.ModelInferRequest(model_name=MODEL_NAME)
    if flavor == "ours-key":
        key = request.inputs.add(name="customer_id", datatype="INT64", shape=[1])
        key.contents.int64_contents.append(row["customer_id"])
        return request
    for field in INPUT_CONTRACT.to_arrow_schema():
        datatype = oip_datatype(field.type)
        tensor = request.inputs.add(name=field.name, datatype=datatype, shape=[1])
        value = row[field.name]
        if datatype == "BYTES":
            tensor.contents.bytes_contents.append(value.encode())
            if flavor == "mlserver":
                tensor.parameters["content_type"].string_param = "str"
        else:
            contents = getattr(tensor.contents, _CONTENTS[datatype])
            contents.append(math.nan if value is None else value)
    if flavor == "mlserver":
        request.parameters["content_type"].string_param = "pd"
        request.outputs.add(name="predict_proba")
    return request


def probability(response: pb.ModelInferResponse) -> float:
    """P(default) of a one-row response: ours' ``default_probability`` or MLServer's
    ``predict_proba`` (its second column), typed or raw."""
    for position, output in enumerate(response.outputs):
        if output.name not in ("default_probability", "predict_proba"):
            continue
        if response.raw_output_contents:
            values = np.frombuffer(response.raw_output_contents[position], dtype="<f8")
        else:
            values = np.asarray(output.contents.fp64_contents)
        return float(values[-1])
    raise ValueError(f"no probability in the response: {response}")


async def _load(
    stub: Any, requests: list[Any], connections: int, seconds: float, timeout: float
) -> dict[str, Any]:
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    start = time.perf_counter()
    end = start + seconds

    async def client(first: int) -> None:
        position = first
        while (sent := time.perf_counter()) < end:
            try:
                await stub.ModelInfer(requests[position % len(requests)], timeout=timeout)
                latencies.append(time.perf_counter() - sent)
            except grpc.aio.AioRpcError as exc:
                errors[exc.code().name] += 1
            position += connections

    cpu = time.process_time()
    await asyncio.gather(*(client(i) for i in range(connections)))
    elapsed = time.perf_counter() - start
    measured = np.asarray(latencies) * 1e6 if latencies else np.zeros(1)
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "errors": dict(errors),
        "timeouts": errors.get("DEADLINE_EXCEEDED", 0),
        "p50_us": float(np.percentile(measured, 50)),
        "p90_us": float(np.percentile(measured, 90)),
        "p99_us": float(np.percentile(measured, 99)),
        "max_us": float(measured.max()),
        "client_cpu_s": time.process_time() - cpu,
    }


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    with open(args.rows) as rows_file:
        rows = json.load(rows_file)
    async with grpc.aio.insecure_channel(args.target) as channel:
        await asyncio.wait_for(channel.channel_ready(), 30)
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        if args.check:
            answers = []
            for row in rows[: args.check]:
                response = await stub.ModelInfer(build_request(row, args.flavor), timeout=30)
                answers.append(probability(response))
            return {"probabilities": answers}
        requests = [build_request(row, args.flavor) for row in rows]
        return await _load(stub, requests, args.connections, args.seconds, args.timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", help="host:port")
    parser.add_argument("flavor", choices=FLAVORS)
    parser.add_argument("rows", help="the request rows (JSON list of objects)")
    parser.add_argument("-c", "--connections", type=int, default=1, help="concurrent calls")
    parser.add_argument("-s", "--seconds", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=5.0, help="each call's deadline")
    parser.add_argument("--check", type=int, default=0, help="only answer the first N rows")
    print(json.dumps(asyncio.run(main_async(parser.parse_args(argv)))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
