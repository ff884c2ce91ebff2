"""A real multi-process Airflow on this machine: the compose stack's topology, as processes.

Metadata DB on the running PostgreSQL (its own database), CeleryExecutor with the Redis
broker, api-server on a free loopback port, scheduler, dag-processor, triggerer and two
Celery workers, this project's DAGs and connections; the demo warehouse seeded into
PostgreSQL; one ``airflow-mlops serve`` of the ``credit_risk`` champion (REST and gRPC
on free loopback ports, a bearer token), which waits until training has promoted one; and
SeaweedFS's S3 gateway (:mod:`airflow_mlops.demo.object_store`; nothing uses it yet).
:func:`start` leaves it running; :func:`stop` ends every process by PID. Used by
``make airflow`` (scripts/airflow_stack.py) and the deployment tests.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_mlops.demo.environment import REPO, connection_json
from airflow_mlops.demo.object_store import SeaweedS3

if TYPE_CHECKING:
    from collections.abc import Callable

DEFAULT_WORKDIR = REPO / "var" / "stack"
PG = "postgresql://postgres@127.0.0.1:5432"
METADATA_DB = "airflow_mlops_stack"
WAREHOUSE_DB = "airflow_mlops_warehouse"
#: the warehouse connection's password: the local server's trust auth ignores it, and the
#: deployment tests check that no log, XCom, manifest or report of the stack holds it
WAREHOUSE_PASSWORD = "stack-warehouse-pw-51c9e0"
#: processes this interpreter started, reaped by :func:`stop`
_RUNNING: dict[int, subprocess.Popen[bytes]] = {}
#: the Airflow components, as in docker-compose.airflow.yml (tests check both agree)
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer", "worker-1", "worker-2")
#: beside them, one ``airflow-mlops serve`` of the champion (compose: the ``serving`` service)
SERVED_TABLE = "customer_features"
#: and one S3 server (compose: the ``seaweedfs`` service), its data under ``workdir/seaweedfs``
OBJECT_STORE = "seaweedfs"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker_hostname() -> str:
    """The host name a worker reports for its task instances (``[core] hostname_callable``).

    Both workers run on this one machine; tagging the name with the worker
    (``w1@<fqdn>``, as its Celery hostname) lets the API show which worker ran each task,
    as separate machines would.
    """
    return f"{os.environ['AIRFLOW_MLOPS_WORKER']}@{socket.getfqdn()}"


def stack_env(workdir: Path, port: int, secret: str) -> dict[str, str]:
    """Every setting and connection the stack's processes share."""
    return {
        "AIRFLOW_HOME": str(workdir / "home"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://postgres@127.0.0.1:5432/{METADATA_DB}",
        "AIRFLOW__CELERY__BROKER_URL": "redis://127.0.0.1:6379/7",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://postgres@127.0.0.1:5432/{METADATA_DB}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API_AUTH__JWT_SECRET": secret,
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "True",
        "AIRFLOW_CONN_WAREHOUSE": connection_json(
            "postgres",
            host="127.0.0.1",
            port=5432,
            login="postgres",
            password=WAREHOUSE_PASSWORD,
            schema=WAREHOUSE_DB,
        ),
        "AIRFLOW_CONN_FEATURE_STORE_DEFAULT": connection_json(
            "feature_store", extra={"root": str(workdir / "feature_store"), "keep_versions": 3}
        ),
        "AIRFLOW_CONN_MODEL_REGISTRY_DEFAULT": connection_json(
            "model_registry", extra={"root": str(workdir / "model_registry")}
        ),
    }


def _recreate_database(name: str) -> None:
    """A new, empty database ``name`` (the stack's own: nothing else lives there)."""
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as con:
        con.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        con.execute(f'CREATE DATABASE "{name}"')


def _flush_broker(url: str) -> None:
    """Drop messages a previous, killed stack may have left in the broker's database."""
    import redis

    redis.Redis.from_url(url).flushdb()


def _spawn(
    workdir: Path, name: str, args: list[str], env: dict[str, str], program: str = "airflow"
) -> int:
    executable = (
        sys.executable if program == "python" else str(Path(sys.executable).with_name(program))
    )
    with open(workdir / f"{name}.log", "ab") as log:  # the child keeps its own descriptor
        proc = subprocess.Popen(
            [executable, *args],
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _RUNNING[proc.pid] = proc
    return proc.pid


def _wait(workdir: Path, what: str, check: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1)
    raise RuntimeError(f"{what} did not come up within {timeout:.0f} s; see {workdir}/*.log")


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=2):
            return True
    except OSError:
        return False


def _reset_state(workdir: Path, env: dict[str, str], customers: int) -> None:
    """Fresh metadata and warehouse databases, an empty broker, store and registry; the
    warehouse seeded with ``customers`` and the metadata DB migrated."""
    from airflow_mlops.demo.warehouse import WarehouseSpec, write_postgres

    _recreate_database(METADATA_DB)
    _recreate_database(WAREHOUSE_DB)
    _flush_broker(env["AIRFLOW__CELERY__BROKER_URL"])
    for store in ("feature_store", "model_registry"):
        shutil.rmtree(workdir / store, ignore_errors=True)
    write_postgres(f"{PG}/{WAREHOUSE_DB}", WarehouseSpec(customers=customers))
    subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), "db", "migrate"],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )


