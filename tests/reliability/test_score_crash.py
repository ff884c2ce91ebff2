"""SIGKILL BatchScoreOperator (champion scores, then the challenger's shadow scores, both
published through the feature store) at seeded random instants while readers read both
tables: every read is one whole version, and the next normal run cleans up."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import pyarrow.compute as pc
import pytest

from airflow_mlops.demo.environment import connection_json
from airflow_mlops.models.registry import ModelRegistry
from airflow_mlops.scoring.shadow import shadow_mask
from airflow_mlops.store.feature_store import FeatureStore
from tests.reliability.crash_harness import (
    Inconsistent,
    Readers,
    WriterHost,
    crash_seed,
    hidden_temps,
    run_crash_trials,
    run_together,
    walk,
)
from tests.reliability.writers import (
    CHALLENGERS,
    DAY,
    FEATURES,
    MODEL,
    OUTPUT,
    SCORES,
    SHADOW,
    credit_features,
    small_model,
)

if TYPE_CHECKING:
    from pathlib import Path

    import pyarrow as pa

pytestmark = pytest.mark.slow

SEED = crash_seed(20260108)
ROWS = 400


def check_scores(table: pa.Table, expected_rows: dict[str, int], what: str) -> None:
    """One model version in every row, and the row count that version produces."""
    versions = pc.unique(table.column("model_version")).to_pylist()
    keys = pc.count_distinct(table.column("customer_id")).as_py()
    if (
        len(versions) != 1
        or table.num_rows != expected_rows.get(versions[0])
        or keys != table.num_rows
    ):
        raise Inconsistent(f"{what}: versions {versions}, {table.num_rows} rows, {keys} keys")


def debris(root: Path) -> list[str]:
    """Version dirs the refs do not keep (history, or retired within the operator store's
    60 s grace), and temp files of refs and views."""
    found = []
    for table in (SCORES, SHADOW):
        ref = json.loads((root / table / "_refs" / f"ds={DAY}.json").read_text())
        versions = root / table / "_versions" / f"ds={DAY}"
        found += sorted(set(os.listdir(versions)) - {*ref["history"], *ref["retired"]})
        found += hidden_temps(root / table, root / table / "_refs")
    return found


def test_sigkilled_batch_scoring_never_exposes_partial_scores(tmp_path: Path) -> None:
    root, registry_root = tmp_path / "store", tmp_path / "registry"
    store = FeatureStore(str(root))
    features = credit_features(ROWS, seed=1)
    store.publish_partition(FEATURES, DAY, features.to_batches(max_chunksize=97))
    registry = ModelRegistry(str(registry_root))
    for seed in range(4):
        model, contract = small_model(seed)
        registry.register(MODEL, model, input_contract=contract, output=OUTPUT)
    for alias, (version, _) in CHALLENGERS.items():
        registry.promote(MODEL, alias, version)
    keys = features.column("customer_id")
    shadow_rows = {
        version: pc.sum(shadow_mask(keys, fraction)).as_py()
        for version, fraction in CHALLENGERS.values()
    }
    env = {
        "AIRFLOW_CONN_FEATURE_STORE_DEFAULT": connection_json(
            "feature_store", extra={"root": str(root)}
        ),
        "AIRFLOW_CONN_MODEL_REGISTRY_DEFAULT": connection_json(
            "model_registry", extra={"root": str(registry_root)}
        ),
    }
    readers = Readers(
        {
            "scores": lambda: check_scores(
                store.read_partition(SCORES, DAY), dict.fromkeys(shadow_rows, ROWS), SCORES
            ),
            "shadow": lambda: check_scores(store.read_partition(SHADOW, DAY), shadow_rows, SHADOW),
        }
    )
    with WriterHost("tests.reliability.writers:batch_scorer", env=env) as host:
        host.warm(0)  # both tables exist before the readers start
        with readers:
            stats = run_crash_trials(
                host, seed=SEED, max_delay=0.3, debris=lambda: len(debris(root))
            )
        run_together(host, 999_999)  # the next normal run

    summary = f"{stats.summary()}; reads: {readers.summary()}"
    print(summary)
    assert readers.findings() == {}, summary
    assert min(t.good for t in readers.tallies.values()) > stats.trials, summary
    assert stats.publishes > 0, summary
    assert stats.debris > 0, summary
    assert debris(root) == [], summary
    # the run's staged shadow file is kept for retries (clean_staging removes it later);
    # killed tries left nothing else there
    staged = [p.name for p in walk(root / "_staging") if p.is_file()]
    assert staged == ["score-shadow.parquet"], summary
    final = store.manifest(SCORES, DAY)["lineage"]
    assert final["try_number"] == 999_999
    assert final["model"]["version"] == "v0004"  # 999_999 % 4 == 3
    check_scores(store.read_partition(SCORES, DAY), {"v0004": ROWS}, SCORES)
    check_scores(store.read_partition(SHADOW, DAY), shadow_rows, SHADOW)
