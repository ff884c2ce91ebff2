"""Regenerate the gRPC stubs of ``airflow_mlops/serving/proto/`` from its ``.proto``.

Usage: ``python scripts/gen_grpc.py [OUT_DIR]`` (default: the repository root, i.e. in
place). Needs ``grpcio-tools`` (the ``dev`` extra); the generated code requires a protobuf
and grpcio runtime at least as new as the generator's (see the ``serving`` extra).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO = "airflow_mlops/serving/proto/grpc_predict_v2.proto"


def generate(out_dir: Path) -> None:
    """Write ``*_pb2.py``, ``*_pb2.pyi`` and ``*_pb2_grpc.py`` under ``out_dir``.

    :param out_dir: a directory; the modules land in ``out_dir/airflow_mlops/serving/proto``.
    :raises RuntimeError: ``protoc`` failed.
    """
    from grpc_tools import protoc

    (out_dir / Path(PROTO).parent).mkdir(parents=True, exist_ok=True)
    args = [
        "protoc",
        f"-I{ROOT}",
        f"-I{Path(protoc.__file__).parent / '_proto'}",
        f"--python_out={out_dir}",
        f"--pyi_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        str(ROOT / PROTO),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {PROTO}; its message is above.")


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT)
