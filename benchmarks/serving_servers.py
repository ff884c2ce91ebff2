"""The servers the serving benchmark compares, each a real process on 127.0.0.1:

- ``ours``: ``airflow-mlops serve`` with its defaults (micro-batching 2 ms, access log on);
- ``mlserver``: MLServer 1.7.1 + mlserver-sklearn 1.7.1 on the registry's artifact, with its
  default settings, and ``mlserver-batch`` with adaptive batching (32 rows, 2 ms); both with
  ``parallel_workers: 0`` (its inference workers die at start under the current uvloop).
  It runs from its own venv (``var/bench/mlserver-venv``), built here with the same
  scikit-learn, numpy, pandas, scipy and joblib as this interpreter so the artifact loads;
- ``toy``: the seed's FastAPI microservice (``benchmarks/seed_toy.py``), REST only;
- ``floor`` / ``floor-batched``: a constant answer over both protocols, without and with
  ours' micro-batchers (``benchmarks/serving_floor.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parent.parent
MLSERVER_VENV = ROOT / "var" / "bench" / "mlserver-venv"
MLSERVER = ("mlserver==1.7.1", "mlserver-sklearn==1.7.1")
#: pinned to this interpreter's versions in MLServer's venv: the artifact must load there
SHARED_PINS = ("scikit-learn", "numpy", "pandas", "scipy", "joblib")
ADAPTIVE_BATCHING = {"max_batch_size": 32, "max_batch_time": 0.002}


@dataclass(frozen=True)
class Server:
    """A started server: its name, process, ports (``grpc_port`` 0: REST only) and log."""

    name: str
    process: subprocess.Popen[bytes]
    http_port: int
    grpc_port: int
    log: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def mlserver_venv() -> Path:
    """MLServer's venv (built on first use, rebuilt when the pins change); its ``bin``."""
    pins = [*MLSERVER, *(f"{name}=={metadata.version(name)}" for name in SHARED_PINS)]
    marker = MLSERVER_VENV / "bench-pins.json"
    if marker.exists() and json.loads(marker.read_text()) == pins:
        return MLSERVER_VENV / "bin"
    shutil.rmtree(MLSERVER_VENV, ignore_errors=True)
    print(f"building {MLSERVER_VENV} ({', '.join(pins)})", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(MLSERVER_VENV)], check=True)
    pip = [str(MLSERVER_VENV / "bin" / "python"), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, *pins], check=True)
    marker.write_text(json.dumps(pins))
    return MLSERVER_VENV / "bin"


