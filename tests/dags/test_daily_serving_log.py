"""daily_serving_log through Airflow: a real ModelServer (champion + shadow challenger) answers
raw-feature requests and logs them into the session's store; the DAG publishes the day, checks
live drift against the training profile and compares the shadow."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import TYPE_CHECKING

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from airflow_mlops.demo.credit_model import INPUT_CONTRACT, MODEL_NAME
from airflow_mlops.drift.check import save_profile
from airflow_mlops.drift.profile import ProfileBuilder
from airflow_mlops.models.registry import ModelRegistry
from airflow_mlops.scoring.shadow import shadow_mask
from airflow_mlops.serving.log import SegmentWriter
from airflow_mlops.serving.protocol import InferenceRequest, Tensor
from airflow_mlops.serving.service import ModelServer
from airflow_mlops.store.feature_store import FeatureStore
from tests.serving.conftest import demo_features, fitted_champion, register_champion

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.airflow

ROWS, PER_REQUEST, FRACTION = 600, 10, 0.5


def _request(rows) -> InferenceRequest:
    tensors = []
    for field in [*INPUT_CONTRACT.to_arrow_schema(), rows.schema.field("customer_id")]:
        values = rows.column(field.name).to_pylist()
        datatype = (
            "BYTES" if field.name == "region" else ("INT64" if "int" in str(field.type) else "FP64")
        )
        tensors.append(Tensor(field.name, datatype, (len(values),), values))
    return InferenceRequest(inputs=tuple(tensors))


@pytest.fixture(scope="module")
def served_day(airflow_db, tmp_path_factory) -> str:
    """Today's traffic: ROWS customers answered by a champion, shadowed by a challenger."""
    from tests.conftest import _SESSION_DIR

    store = FeatureStore(str(_SESSION_DIR / "feature_store"))
    registry = ModelRegistry(str(tmp_path_factory.mktemp("serving_log") / "registry"))
    training = demo_features(2_000, seed=21)
    champion = register_champion(registry, fitted_champion(training), training)
    challenger = register_champion(
        registry, fitted_champion(demo_features(2_000, seed=22)), training
    )
    registry.promote(MODEL_NAME, "champion", champion)
    registry.promote(MODEL_NAME, "challenger", challenger)
    builder = ProfileBuilder()
    for batch in training.select(INPUT_CONTRACT.names).to_batches():
        builder.update(batch)
    save_profile(store, "customer_features", MODEL_NAME, builder.finish())

    server = ModelServer(
        store, registry, MODEL_NAME,
        serving_log=SegmentWriter(store.logs, max_seconds=0.5),
        shadow_alias="challenger", shadow_fraction=FRACTION,
    )  # fmt: skip
    server.load()
    live = demo_features(ROWS, seed=23, first_id=10_001)
    for start in range(0, ROWS, PER_REQUEST):
        server.infer(MODEL_NAME, None, _request(live.slice(start, PER_REQUEST)))
    deadline = time.monotonic() + 20
    shadow = server.shadow
    assert shadow is not None
    expected = int(pc.sum(shadow_mask(live["customer_id"], FRACTION)).as_py())
    while shadow.rows_scored < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    server.stop()  # writes what the log holds
    assert shadow.rows_scored == expected
    return dt.datetime.now(dt.UTC).date().isoformat()


def _run(dags_folder: Path, day: str):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(dags_folder))
    assert bag.import_errors == {}
    dag = bag.get_dag("daily_serving_log")
    return dag.test(logical_date=None, run_conf={"partition": day})


def test_publishes_the_day_checks_live_drift_and_compares_the_shadow(
    served_day, dags_folder, store_root
) -> None:
    run = _run(dags_folder, served_day)
    assert run.state == "success"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert set(states.values()) == {"success"}, states
    store = FeatureStore(str(store_root))

    # plain pyarrow reads the published day
    served = pq.read_table(store.partition_path("credit_risk_serving_log", served_day))
    assert served.num_rows == ROWS
    assert sorted(served["customer_id"].to_pylist()) == list(range(10_001, 10_001 + ROWS))
    assert set(INPUT_CONTRACT.names) <= set(served.column_names)
    drift = json.loads(store.read_sidecar("credit_risk_serving_log", "drift_report.json",
                                          partition=served_day))  # fmt: skip
    assert drift["reference"] == {
        "kind": "profile",
        "name": MODEL_NAME,
        "table": "customer_features",
    }
    assert {c["name"] for c in drift["columns"]} == set(INPUT_CONTRACT.names)

    shadow = store.read_partition("credit_risk_shadow_log", served_day)
    sampled = served.filter(shadow_mask(served["customer_id"], FRACTION))
    assert sorted(shadow["customer_id"].to_pylist()) == sorted(sampled["customer_id"].to_pylist())
    report = json.loads(store.read_sidecar("credit_risk_shadow_log", "shadow_report.json",
                                           partition=served_day))  # fmt: skip
    delta = np.abs(shadow["champion_score"].to_numpy() - shadow["challenger_score"].to_numpy())
    assert report["rows_compared"] == shadow.num_rows
    assert report["mean_abs_delta"] == pytest.approx(delta.mean(), rel=1e-12)
    agreement = np.mean(
        shadow["champion_decision"].to_numpy() == shadow["challenger_decision"].to_numpy()
    )
    assert report["decision_agreement_rate"] == pytest.approx(agreement)
    for model in ("champion", "challenger"):
        latency = report["latency"][model]
        assert latency["rows"] == shadow.num_rows
        assert 0 < latency["p50_ms"] <= latency["p95_ms"]

    # a rerun republishes the same rows (idempotent)
    first = store.manifest("credit_risk_serving_log", served_day)
    assert _run(dags_folder, served_day).state == "success"
    again = store.manifest("credit_risk_serving_log", served_day)
    assert again["version"] != first["version"]
    assert again["content_sha256"] == first["content_sha256"]


def test_a_day_without_traffic_skips(served_day, dags_folder) -> None:
    run = _run(dags_folder, "2020-01-01")
    assert run.state == "success"
    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == {
        "publish_requests": "skipped", "check_live_drift": "skipped",
        "publish_shadow": "skipped", "compare_shadow": "skipped",
    }  # fmt: skip
