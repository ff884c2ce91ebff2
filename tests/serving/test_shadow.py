"""Online shadow traffic and the serving log, through a real ModelServer on a real store and
registry: the challenger's sample is batch shadow scoring's, a challenger that raises or hangs
never touches a champion response, and the logs land as Parquet segments plain pyarrow reads."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from airflow_mlops.demo.credit_model import MODEL_NAME
from airflow_mlops.models.registry import ModelRegistry
from airflow_mlops.scoring import ScoringRequest, ShadowRequest, score_partition
from airflow_mlops.serving.log import SegmentWriter, requests_log, shadow_log
from airflow_mlops.serving.protocol import InferenceRequest, Tensor
from airflow_mlops.serving.service import ModelServer
from airflow_mlops.store.feature_store import FeatureStore
from tests.serving.conftest import FEATURES, demo_features, fitted_champion, register_champion
from tests.serving.test_service import tamper

if TYPE_CHECKING:
    from pathlib import Path

    from tests.serving.conftest import Served

PARTITION = "2026-03-01"
CUSTOMERS = 2_000
FRACTION, SEED = 0.5, 7


@dataclasses.dataclass(frozen=True)
class ShadowWorld:
    store: FeatureStore
    registry: ModelRegistry
    champion: str
    challenger: str


@pytest.fixture(scope="module")
def world(served: Served, tmp_path_factory: pytest.TempPathFactory) -> ShadowWorld:
    """A store with one partition, the session's champion and a smaller challenger."""
    root: Path = tmp_path_factory.mktemp("shadow")
    store = FeatureStore(str(root / "store"))
    registry = ModelRegistry(str(root / "registry"))
    features = demo_features(CUSTOMERS, seed=3)
    store.publish_partition(FEATURES, PARTITION, features.to_batches(), schema=features.schema)
    champion = register_champion(registry, served.model, served.features)
    challenger = register_champion(registry, fitted_champion(features), features)
    registry.promote(MODEL_NAME, "champion", champion)
    registry.promote(MODEL_NAME, "challenger", challenger)
    return ShadowWorld(store, registry, champion, challenger)


def shadow_server(world: ShadowWorld, **kwargs: Any) -> ModelServer:
    writer = SegmentWriter(world.store.logs, max_seconds=0.2)
    server = ModelServer(
        world.store,
        world.registry,
        MODEL_NAME,
        feature_table=FEATURES,
        serving_log=writer,
        shadow_alias="challenger",
        shadow_fraction=FRACTION,
        shadow_seed=SEED,
        **kwargs,
    )
    server.load()
    return server


def lookup(server: ModelServer, keys: list[int], request_id: str | None = None) -> Any:
    tensor = Tensor("customer_id", "INT64", (len(keys),), keys)
    return server.infer(MODEL_NAME, None, InferenceRequest(inputs=(tensor,), id=request_id))


