"""daily_customer_scoring through Airflow, after daily_customer_features and training."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow.compute as pc
import pytest

from airflow_mlops.demo.credit_model import INPUT_CONTRACT, MODEL_NAME, OUTPUT
from airflow_mlops.drift.stats import histogram_counts, psi
from airflow_mlops.models.registry import ModelRegistry
from airflow_mlops.scoring.shadow import shadow_mask
from airflow_mlops.store.feature_store import FeatureStore

pytestmark = pytest.mark.airflow

DAYS = ["2026-01-15", "2026-01-16"]


class ExplodingModel:
    """A challenger whose scoring always fails."""

    classes_ = np.array([0, 1])

    def predict_proba(self, frame):
        raise RuntimeError("challenger exploded")


def _at(day: str, hour: int) -> dt.datetime:
    return dt.datetime.fromisoformat(day).replace(hour=hour, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def bag(airflow_db, small_warehouse, repo):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(repo / "dags"))
    assert bag.import_errors == {}
    return bag


@pytest.fixture(scope="module")
def trained(bag, small_warehouse):
    """Two feature days published, champion and challenger trained on the first."""
    for day in DAYS:
        run = bag.get_dag("daily_customer_features").test(
            logical_date=_at(day, 3) + dt.timedelta(days=1)
        )
        assert run.state == "success"
    run = bag.get_dag("train_credit_model").test(
        logical_date=None, run_after=_at(DAYS[0], 12), run_conf={"partition": DAYS[0]}
    )
    assert run.state == "success"


def _score(bag, day: str):
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(bag.dag_folder)).get_dag("daily_customer_scoring")
    return dag.test(logical_date=None, run_after=_at(day, 6), run_conf={"partition": day})


def _xcom(run) -> dict:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        (row,) = session.scalars(
            XComModel.get_many(run_id=run.run_id, task_ids="score", key="return_value")
        ).all()
        return XComModel.deserialize_value(row)


@pytest.mark.parametrize("day", DAYS)
def test_scores_every_customer_of_the_partition_with_the_champion(
    bag, trained, store_root, registry_root, day
):
    run = _score(bag, day)
    assert run.state == "success"
    store = FeatureStore(str(store_root))
    registry = ModelRegistry(str(registry_root))
    champion = registry.load(MODEL_NAME, alias="champion")
    features = store.read_partition("customer_features", day)
    scores = store.read_partition("customer_scores", day)

    assert scores.num_rows == features.num_rows
    assert scores["customer_id"].to_pylist() == features["customer_id"].to_pylist()
    expected = champion.model.predict_proba(features.select(INPUT_CONTRACT.names).to_pandas())
    # the compiled runtime (when verified) agrees with scikit-learn within 1e-12
    np.testing.assert_allclose(
        scores["default_probability"].to_numpy(), expected[:, 1], rtol=0, atol=1e-12
    )
    declined = pc.greater(scores["default_probability"], OUTPUT["threshold"])
    assert pc.all(pc.equal(pc.equal(scores["decision"], "decline"), declined)).as_py()
    assert set(scores["model_version"].to_pylist()) == {champion.version}


def test_shadow_report_matches_a_direct_computation(bag, trained, store_root, registry_root):
    day = DAYS[1]
    run = _score(bag, day)
    assert run.state == "success"
    store = FeatureStore(str(store_root))
    champion = store.read_partition("customer_scores", day)
    shadow = store.read_partition("customer_scores_shadow", day)
    report = store.manifest("customer_scores_shadow", day)["lineage"]["shadow_report"]

    sampled = champion.filter(shadow_mask(champion["customer_id"], 0.5, seed=0))
    assert shadow["customer_id"].to_pylist() == sampled["customer_id"].to_pylist()
    assert 0.4 < shadow.num_rows / champion.num_rows < 0.6
    a = sampled["default_probability"].to_numpy()
    b = shadow["default_probability"].to_numpy()
    assert report["status"] == "ok"
    assert report["rows_compared"] == len(a)
    assert report["mean_abs_delta"] == pytest.approx(np.abs(a - b).mean(), rel=1e-12)
    exact_p95 = np.quantile(np.abs(a - b), 0.95, method="inverted_cdf")
    assert 0 <= report["p95_abs_delta"] - exact_p95 <= 1e-5  # upper edge of a 1e-5 bin
    agreement = np.mean(sampled["decision"].to_numpy() == shadow["decision"].to_numpy())
    assert report["decision_agreement_rate"] == pytest.approx(agreement)
    edges = np.linspace(0, 1, 21)
    assert report["psi"] == pytest.approx(
        psi(histogram_counts(a, edges), histogram_counts(b, edges))
    )
    assert set(report["latency"]) == {"champion", "challenger"}
    summary = _xcom(run)["shadow"]
    assert summary["rows_compared"] == report["rows_compared"]


def test_rerun_is_idempotent(bag, trained, store_root):
    day = DAYS[0]
    store = FeatureStore(str(store_root))
    assert _score(bag, day).state == "success"
    first = {t: store.manifest(t, day) for t in ("customer_scores", "customer_scores_shadow")}
    assert _score(bag, day).state == "success"
    for table, manifest in first.items():
        again = store.manifest(table, day)
        assert again["version"] != manifest["version"]
        assert again["content_sha256"] == manifest["content_sha256"]


def test_a_challenger_that_raises_leaves_the_champion_correct(
    bag, trained, store_root, registry_root
):
    registry = ModelRegistry(str(registry_root))
    registry.register(
        MODEL_NAME,
        ExplodingModel(),
        input_contract=INPUT_CONTRACT,
        output=OUTPUT,
        aliases=["challenger"],
    )
    try:
        day = DAYS[0]
        store = FeatureStore(str(store_root))
        before = store.manifest("customer_scores", day)["content_sha256"]
        run = _score(bag, day)
        assert run.state == "success"
        assert store.manifest("customer_scores", day)["content_sha256"] == before
        shadow = _xcom(run)["shadow"]
        assert shadow["status"] == "failed"
        assert "challenger exploded" in shadow["error"]
    finally:
        registry.rollback(MODEL_NAME, "challenger")


def test_a_partition_scored_in_shards_holds_the_same_scores(bag, trained, store_root):
    from airflow.dag_processing.dagbag import DagBag

    day = DAYS[1]
    store = FeatureStore(str(store_root))
    assert _score(bag, day).state == "success"
    whole = store.read_partition("customer_scores", day).sort_by("customer_id")

    dag = DagBag(dag_folder=str(bag.dag_folder)).get_dag("score_large_partition")
    run = dag.test(logical_date=None, run_after=_at(day, 7), run_conf={"partition": day})
    assert run.state == "success"
    sharded = store.read_partition("customer_scores", day)
    manifest = store.manifest("customer_scores", day)
    assert [p["shard"]["index"] for p in manifest["lineage"]["parts"]] == [0, 1, 2, 3]
    assert sharded.sort_by("customer_id").equals(whole)
