"""Hot swap through a real ``airflow-mlops serve`` process and raw HTTP: a load loop runs while
the alias is promoted and rolled back and new partitions are published; a tampered artifact and
a damaged partition are refused while the old state keeps serving."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from airflow_mlops.demo.credit_model import INPUT_CONTRACT, MODEL_NAME, OUTPUT
from airflow_mlops.demo.stack import free_port
from airflow_mlops.models.registry import ModelRegistry
from airflow_mlops.serving.follow import Follower
from airflow_mlops.serving.service import ModelServer
from airflow_mlops.store.feature_store import FeatureStore
from tests.serving.conftest import FEATURES, demo_features, fitted_champion
from tests.serving.test_service import tamper

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

CUSTOMERS = 1_000
#: the partitions, each adding 100 customers: a new key found = the new partition served
PARTITIONS = ("2026-02-01", "2026-02-02", "2026-02-03", "2026-02-04")
SWAP_SECONDS = 5.0


@dataclass
class World:
    store: FeatureStore
    registry: ModelRegistry
    port: int
    log: Path
    failures: list[str] = field(default_factory=list)

    def infer(self, client: httpx.Client, key: int) -> dict[str, Any]:
        body = {
            "inputs": [{"name": "customer_id", "shape": [1], "datatype": "INT64", "data": [key]}]
        }
        url = f"http://127.0.0.1:{self.port}/v2/models/{MODEL_NAME}/infer"
        response = client.post(url, json=body)
        if response.status_code != 200:
            self.failures.append(f"{response.status_code} {response.text}")
            return {}
        answer: dict[str, Any] = response.json()
        return answer


def publish(store: FeatureStore, index: int) -> None:
    features = demo_features(CUSTOMERS + 100 * index, seed=20 + index)
    store.publish_partition(
        FEATURES, PARTITIONS[index], features.to_batches(), schema=features.schema
    )


@functools.cache
def champion(seed: int) -> Any:
    """A small fitted demo model, fitted once per seed for the whole module."""
    return fitted_champion(demo_features(600, seed=seed))


def register(registry: ModelRegistry, seed: int, aliases: list[str]) -> str:
    model = champion(seed)
    record = registry.register(
        MODEL_NAME, model, input_contract=INPUT_CONTRACT, output=OUTPUT, aliases=aliases
    )
    return str(record["version"])


@pytest.fixture(scope="module")
def world(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """A store with one partition, a registry with v0001 (champion) and v0002, and the server
    following them every 0.2 s (its stderr in a file)."""
    root = tmp_path_factory.mktemp("hot_swap")
    store = FeatureStore(str(root / "store"))
    registry = ModelRegistry(str(root / "registry"))
    publish(store, 0)
    register(registry, 1, ["champion"])
    register(registry, 2, [])
    log = root / "serve.log"
    port, process = start_serve(repo, store, registry, log, "--follow-interval", "0.2")
    try:
        yield World(store, registry, port, log)
    finally:
        stop(process)


def start_serve(
    repo: Path, store: FeatureStore, registry: ModelRegistry, log: Path, *options: str
) -> tuple[int, subprocess.Popen[bytes]]:
    """``airflow-mlops serve`` of the demo model over ``store``'s feature table on a free port
    (REST only), with ``options``, its stderr in ``log``; once ready, its port and process.
    Fails the test (the log attached) when it exits first or is not ready within 90 s."""
    port = free_port()
    command = [
        *(sys.executable, "-m", "airflow_mlops", "--root", store.root, "serve"),
        *("--registry", registry.root, MODEL_NAME, "--feature-table", FEATURES),
        *("--http-port", str(port), "--grpc-port", "0", *options),
    ]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    with log.open("w") as stderr:
        process = subprocess.Popen(
            command, cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=stderr
        )
    ready = f"http://127.0.0.1:{port}/v2/health/ready"
    wait_for(lambda: _answers(ready) or process.poll() is not None, 90)
    if process.poll() is not None:
        pytest.fail(f"airflow-mlops serve did not start: {log.read_text()}")
    return port, process


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server; SIGKILL it if it is still running 15 s later."""
    process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=15)
    process.kill()  # a no-op once it has exited
    process.wait()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url).status_code == 200
    except httpx.TransportError:
        return False


