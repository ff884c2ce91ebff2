"""The stack's own serving process (``make airflow`` starts it beside Airflow): once training
has promoted a champion it answers a standard OIP client with the champion's score of the
served partition, shadows the challenger, and follows a promote and a rollback."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import pytest
import tritonclient.http as triton

from airflow_mlops.demo.credit_model import INPUT_CONTRACT, MODEL_NAME
from tests.deployment.conftest import trigger, unpause, wait_for_run

if TYPE_CHECKING:
    from airflow_mlops.models.registry import ModelRegistry
    from airflow_mlops.store.feature_store import FeatureStore

TRAIN_ON = "2026-01-20"


def _until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not {what} within {timeout} s")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def serving(running: dict[str, Any], api: httpx.Client, registry: ModelRegistry) -> dict[str, Any]:
    """The stack's server, ready: training is run first if no test has promoted a champion."""
    if "champion" not in registry.aliases(MODEL_NAME):
        for dag_id, day in (
            ("daily_customer_features", TRAIN_ON),
            ("train_credit_model", TRAIN_ON),
        ):
            unpause(api, dag_id)
            run = trigger(api, dag_id, day)
            assert wait_for_run(api, dag_id, run["dag_run_id"], timeout=300) == "success"
    served = dict(running["serving"])
    served["token"] = Path(served["token_file"]).read_text().strip()
    ready = f"http://127.0.0.1:{served['http_port']}/v2/health/ready"
    headers = {"Authorization": f"Bearer {served['token']}"}

    def is_ready() -> bool:
        try:
            return httpx.get(ready, headers=headers).status_code == 200
        except httpx.TransportError:
            return False

    _until(is_ready, 90, "ready (serve_when_ready polls every 5 s)")
    return served


def _infer(client: triton.InferenceServerClient, token: str, keys: list[int]) -> Any:
    tensor = triton.InferInput("customer_id", [len(keys)], "INT64")
    tensor.set_data_from_numpy(np.array(keys, dtype=np.int64))
    return client.infer(MODEL_NAME, [tensor], headers={"Authorization": f"Bearer {token}"})


def test_the_stack_serves_the_champions_scores_and_shadows_the_challenger(
    serving: dict[str, Any], store: FeatureStore, registry: ModelRegistry
) -> None:
    client = triton.InferenceServerClient(f"127.0.0.1:{serving['http_port']}")
    day = store.latest_partition("customer_features")
    assert day is not None
    features = store.read_partition("customer_features", day).slice(0, 200)
    keys = features["customer_id"].to_pylist()
    result = _infer(client, serving["token"], keys)
    champion = registry.load(MODEL_NAME, alias="champion")
    assert result.get_response()["model_version"] == champion.version
    expected = champion.model.predict_proba(features.select(INPUT_CONTRACT.names).to_pandas())
    # the compiled runtime (when verified) agrees with scikit-learn within 1e-12
    np.testing.assert_allclose(
        result.as_numpy("default_probability"), expected[:, 1], rtol=0, atol=1e-12
    )
    metrics_url = f"http://127.0.0.1:{serving['http_port']}/metrics"
    headers = {"Authorization": f"Bearer {serving['token']}"}

    def shadowed() -> bool:
        found = re.search(
            r"^airflow_mlops_serving_shadow_rows_total (\S+)$",
            httpx.get(metrics_url, headers=headers).text,
            re.MULTILINE,
        )
        return found is not None and float(found.group(1)) > 0

    _until(shadowed, 30, "shadowed by the challenger")


def test_the_stack_server_follows_a_promote_and_a_rollback(
    serving: dict[str, Any], registry: ModelRegistry
) -> None:
    client = triton.InferenceServerClient(f"127.0.0.1:{serving['http_port']}")
    aliases = registry.aliases(MODEL_NAME)
    before, challenger = aliases["champion"], aliases["challenger"]

    def served() -> str:
        return str(_infer(client, serving["token"], [1]).get_response()["model_version"])

    registry.promote(MODEL_NAME, "champion", challenger)
    try:
        _until(lambda: served() == challenger, 15, f"serving {challenger} after the promote")
    finally:
        registry.promote(MODEL_NAME, "champion", before)
    _until(lambda: served() == before, 15, f"serving {before} again after the rollback")
