"""The serving benchmark's requests and load runs: REST through ``wrk`` (Debian's, with
``benchmarks/wrk_post.lua``), gRPC through ``benchmarks/serving_grpc_load.py``, each a
separate process; and the check that every server answers the expected probabilities.

A *target* is a server and a request flavor: ``ours-raw`` (the eleven inputs of the
contract), ``ours-key`` (only ``customer_id``), ``mlserver`` (the eleven inputs as a
``pd``-typed request asking for ``predict_proba``) and ``toy`` (the seed's JSON object).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

from airflow_mlops.demo.credit_model import INPUT_CONTRACT, MODEL_NAME
from airflow_mlops.serving.inputs import oip_datatype

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LUA = HERE / "wrk_post.lua"
GRPC_LOAD = HERE / "serving_grpc_load.py"
INFER_PATH = f"/v2/models/{MODEL_NAME}/infer"
#: a request's deadline (wrk's --timeout, the gRPC call's timeout), seconds
TIMEOUT = 5
#: rows each server must answer with scikit-learn's probability before any load
CHECK_ROWS = 20
CHECK_TOLERANCE = 1e-9


def need_wrk() -> str:
    """wrk's path.

    :raises SystemExit: wrk is not installed (how to install it).
    """
    path = shutil.which("wrk")
    if path is None:
        raise SystemExit(
            "The serving benchmark drives REST with wrk: install it (Debian: "
            "apt-get install -y wrk) and run it again."
        )
    return path


def rest_body(row: dict[str, Any], flavor: str) -> dict[str, Any]:
    """One row as the JSON body of ``flavor``."""
    features = {name: row[name] for name in INPUT_CONTRACT.names}
    if flavor == "toy":
        return features
    if flavor == "ours-key":
        key = {"name": "customer_id", "shape": [1], "datatype": "INT64"}
        return {"inputs": [{**key, "data": [row["customer_id"]]}]}
    inputs = []
    for field in INPUT_CONTRACT.to_arrow_schema():
        datatype = oip_datatype(field.type)
        tensor: dict[str, Any] = {"name": field.name, "shape": [1], "datatype": datatype}
        if flavor == "mlserver" and datatype == "BYTES":
            tensor["parameters"] = {"content_type": "str"}
        inputs.append({**tensor, "data": [features[field.name]]})
    if flavor == "mlserver":
        outputs = [{"name": "predict_proba"}]
        return {"parameters": {"content_type": "pd"}, "inputs": inputs, "outputs": outputs}
    return {"inputs": inputs}


def rest_path(flavor: str) -> str:
    return "/predict" if flavor == "toy" else INFER_PATH


def write_bodies(workdir: Path, rows: list[dict[str, Any]], flavor: str) -> Path:
    """The bodies of ``flavor``, one JSON document a line, for wrk."""
    path = workdir / f"bodies-{flavor}.jsonl"
    path.write_text("".join(json.dumps(rest_body(row, flavor)) + "\n" for row in rows))
    return path


def rest_probability(answer: dict[str, Any]) -> float:
    """P(default) of a one-row REST answer of any of the servers."""
    if "default_probability" in answer:  # the toy
        return float(answer["default_probability"])
    for output in answer["outputs"]:
        if output["name"] in ("default_probability", "predict_proba"):
            return float(output["data"][-1])
    raise ValueError(f"no probability in {answer}")


def wrk_version(wrk: str) -> str:
    """wrk's version, as ``wrk -v`` prints it (``debian/4.1.0-3+b2``)."""
    done = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    return (done.stdout or done.stderr).split()[1]


def check_answers(
    server: Any, flavor: str, rows: list[dict[str, Any]], rows_path: str
) -> dict[str, float]:
    """Send the first :data:`CHECK_ROWS` rows one at a time over REST (and gRPC when
    ``grpc_port``) and compare each probability with scikit-learn's.

    :returns: the largest |difference| per protocol.
    :raises RuntimeError: a difference over :data:`CHECK_TOLERANCE`.
    """
    expected = [row["expected_probability"] for row in rows[:CHECK_ROWS]]
    answers: dict[str, list[float]] = {"rest": []}
    for row in rows[:CHECK_ROWS]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{server.http_port}{rest_path(flavor)}",
            data=json.dumps(rest_body(row, flavor)).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            answers["rest"].append(rest_probability(json.load(response)))
    if server.grpc_port:
        check = ["--check", str(CHECK_ROWS)]
        answers["grpc"] = _grpc(server.grpc_port, flavor, Path(rows_path), check)["probabilities"]
    worst = {
        protocol: max(abs(a - e) for a, e in zip(got, expected, strict=True))
        for protocol, got in answers.items()
    }
    if max(worst.values()) > CHECK_TOLERANCE:
        raise RuntimeError(f"{flavor} answers differ from scikit-learn's: {worst}")
    return worst


def run_wrk(port: int, flavor: str, bodies: Path, connections: int, seconds: float) -> dict:
    """One wrk run (one thread, ``connections`` connections, closed loop)."""
    env = {**os.environ, "BENCH_BODIES": str(bodies), "BENCH_PATH": rest_path(flavor)}
    command = [
        need_wrk(),
        *("-t1", f"-c{connections}", f"-d{seconds:g}s", f"--timeout={TIMEOUT}s"),
        *("-s", str(LUA), f"http://127.0.0.1:{port}"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    errors = {key: result[key] for key in ("connect", "read", "write", "status") if result[key]}
    return {
        "requests": result["requests"],
        "seconds": result["duration_us"] / 1e6,
        "errors": errors,
        "timeouts": result["timeout"],
        **{key: float(result[key]) for key in ("p50_us", "p90_us", "p99_us", "max_us")},
    }


def run_grpc(port: int, flavor: str, rows: Path, connections: int, seconds: float) -> dict:
    """One run of the gRPC load generator."""
    args = ["-c", str(connections), "-s", f"{seconds:g}", "--timeout", str(TIMEOUT)]
    result = _grpc(port, flavor, rows, args)
    result["errors"].pop("DEADLINE_EXCEEDED", None)  # counted as timeouts, as wrk does
    return result


def _grpc(port: int, flavor: str, rows: Path, args: list[str]) -> dict[str, Any]:
    command = [sys.executable, str(GRPC_LOAD), f"127.0.0.1:{port}", flavor, str(rows), *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"gRPC load generator failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result
