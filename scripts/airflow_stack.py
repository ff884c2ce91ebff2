"""`make airflow`: a real multi-process Airflow on this machine, the compose stack's topology.

Metadata DB on the running PostgreSQL (its own database), CeleryExecutor with the Redis
broker, api-server on a free loopback port, scheduler, dag-processor, triggerer and two
Celery workers, this project's DAGs and connections; the demo warehouse seeded into
PostgreSQL. `start` leaves it running and prints the UI address and login; `stop` ends
every process by PID.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from airflow_mlops.demo.environment import REPO, connection_json

VAR = REPO / "var" / "stack"
PG = "postgresql://postgres@127.0.0.1:5432"
METADATA_DB = "airflow_mlops_stack"
WAREHOUSE_DB = "airflow_mlops_warehouse"
#: the Airflow components, as in docker-compose.airflow.yml (tests check both agree)
COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer", "worker-1", "worker-2")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stack_env(port: int, secret: str) -> dict[str, str]:
    """Every setting and connection the stack's processes share."""
    return {
        "AIRFLOW_HOME": str(VAR / "home"),
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
            "postgres", host="127.0.0.1", port=5432, login="postgres", schema=WAREHOUSE_DB
        ),
        "AIRFLOW_CONN_FEATURE_STORE_DEFAULT": connection_json(
            "feature_store", extra={"root": str(VAR / "feature_store"), "keep_versions": 3}
        ),
        "AIRFLOW_CONN_MODEL_REGISTRY_DEFAULT": connection_json(
            "model_registry", extra={"root": str(VAR / "model_registry")}
        ),
    }


def _create_database(name: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as con:
        if not con.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            con.execute(f'CREATE DATABASE "{name}"')


def _spawn(name: str, args: list[str], env: dict[str, str]) -> int:
    log = open(VAR / f"{name}.log", "ab")  # noqa: SIM115 - the process keeps it
    airflow = str(Path(sys.executable).with_name("airflow"))
    proc = subprocess.Popen(
        [airflow, *args],
        env={**os.environ, **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return proc.pid


def _wait(what: str, check, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1)
    raise SystemExit(f"{what} did not come up within {timeout:.0f} s; see {VAR}/*.log")


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=2):
            return True
    except OSError:
        return False


def start() -> dict[str, object]:
    """Start the stack; its state (PIDs, port, env) is written to var/stack/stack.json."""
    from airflow_mlops.demo.warehouse import WarehouseSpec, write_postgres

    VAR.mkdir(parents=True, exist_ok=True)
    port, secret = free_port(), secrets.token_urlsafe(64)
    env = stack_env(port, secret)
    _create_database(METADATA_DB)
    _create_database(WAREHOUSE_DB)
    write_postgres(f"{PG}/{WAREHOUSE_DB}", WarehouseSpec(customers=5_000))
    subprocess.run(
        [str(Path(sys.executable).with_name("airflow")), "db", "migrate"],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
    )
    pids = {"api-server": _spawn("api-server", ["api-server", "--port", str(port)], env)}
    _wait("api-server", lambda: _healthy(port))
    for name, args in (
        ("scheduler", ["scheduler"]),
        ("dag-processor", ["dag-processor"]),
        ("triggerer", ["triggerer"]),
    ):
        pids[name] = _spawn(name, args, env)
    for n in (1, 2):
        worker_env = {
            **env,
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW_MLOPS_WORKER": f"w{n}",
        }
        pids[f"worker-{n}"] = _spawn(
            f"worker-{n}",
            ["celery", "worker", "--celery-hostname", f"w{n}@%h", "--concurrency", "2"],
            worker_env,
        )
    _wait(
        "celery workers",
        lambda: all(b"ready." in (VAR / f"worker-{n}.log").read_bytes() for n in (1, 2)),
    )
    passwords = Path(env["AIRFLOW_HOME"]) / "simple_auth_manager_passwords.json.generated"
    state = {"port": port, "pids": pids, "env": env, "passwords": str(passwords)}
    (VAR / "stack.json").write_text(json.dumps(state, indent=2))
    return state


def stop() -> list[str]:
    """Stop every process of the stack by PID (process groups), politely then firmly."""
    path = VAR / "stack.json"
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
        while time.monotonic() < deadline:
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.5)
        else:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    path.unlink()
    return stopped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("action", choices=("start", "stop"))
    args = parser.parse_args()
    if args.action == "stop":
        print("stopped:", ", ".join(stop()) or "nothing was running")
        return
    stop()
    state = start()
    print(
        f"Airflow UI: http://127.0.0.1:{state['port']}/  (login: admin, password in "
        f"{state['passwords']})"
    )
    print(f"Stop it with: {sys.executable} scripts/airflow_stack.py stop")


if __name__ == "__main__":
    main()
