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

import pytest

from airflow_mlops.demo.credit_model import MODEL_NAME
from airflow_mlops.demo.synthetic import fitted_demo_model, register_champion, synthetic_customers
from airflow_mlops.models.registry import ModelRegistry
from airflow_mlops.scoring import ScoringRequest, score_partition
from airflow_mlops.serving.service import ModelServer
from airflow_mlops.store.feature_store import FeatureStore
from tests.serving.grpc_client import client, grpc_ports, stub  # noqa: F401 - fixtures

if TYPE_CHECKING:
    from pathlib import Path

    import pyarrow as pa

FEATURES = "customer_features"
SCORES = "customer_scores"
PARTITION = "2026-01-30"
#: customers in the served partition (online = batch compares every one)
CUSTOMERS = 12_000


#: ``rows`` synthetic customers of the demo contract (``seed``, ``first_id``)
demo_features = synthetic_customers


def fitted_champion(features: pa.Table) -> Any:
    """The demo pipeline (HGB, 20 iterations) fitted on labels drawn from the features."""
    return fitted_demo_model(features, max_iter=20)


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
