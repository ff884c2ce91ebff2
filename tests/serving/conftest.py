"""A served world built once per session: a published partition of demo customer features, a
registered HGB champion (its compiled runtime verified, as training registers it), the
partition batch-scored by ``score_partition`` and a loaded :class:`ModelServer`.

Other helpers' tests (REST, gRPC) can use ``served`` too: ``served.server`` is loaded.
The gRPC tests' fixtures (a server process over a fake service) come from ``grpc_client``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pytest

from airflow_mlops.demo.credit_model import (
    CUSTOMER_FEATURES,
    INPUT_CONTRACT,
    MODEL_NAME,
    OUTPUT,
    make_pipeline,
)
from airflow_mlops.models.accelerate import registration_check
from airflow_mlops.models.registry import ModelRegistry
from airflow_mlops.scoring import ScoringRequest, score_partition
from airflow_mlops.serving.service import ModelServer
from airflow_mlops.store.feature_store import FeatureStore
from tests.serving.grpc_client import client, grpc_ports, stub  # noqa: F401 - fixtures

if TYPE_CHECKING:
    from pathlib import Path

FEATURES = "customer_features"
SCORES = "customer_scores"
PARTITION = "2026-01-30"
#: customers in the served partition (online = batch compares every one)
CUSTOMERS = 12_000


def demo_features(rows: int, *, seed: int = 11, first_id: int = 1) -> pa.Table:
    """``rows`` customers of the demo contract (``customer_features``), deterministic; a few
    ``debt_to_income`` nulls (the one nullable feature)."""
    rng = np.random.default_rng(seed)
    income = np.round(rng.lognormal(10.8, 0.5, rows), 2)
    debt = np.round(income * rng.beta(2, 5, rows) * 1.5, 2)
    ratio = pa.array(debt / income, mask=rng.random(rows) < 0.02)
    count_7d = rng.poisson(3, rows)
    count_30d = count_7d + rng.poisson(9, rows)
    columns = {
        "customer_id": np.arange(first_id, first_id + rows, dtype=np.int64),
        "income": income,
        "debt": debt,
        "age": rng.integers(18, 90, rows),
        "history_score": np.round(rng.uniform(300, 850, rows), 1),
        "region": pa.array(rng.choice(["north", "south", "east", "west"], rows).tolist()),
        "debt_to_income": ratio,
        "txn_count_7d": count_7d,
        "txn_amount_7d": np.round(count_7d * rng.gamma(2, 30, rows), 2),
        "txn_count_30d": count_30d,
        "txn_amount_30d": np.round(count_30d * rng.gamma(2, 30, rows), 2),
        "txn_max_amount_30d": np.round(rng.gamma(3, 40, rows), 2),
    }
    return pa.table(columns, schema=CUSTOMER_FEATURES.to_arrow_schema())


def fitted_champion(features: pa.Table) -> Any:
    """The demo pipeline (HGB, 20 iterations) fitted on labels drawn from the features."""
    frame = features.select(INPUT_CONTRACT.names).to_pandas()
    rng = np.random.default_rng(5)
    logit = -1.5 + 3.0 * frame["debt"] / frame["income"] - 0.004 * (frame["history_score"] - 575)
    labels = (rng.random(len(frame)) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    model = make_pipeline({"family": "hgb", "max_leaf_nodes": 15, "learning_rate": 0.1})
    return model.set_params(model__max_iter=20).fit(frame, labels)


def register_champion(registry: ModelRegistry, model: Any, features: pa.Table) -> str:
    """Register ``model`` as the champion with its compiled runtime checked (as training does)."""
    frame = features.slice(0, 2_000).select(INPUT_CONTRACT.names).to_pandas()
    runtimes = registration_check(model, frame, threshold=OUTPUT["threshold"])
    record = registry.register(
        MODEL_NAME,
        model,
        input_contract=INPUT_CONTRACT,
        output=OUTPUT,
        runtimes=runtimes,
        aliases=["champion"],
    )
    return str(record["version"])


@dataclass(frozen=True)
class Served:
    """The session's served world."""

    store: FeatureStore
    registry: ModelRegistry
    features: pa.Table
    model: Any
    runtime: dict[str, Any]
    server: ModelServer


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Served:
    root: Path = tmp_path_factory.mktemp("served")
    store = FeatureStore(str(root / "feature_store"))
    registry = ModelRegistry(str(root / "model_registry"))
    features = demo_features(CUSTOMERS)
    store.publish_partition(FEATURES, PARTITION, features.to_batches(), schema=features.schema)
    model = fitted_champion(features)
    version = register_champion(registry, model, features)
    request = ScoringRequest(FEATURES, SCORES, MODEL_NAME, version, PARTITION, workers=1)
    result = score_partition(
        store, registry, request, lineage={"run_id": "test"}, log=logging.getLogger(__name__)
    )
    server = ModelServer(store, registry, MODEL_NAME, feature_table=FEATURES)
    server.load()
    return Served(store, registry, features, model, result.runtime, server)
