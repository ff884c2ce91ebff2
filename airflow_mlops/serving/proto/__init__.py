"""The Open Inference Protocol's gRPC messages and service stubs, generated from
``grpc_predict_v2.proto`` by ``scripts/gen_grpc.py`` (do not edit the ``*_pb2*`` modules).

Importing them registers the ``inference`` package in protobuf's default descriptor pool,
so one process cannot also import ``tritonclient.grpc`` (whose generated modules register
the same names): run clients in another process than the server.
"""