def wait_for(condition: Callable[[], object], timeout: float) -> float:
    """Seconds until ``condition()`` is true; fails after ``timeout``."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            pytest.fail(f"not true within {timeout} s")
        time.sleep(0.05)
    return time.monotonic() - start


def served_version(world: World, client: httpx.Client, key: int = 1) -> str | None:
    return world.infer(client, key).get("model_version")


def found(world: World, client: httpx.Client, key: int) -> bool:
    outputs = {o["name"]: o["data"] for o in world.infer(client, key).get("outputs", [])}
    return outputs.get("error") == [""]


def test_promotes_rollbacks_and_partitions_swap_under_load_without_a_failure(world: World) -> None:
    versions: list[str] = []
    stop = threading.Event()

    def load(offset: int) -> None:
        with httpx.Client(timeout=10) as client:
            key = offset
            while not stop.is_set():
                answer = world.infer(client, 1 + key % CUSTOMERS)
                versions.append(answer.get("model_version", "none"))
                outputs = {o["name"]: o["data"] for o in answer.get("outputs", [])}
                if outputs.get("error") != [""]:
                    world.failures.append(f"row error {outputs.get('error')}")
                key += 7

    threads = [threading.Thread(target=load, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    delays = []
    try:
        with httpx.Client(timeout=10) as client:
            for change in range(10):
                if change % 2 == 0:
                    world.registry.promote(MODEL_NAME, "champion", "v0002")
                else:
                    world.registry.rollback(MODEL_NAME, "champion")
                wanted = "v0002" if change % 2 == 0 else "v0001"
                delays.append(wait_for(lambda w=wanted: served_version(world, client) == w, 5))
                if change in (3, 7):  # two new partitions, each with 100 new customers
                    index = 1 if change == 3 else 2
                    publish(world.store, index)
                    new_key = CUSTOMERS + 100 * index
                    delays.append(wait_for(lambda k=new_key: found(world, client, k), 5))
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    assert world.failures == []
    assert len(versions) > 20  # the load loop ran throughout (how many: machine load decides)
    assert set(versions) == {"v0001", "v0002"}
    assert max(delays) < SWAP_SECONDS


def test_a_tampered_artifact_and_a_damaged_partition_are_refused_while_serving(
    world: World,
) -> None:
    with httpx.Client(timeout=10) as client:
        before = served_version(world, client)
        assert before in {"v0001", "v0002"}
        tampered = register(world.registry, 3, [])
        tamper(world.registry, tampered)
        world.registry.promote(MODEL_NAME, "champion", tampered)
        wait_for(lambda: f"Refused ('{tampered}'" in _refusals(world), 5)
        assert "was modified after registration" in _refusals(world)

        publish(world.store, 3)  # refused with the tampered model; then its file is damaged
        damage(world.store, PARTITIONS[3])
        world.registry.rollback(MODEL_NAME, "champion")
        wait_for(lambda: f"Refused ('{before}', '{PARTITIONS[3]}'" in _refusals(world), 5)
        assert "ChecksumMismatchError" in _refusals(world).splitlines()[-1]

        assert served_version(world, client) == before  # the old state keeps serving
        assert not found(world, client, CUSTOMERS + 300)  # and the old partition
        ready = client.get(f"http://127.0.0.1:{world.port}/v2/health/ready")
        assert ready.status_code == 200
        details = ready.json()["details"]  # readiness says what was refused, and why
        assert details["refusals"] == 2
        assert details["last_refusal"]["partition"] == PARTITIONS[3]
        assert details["last_refusal"]["error"].startswith("ChecksumMismatchError")
    assert world.failures == []


def _refusals(world: World) -> str:
    return "\n".join(line for line in world.log.read_text().splitlines() if "Refused" in line)


def damage(store: FeatureStore, partition: str) -> None:
    """Flip a byte in the middle of one data file of the partition's current version."""
    data = sorted(Path(store.partition_path(FEATURES, partition)).glob("**/*.parquet"))[0]
    content = bytearray(data.read_bytes())
    content[len(content) // 2] ^= 0xFF
    data.write_bytes(bytes(content))


# -- the same, in-process: what describe() reports ----------------------------------------


@pytest.fixture
def small_world(tmp_path: Path) -> tuple[FeatureStore, ModelRegistry]:
    """A store with one partition and a registry with v0001 (champion) and v0002."""
    store = FeatureStore(str(tmp_path / "store"))
    registry = ModelRegistry(str(tmp_path / "registry"))
    publish(store, 0)
    register(registry, 1, ["champion"])
    register(registry, 2, [])
    return store, registry


def test_follow_once_swaps_counts_and_describes_refusals(small_world) -> None:
    store, registry = small_world
    server = ModelServer(store, registry, MODEL_NAME, feature_table=FEATURES)
    server.load()
    assert not server.follow_once()  # nothing moved
    registry.promote(MODEL_NAME, "champion", "v0002")

    assert server.follow_once()
    assert server.describe()["model"]["version"] == "v0002"  # type: ignore[index]
    tamper(registry, register(registry, 3, ["champion"]))
    assert not server.follow_once()
    assert not server.follow_once()  # a refused source is not retried until it moves

    details = server.describe()
    assert (details["ready"], details["swaps"], details["refusals"]) == (True, 1, 1)
    assert details["model"]["version"] == "v0002"  # type: ignore[index]
    refusal = details["last_refusal"]
    assert refusal["model_version"] == "v0003"  # type: ignore[index]
    assert refusal["partition"] == PARTITIONS[0]  # type: ignore[index]
    assert refusal["error"].startswith("ChecksumMismatchError: ")  # type: ignore[index]
    publish(store, 1)
    registry.rollback(MODEL_NAME, "champion")
    assert server.follow_once()
    assert server.describe()["features"]["partition"] == PARTITIONS[1]  # type: ignore[index]
    assert server.describe()["swaps"] == 2


def test_following_runs_on_a_thread_until_stopped(small_world) -> None:
    store, registry = small_world
    server = ModelServer(store, registry, MODEL_NAME, feature_table=FEATURES)
    first = server.load()
    server.start_following(0.05)
    try:
        assert server.describe()["following"] is True
        registry.promote(MODEL_NAME, "champion", "v0002")
        wait_for(lambda: server.state is not first, 5)
        assert server.state is not None
        assert server.state.model.version == "v0002"
    finally:
        server.stop()
    assert server.describe()["following"] is False


def test_a_failing_poll_is_logged_and_polling_goes_on(caplog) -> None:
    calls: list[int] = []

    def poll() -> None:
        calls.append(1)
        raise OSError("registry unreachable")

    follower = Follower(poll, 0.01, name="test-follow")
    follower.start()
    try:
        wait_for(lambda: len(calls) >= 3, 5)
    finally:
        follower.stop()
    assert "a poll failed; retrying" in caplog.text
    with pytest.raises(ValueError, match=re.escape("must be a float > 0. Got 0 instead.")):
        Follower(poll, 0, name="never")
