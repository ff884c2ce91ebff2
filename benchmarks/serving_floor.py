"""The serving benchmark's floors: what answering costs on this machine with no model and no
checks, over the same protocols, servers and load as ours.

One process serves the Open Inference Protocol's infer call over REST (a bare ASGI app under
uvicorn, as ours runs: the body read and decoded by msgspec, a constant response) and gRPC
(grpcio's thread-pool server, as ours runs: the request decoded by protobuf, a constant
response). With ``--batched``, every request first waits for its micro-batch in the batchers
ours uses (``serving.batching``: the event-loop batcher on REST, the thread batcher with 2 ms
of wait on gRPC), scored by a function that returns a constant: the cost of batching alone.

    .venv/bin/python benchmarks/serving_floor.py --http-port 8095 --grpc-port 8096 --batched
"""

from __future__ import annotations

import argparse
import sys
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
import msgspec
import uvicorn

from airflow_mlops.serving.batching import Batcher, LoopBatcher
from airflow_mlops.serving.proto import grpc_predict_v2_pb2 as pb
from airflow_mlops.serving.proto import grpc_predict_v2_pb2_grpc as pb_grpc

PROBABILITY = 0.25
RESPONSE = msgspec.json.encode(
    {
        "model_name": "credit_risk",
        "model_version": "1",
        "outputs": [
            {"name": "default_probability", "datatype": "FP64", "shape": [1], "data": [0.25]}
        ],
    }
)
HEADERS = [(b"content-type", b"application/json")]


@dataclass(frozen=True)
class Item:
    """One single-row request, as a batcher queues it."""

    rows: int = 1
    batch_key: object = None


def constant(items: Any) -> list[float]:
    return [PROBABILITY] * len(items)


class FloorApp:
    """The REST floor: any request's body read and decoded, then the constant answer."""

    def __init__(self, batched: bool) -> None:
        self.batcher = LoopBatcher(constant, 256) if batched else None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if body:  # readiness probes send none
            msgspec.json.decode(body)
        if self.batcher is not None:
            await self.batcher.score(Item())
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": RESPONSE})


class FloorServicer(pb_grpc.GRPCInferenceServiceServicer):
    """The gRPC floor: ``ModelInfer`` answers the constant."""

    def __init__(self, batched: bool) -> None:
        self.batcher = Batcher(constant, 0.002, 256) if batched else None

    def ModelInfer(self, request: pb.ModelInferRequest, context: Any) -> pb.ModelInferResponse:
        value = PROBABILITY if self.batcher is None else self.batcher.score(Item())
        response = pb.ModelInferResponse(model_name="credit_risk", model_version="1")
        output = response.outputs.add(name="default_probability", datatype="FP64", shape=[1])
        output.contents.fp64_contents.append(value)
        return response


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int, required=True)
    parser.add_argument("--batched", action="store_true", help="through ours' micro-batchers")
    args = parser.parse_args(argv)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=64))
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(FloorServicer(args.batched), server)
    server.add_insecure_port(f"127.0.0.1:{args.grpc_port}")
    server.start()
    config = uvicorn.Config(
        FloorApp(args.batched), host="127.0.0.1", port=args.http_port, access_log=False
    )
    uvicorn.Server(config).run()
    server.stop(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