def start(workdir: Path = DEFAULT_WORKDIR, *, customers: int = 5_000) -> dict[str, Any]:
    """Start the stack; its state (PIDs, port, env) is written to ``workdir/stack.json``."""
    workdir.mkdir(parents=True, exist_ok=True)
    port, secret = free_port(), secrets.token_urlsafe(64)
    env = stack_env(workdir, port, secret)
    _reset_state(workdir, env, customers)
    object_store = start_object_store(workdir)
    pids = {
        OBJECT_STORE: object_store.pop("pid"),
        "api-server": _spawn(workdir, "api-server", ["api-server", "--port", str(port)], env),
    }
    _wait(workdir, "api-server", lambda: _healthy(port))
    for name, args in (
        ("scheduler", ["scheduler"]),
        ("dag-processor", ["dag-processor"]),
        ("triggerer", ["triggerer"]),
    ):
        pids[name] = _spawn(workdir, name, args, env)
    for n in (1, 2):
        worker_env = {
            **env,
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW_MLOPS_WORKER": f"w{n}",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{__name__}.worker_hostname",
        }
        pids[f"worker-{n}"] = _spawn(
            workdir,
            f"worker-{n}",
            ["celery", "worker", "--celery-hostname", f"w{n}@%h", "--concurrency", "2"],
            worker_env,
        )
    _wait(
        workdir,
        "celery workers",
        lambda: all(b"ready." in (workdir / f"worker-{n}.log").read_bytes() for n in (1, 2)),
    )
    serving = _start_serving(workdir, env)
    pids["serving"] = serving.pop("pid")
    passwords = Path(env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"
    state = {
        "port": port,
        "pids": pids,
        "env": env,
        "passwords": str(passwords),
        "serving": serving,
        OBJECT_STORE: object_store,
    }
    (workdir / "stack.json").write_text(json.dumps(state, indent=2))
    return state


def serve_command(workdir: Path, http_port: int, grpc_port: int, token_file: Path) -> list[str]:
    """``airflow-mlops serve`` of the demo champion on the stack's store and registry,
    through :mod:`airflow_mlops.demo.serve_when_ready` (it waits for the champion)."""
    from airflow_mlops.demo.credit_model import MODEL_NAME

    return [
        *("-m", "airflow_mlops.demo.serve_when_ready", "--poll", "5", "--"),
        *("--root", str(workdir / "feature_store"), "serve", MODEL_NAME),
        *("--registry", str(workdir / "model_registry"), "--feature-table", SERVED_TABLE),
        *("--shadow-alias", "challenger", "--shadow-fraction", "0.5"),
        *("--http-port", str(http_port), "--grpc-port", str(grpc_port)),
        *("--token-file", str(token_file)),
    ]


def _start_serving(workdir: Path, env: dict[str, str]) -> dict[str, Any]:
    """The serving process (127.0.0.1, free ports, a fresh token in a 0600 file): it waits
    for a champion, then answers; its ports, token file and PID."""
    http_port, grpc_port = free_port(), free_port()
    token_file = workdir / "serve-token"
    token_file.touch(mode=0o600)
    token_file.chmod(0o600)
    token_file.write_text(secrets.token_urlsafe(32) + "\n")
    command = serve_command(workdir, http_port, grpc_port, token_file)
    pid = _spawn(workdir, "serving", command, env, program="python")
    return {
        "pid": pid,
        "http_port": http_port,
        "grpc_port": grpc_port,
        "token_file": str(token_file),
    }


def start_object_store(workdir: Path) -> dict[str, Any]:
    """SeaweedFS's S3 gateway under ``workdir/seaweedfs`` (emptied first), on free loopback
    ports with a fresh secret key: its PID, endpoint, delta-rs storage options, log, and the
    sockets :func:`stop` removes.

    :raises RuntimeError: it did not start (the end of its log attached).
    """
    shutil.rmtree(workdir / OBJECT_STORE, ignore_errors=True)
    server = SeaweedS3(workdir / OBJECT_STORE, secret_key=secrets.token_urlsafe(24)).start()
    assert server.process is not None
    _RUNNING[server.process.pid] = server.process
    return {
        "pid": server.process.pid,
        "endpoint": server.endpoint,
        "storage_options": server.storage_options(),
        "log": str(server.log),
        "sockets": server.sockets,
    }


def _alive(pid: int) -> bool:
    """Whether process group ``pid`` still has a live (not zombie) leader or members."""
    proc = _RUNNING.get(pid)
    if proc is not None and proc.poll() is not None:
        try:
            os.killpg(pid, 0)  # the leader is reaped; are its children gone too?
        except ProcessLookupError:
            return False
        return True
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stop(workdir: Path = DEFAULT_WORKDIR) -> list[str]:
    """Stop every process of the stack by PID (process groups), politely then firmly."""
    path = workdir / "stack.json"
    if not path.exists():
        return []
    state = json.loads(path.read_text())
    stopped = []
    for name, pid in state["pids"].items():
        try:
            os.killpg(pid, signal.SIGTERM)
            stopped.append(name)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + 20
    for pid in state["pids"].values():
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.5)
        try:
            os.killpg(pid, signal.SIGKILL)  # what SIGTERM left of the group
        except ProcessLookupError:
            pass
        proc = _RUNNING.pop(pid, None)
        if proc is not None:
            proc.wait(timeout=10)
    for socket_path in state.get(OBJECT_STORE, {}).get("sockets", []):
        Path(socket_path).unlink(missing_ok=True)
    path.unlink()
    return stopped