def wait_until(condition: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def read_log(store: FeatureStore, log: str) -> pa.Table:
    today = datetime.now(UTC).date().isoformat()
    return pa.Table.from_batches(list(store.logs.iter_batches(log, today)))


def test_the_online_sample_is_the_batch_sample_and_scores_agree(world: ShadowWorld) -> None:
    server = shadow_server(world)
    keys = list(range(1, CUSTOMERS + 1))
    for start in range(0, CUSTOMERS, 100):
        lookup(server, keys[start : start + 100], request_id=f"r{start}")
    lookup(server, [CUSTOMERS + 50])  # not in the table: answered with an error, not shadowed
    wait_until(lambda: server.shadow is not None and server.shadow.rows_scored >= 900)
    server.stop()  # flushes the log

    request = ScoringRequest(
        FEATURES, "customer_scores", MODEL_NAME, world.champion, PARTITION, workers=1,
        shadow=ShadowRequest(
            "challenger", "customer_scores_shadow",
            world.store.staging_path("test_shadow", "run", "shadow.parquet"), FRACTION, SEED,
        ),
    )  # fmt: skip
    score_partition(world.store, world.registry, request, lineage={}, log=logging.getLogger())
    batch_shadow = world.store.read_partition("customer_scores_shadow", PARTITION)
    batch_scores = world.store.read_partition("customer_scores", PARTITION)

    online = read_log(world.store, shadow_log(MODEL_NAME)).sort_by("customer_id")
    assert online.num_rows == batch_shadow.num_rows > 0.4 * CUSTOMERS
    assert online["customer_id"].to_pylist() == sorted(batch_shadow["customer_id"].to_pylist())
    batch_shadow = batch_shadow.sort_by("customer_id")
    assert online["challenger_score"].equals(batch_shadow["default_probability"])
    assert online["challenger_decision"].equals(batch_shadow["decision"].cast(pa.string()))
    assert set(online["challenger_version"].to_pylist()) == {world.challenger}
    assert set(online["champion_version"].to_pylist()) == {world.champion}
    champion = batch_scores.sort_by("customer_id").filter(
        pc.is_in(batch_scores.sort_by("customer_id")["customer_id"], online["customer_id"])
    )
    assert online["champion_score"].equals(champion["default_probability"])

    logged = read_log(world.store, requests_log(MODEL_NAME))
    assert logged.num_rows == CUSTOMERS + 1
    found = logged.filter(pc.equal(logged["error"], "")).sort_by("customer_id")
    assert found["customer_id"].to_pylist() == keys
    assert found["income"].equals(
        world.store.read_partition(FEATURES, PARTITION).sort_by("customer_id")["income"]
    )
    assert logged.schema.field("served_at").type == pa.timestamp("us", tz="UTC")
    assert pc.min(logged["latency_ms"]).as_py() > 0
    assert server.describe()["shadow"]["errors"] == 0


class Raising:
    def predict_proba(self, frame: Any) -> Any:
        raise RuntimeError("challenger exploded")


class Hanging:
    def __init__(self) -> None:
        self.release = threading.Event()

    def predict_proba(self, frame: Any) -> Any:
        self.release.wait(30)
        raise RuntimeError("released")


def patched_challenger(server: ModelServer, scorer: Any) -> None:
    shadow = server.shadow
    assert shadow is not None
    wait_until(lambda: shadow.model is not None or shadow.status != "starting")
    lookup(server, [1])  # the first request makes the shadow thread load the challenger
    wait_until(lambda: shadow.model is not None)
    assert shadow.model is not None
    shadow.model = dataclasses.replace(shadow.model, scorer=scorer)


def test_a_challenger_that_raises_never_affects_the_champion(world: ShadowWorld) -> None:
    plain = ModelServer(world.store, world.registry, MODEL_NAME, feature_table=FEATURES)
    plain.load()
    server = shadow_server(world)
    patched_challenger(server, Raising())
    keys = list(range(1, 201))
    for key in keys:
        assert lookup(server, [key]).outputs == lookup(plain, [key]).outputs
    assert server.shadow is not None
    shadow = server.shadow
    # one challenger call per batch of queued requests: each call fails, none is scored
    wait_until(lambda: shadow.errors >= 1 and not shadow.describe()["queued_requests"])
    described = server.describe()["shadow"]
    assert described["rows_scored"] == 0
    assert "challenger exploded" in described["last_error"]
    assert described["status"] == "shadowing"
    server.stop()


def test_a_hung_challenger_drops_and_counts_never_slows_the_champion(world: ShadowWorld) -> None:
    server = shadow_server(world)
    hanging = Hanging()
    patched_challenger(server, hanging)
    shadow = server.shadow
    assert shadow is not None
    latencies = []
    # the challenger's thread hangs in the first call it makes; from then on the queue
    # (1,000 requests) fills, then drops
    for key in range(1, 3_001):
        begin = time.perf_counter()
        response = lookup(server, [1 + key % CUSTOMERS])
        latencies.append(time.perf_counter() - begin)
        assert response.outputs[0].data[0] == response.outputs[0].data[0]  # a number, not NaN
        if shadow.dropped_requests > 10:
            break
    assert max(latencies) < 5  # the challenger hangs for 30 s: nobody waited for it
    assert shadow.dropped_requests > 0
    assert server.describe()["shadow"]["dropped_requests"] == shadow.dropped_requests
    hanging.release.set()
    server.stop()


def test_a_tampered_challenger_is_refused_and_the_champion_serves_on(
    world: ShadowWorld, tmp_path: Path
) -> None:
    registry = ModelRegistry(str(tmp_path / "registry"))
    champion = register_champion(registry, *_models(world))
    challenger = register_champion(registry, *_models(world))
    registry.promote(MODEL_NAME, "champion", champion)
    registry.promote(MODEL_NAME, "challenger", challenger)
    tamper(registry, challenger)
    server = shadow_server(dataclasses.replace(world, registry=registry))
    lookup(server, [1, 2, 3])
    assert server.shadow is not None
    wait_until(lambda: server.shadow is not None and server.shadow.errors >= 1)
    assert server.describe()["shadow"]["status"] == f"refused version {challenger}"
    assert "was modified after registration" in str(server.describe()["shadow"]["last_error"])
    assert lookup(server, [4]).model_version == champion
    server.stop()


def _models(world: ShadowWorld) -> tuple[Any, pa.Table]:
    model = world.registry.load(MODEL_NAME, version=world.champion).model
    return model, world.store.read_partition(FEATURES, PARTITION)


def test_segments_rotate_by_size_and_are_plain_parquet(tmp_path: Path) -> None:
    store = FeatureStore(str(tmp_path / "store"))
    writer = SegmentWriter(store.logs, max_rows=10, max_seconds=60)
    writer.start()

    @dataclasses.dataclass
    class Rows:
        rows: int
        batch_key = None

        @classmethod
        def joined(cls, records: list[Rows]) -> pa.RecordBatch:
            now, rows = datetime.now(UTC), sum(record.rows for record in records)
            return pa.RecordBatch.from_pydict(
                {
                    "served_at": pa.array([now] * rows, pa.timestamp("us", tz="UTC")),
                    "x": [x for record in records for x in range(record.rows)],
                }  # fmt: skip
            )

    for _ in range(7):
        assert writer.append("m_requests", Rows(4))
    writer.close()
    today = datetime.now(UTC).date().isoformat()
    paths = store.logs.segments("m_requests", today)
    # records joined, cut in segments of max_rows rows: the last one written on close
    assert [pq.read_metadata(p).num_rows for p in paths] == [10, 10, 8]
    # plain pyarrow reads the day's directory as one dataset
    directory = store.logs.day_dir("m_requests", today)
    assert pq.read_table(directory).num_rows == 28
    assert writer.describe() == {
        "segments": 3, "rows": 28, "dropped_rows": 0, "errors": 0, "last_error": None,
    }  # fmt: skip
