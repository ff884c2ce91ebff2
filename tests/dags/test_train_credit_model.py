"""train_credit_model run through Airflow after daily_customer_features."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from airflow_mlops.models.registry import ModelRegistry
from airflow_mlops.store.feature_store import FeatureStore

pytestmark = pytest.mark.airflow


@pytest.fixture
def bag(airflow_db, small_warehouse, repo):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(repo / "dags"))
    assert bag.import_errors == {}
    return bag


def test_training_registers_champion_and_challenger_with_the_whole_sweep(
    bag, registry_root, store_root
):
    features = bag.get_dag("daily_customer_features").test(
        logical_date=dt.datetime(2026, 1, 22, 3, tzinfo=dt.UTC)
    )
    assert features.state == "success"

    run = bag.get_dag("train_credit_model").test(
        logical_date=None,
        run_after=dt.datetime(2026, 1, 22, 12, tzinfo=dt.UTC),
        run_conf={"partition": "2026-01-21"},
    )
    assert run.state == "success"

    registry = ModelRegistry(str(registry_root))
    aliases = registry.aliases("credit_risk")
    assert {"champion", "challenger"} <= set(aliases)
    champion = registry.record("credit_risk", aliases["champion"])
    challenger = registry.record("credit_risk", aliases["challenger"])
    assert champion["training_data"]["partitions"] == ["2026-01-21"]
    assert len(champion["params"]["sweep"]) == 4
    assert all("cv_roc_auc_mean" in c["metrics"] for c in champion["params"]["sweep"])
    assert champion["metrics"]["cv_roc_auc_mean"] >= challenger["metrics"]["cv_roc_auc_mean"]
    assert champion["output"]["threshold"] == 0.3
    loaded = registry.load("credit_risk", alias="champion")
    assert hasattr(loaded.model, "predict_proba")
    store = FeatureStore(str(store_root))
    profile = json.loads(store.read_sidecar("customer_features", "profile-credit_risk.json"))
    assert profile["rows"] == champion["training_data"]["rows"]
