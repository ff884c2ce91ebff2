"""The committed gRPC stubs are what ``scripts/gen_grpc.py`` makes of the committed .proto."""

from __future__ import annotations

import subprocess
import sys

STUBS = ("grpc_predict_v2_pb2.py", "grpc_predict_v2_pb2.pyi", "grpc_predict_v2_pb2_grpc.py")


def test_committed_stubs_match_the_proto(repo, tmp_path):
    subprocess.run([sys.executable, "scripts/gen_grpc.py", str(tmp_path)], cwd=repo, check=True)
    package = "airflow_mlops/serving/proto"
    for name in STUBS:
        regenerated = (tmp_path / package / name).read_text()
        assert (repo / package / name).read_text() == regenerated, (
            f"{package}/{name} is stale: run `python scripts/gen_grpc.py` and commit the result."
        )