def mlserver_version(bin_dir: Path) -> str:
    done = subprocess.run(
        [str(bin_dir / "python"), "-c", "import mlserver; print(mlserver.__version__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def _mlserver_repository(workdir: Path, world: dict[str, Any], adaptive: bool) -> Path:
    """A model repository: ``settings.json`` and the model's ``model-settings.json``."""
    http_port, grpc_port, metrics_port = free_port(), free_port(), free_port()
    repository = workdir / ("mlserver-batch" if adaptive else "mlserver")
    shutil.rmtree(repository, ignore_errors=True)
    model_dir = repository / world["model"]
    model_dir.mkdir(parents=True)
    settings = {
        "host": "127.0.0.1",
        "http_port": http_port,
        "grpc_port": grpc_port,
        "metrics_port": metrics_port,
        "parallel_workers": 0,
    }
    (repository / "settings.json").write_text(json.dumps(settings, indent=2))
    model_settings: dict[str, Any] = {
        "name": world["model"],
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": world["artifact"], "version": world["version"]},
    }
    if adaptive:
        model_settings.update(ADAPTIVE_BATCHING)
    (model_dir / "model-settings.json").write_text(json.dumps(model_settings, indent=2))
    return repository


def _spawn(name: str, command: list[str], workdir: Path, env: dict[str, str]) -> tuple[Any, Path]:
    log = workdir / "logs" / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=workdir
        )
    return process, log


def start_ours(workdir: Path, world: dict[str, Any], *, workers: int = 1) -> Server:
    """``airflow-mlops serve`` with its defaults, in ``workers`` processes (named ``ours``,
    or ``ours-<n>w`` with more than one)."""
    http_port, grpc_port = free_port(), free_port()
    command = [
        *(sys.executable, "-m", "airflow_mlops", "--root", world["store"], "serve"),
        *(world["model"], "--registry", world["registry"], "--feature-table", "customer_features"),
        *("--http-port", str(http_port), "--grpc-port", str(grpc_port)),
        *("--workers", str(workers)),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    name = "ours" if workers == 1 else f"ours-{workers}w"
    process, log = _spawn(name, command, workdir, env)
    return Server(name, process, http_port, grpc_port, log)


def start_mlserver(
    workdir: Path, world: dict[str, Any], bin_dir: Path, adaptive: bool, omp_threads: int
) -> Server:
    """MLServer on the artifact; ``omp_threads`` > 0 sets ``OMP_NUM_THREADS`` for it (0: its
    default, one OpenMP thread per core in each scikit-learn tree prediction)."""
    repository = _mlserver_repository(workdir, world, adaptive)
    settings = json.loads((repository / "settings.json").read_text())
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    if omp_threads:
        env["OMP_NUM_THREADS"] = str(omp_threads)
    name = repository.name
    process, log = _spawn(name, [str(bin_dir / "mlserver"), "start", str(repository)], workdir, env)
    return Server(name, process, settings["http_port"], settings["grpc_port"], log)


def start_toy(workdir: Path, world: dict[str, Any]) -> Server:
    port = free_port()
    script = str(ROOT / "benchmarks" / "seed_toy.py")
    command = [sys.executable, script, world["artifact"], "--port", str(port)]
    process, log = _spawn("toy", command, workdir, dict(os.environ))
    return Server("toy", process, port, 0, log)


def start_floor(workdir: Path, *, batched: bool) -> Server:
    """``serving_floor.py``: the constant answer over both protocols (named ``floor``, or
    ``floor-batched`` through ours' micro-batchers)."""
    http_port, grpc_port = free_port(), free_port()
    script = str(ROOT / "benchmarks" / "serving_floor.py")
    command = [sys.executable, script, "--http-port", str(http_port)]
    command += ["--grpc-port", str(grpc_port), *(["--batched"] if batched else [])]
    name = "floor-batched" if batched else "floor"
    process, log = _spawn(name, command, workdir, {**os.environ, "PYTHONPATH": str(ROOT)})
    return Server(name, process, http_port, grpc_port, log)


def wait_ready(server: Server, timeout: float = 120) -> None:
    """Until the server answers its readiness route (the toy: its OpenAPI document).

    :raises RuntimeError: it exited, or did not answer in time (its log attached).
    """
    path = "/openapi.json" if server.name == "toy" else "/v2/health/ready"
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError):
            url = f"http://127.0.0.1:{server.http_port}{path}"
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        if server.process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{server.name} did not start:\n{server.log.read_text()[-4000:]}")
        time.sleep(0.2)


def stop(server: Server) -> None:
    """SIGTERM by PID, SIGKILL after 15 s."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


@contextlib.contextmanager
def all_servers(
    workdir: Path, world: dict[str, Any], bin_dir: Path, mlserver_omp_threads: int
) -> Iterator[list[Server]]:
    """Every server started and ready (they idle while another is measured), then stopped."""
    servers: list[Server] = []
    try:
        servers.append(start_ours(workdir, world))
        for adaptive in (False, True):
            servers.append(start_mlserver(workdir, world, bin_dir, adaptive, mlserver_omp_threads))
        servers.append(start_toy(workdir, world))
        servers += [start_floor(workdir, batched=batched) for batched in (False, True)]
        for server in servers:
            wait_ready(server)
        yield servers
    finally:
        for server in servers:
            stop(server)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` and its reaped children so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")
