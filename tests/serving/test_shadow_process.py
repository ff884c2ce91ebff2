"""Shadow traffic and the serving log through a real ``airflow-mlops serve`` process, asked by
``tritonclient.http``: the challenger shadows batch shadow scoring's sample, /metrics counts
it, and SIGTERM writes every answered row to the log before the process exits."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import tritonclient.http as triton

from airflow_mlops.demo.credit_model import MODEL_NAME
from airflow_mlops.models.registry import ModelRegistry
from airflow_mlops.scoring.shadow import shadow_mask
from airflow_mlops.serving.log import requests_log, shadow_log
from airflow_mlops.store.feature_store import FeatureStore
from tests.serving.test_hot_swap import publish, register, start_serve, stop, wait_for

REQUESTS = 300


def metric(port: int, name: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    found = re.search(rf"^airflow_mlops_serving_{name} (\S+)$", text, re.MULTILINE)
    assert found, f"{name} not in /metrics"
    return float(found.group(1))


def test_a_served_process_shadows_the_batch_sample_and_logs_every_row(
    repo: Path, tmp_path: Path
) -> None:
    store = FeatureStore(str(tmp_path / "store"))
    registry = ModelRegistry(str(tmp_path / "registry"))
    publish(store, 0)
    champion = register(registry, 1, ["champion"])
    challenger = register(registry, 2, ["challenger"])
    log = tmp_path / "serve.log"
    port, process = start_serve(
        repo, store, registry, log, "--open-metrics",
        *("--shadow-alias", "challenger", "--shadow-fraction", "0.5", "--shadow-seed", "3"),
        *("--log-rotate-seconds", "0.3"),
    )  # fmt: skip
    try:
        client = triton.InferenceServerClient(f"127.0.0.1:{port}")
        keys = np.arange(1, REQUESTS + 1, dtype=np.int64)
        for key in keys:
            tensor = triton.InferInput("customer_id", [1], "INT64")
            tensor.set_data_from_numpy(np.array([key], dtype=np.int64))
            result = client.infer(MODEL_NAME, [tensor], request_id=f"req-{key}")
            assert result.get_response()["model_version"] == champion
        sampled = int(pc.sum(shadow_mask(pa.array(keys), 0.5, seed=3)).as_py())
        wait_for(lambda: metric(port, "shadow_rows_total") == sampled, 20)
        assert metric(port, "shadow_dropped_requests_total") == 0
        assert metric(port, "shadow_errors_total") == 0
        wait_for(lambda: metric(port, "log_segments_total") >= 1, 10)  # rotated by time
    finally:
        stop(process)
    assert "Application shutdown complete" in log.read_text()  # uvicorn re-raises SIGTERM

    today = datetime.now(UTC).date().isoformat()
    logged = pa.Table.from_batches(list(store.logs.iter_batches(requests_log(MODEL_NAME), today)))
    assert sorted(logged["customer_id"].to_pylist()) == keys.tolist()  # SIGTERM wrote the rest
    assert set(logged["request_id"].to_pylist()) == {f"req-{key}" for key in keys}
    shadowed = pa.Table.from_batches(list(store.logs.iter_batches(shadow_log(MODEL_NAME), today)))
    expected = pa.array(keys).filter(shadow_mask(pa.array(keys), 0.5, seed=3))
    assert sorted(shadowed["customer_id"].to_pylist()) == expected.to_pylist()
    assert set(shadowed["challenger_version"].to_pylist()) == {challenger}


def test_two_worker_processes_serve_side_by_side_and_both_log(repo: Path, tmp_path: Path) -> None:
    store = FeatureStore(str(tmp_path / "store"))
    registry = ModelRegistry(str(tmp_path / "registry"))
    publish(store, 0)
    champion = register(registry, 1, ["champion"])
    log = tmp_path / "serve.log"
    port, process = start_serve(repo, store, registry, log, "--workers", "2")
    answered = 0
    try:
        wait_for(lambda: log.read_text().count("Serving {") >= 3, 60)  # parent + 2 workers
        # a new connection each time: the kernel spreads them over both workers
        for key in range(1, 101):
            body = {
                "inputs": [
                    {"name": "customer_id", "shape": [1], "datatype": "INT64", "data": [key]}
                ]
            }
            response = httpx.post(
                f"http://127.0.0.1:{port}/v2/models/{MODEL_NAME}/infer", json=body
            )
            assert response.status_code == 200, response.text
            assert response.json()["model_version"] == champion
            answered += 1
    finally:
        stop(process)
    today = datetime.now(UTC).date().isoformat()
    segments = store.logs.segments(requests_log(MODEL_NAME), today)
    writers = {Path(segment).name.split("-")[-2] for segment in segments}  # …-<pid>-<seq>.parquet
    assert len(writers) == 2, segments
    logged = pa.Table.from_batches(list(store.logs.iter_batches(requests_log(MODEL_NAME), today)))
    assert logged.num_rows == answered
