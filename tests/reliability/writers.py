"""The writers the crash and concurrency tests kill: factories for ``writer_host``.

Each factory runs once in the writer host (imports, connections, models) and returns
``write(tag)``, one publish through the same engine calls (or operators) production uses.
Every publish is recognisable from its ``tag``, so a reader can tell a whole version from
a partial or mixed one.
"""

from __future__ import annotations

from collections import defaultdict
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    import pyarrow as pa

FEATURES, SCORES, MODEL = "customer_features", "customer_scores", "credit_risk"
SHADOW = f"{SCORES}_shadow"
DAY = "2026-01-04"
#: champion version and challenger alias by ``tag % 4``; each challenger its own fraction
CHAMPIONS = ("v0001", "v0002", "v0003", "v0004")
CHALLENGERS = {
    "c0": ("v0002", 0.3),
    "c1": ("v0003", 0.5),
    "c2": ("v0004", 0.7),
    "c3": ("v0001", 0.9),
}
OUTPUT = {
    "score": "default_probability",
    "threshold": 0.3,
    "positive": "decline",
    "negative": "approve",
    "entity_key": "customer_id",
}


def rows_for(tag: int) -> int:
    """The row count of a feature-table version: a function of its tag."""
    return 700 + (tag * 37) % 1500


def tagged_batches(tag: int) -> list[pa.RecordBatch]:
    """A version whose every row carries ``tag``, in batches of 97 rows."""
    import pyarrow as pa

    total = rows_for(tag)
    return [
        pa.record_batch({"version_tag": [tag] * (stop - start), "x": list(range(start, stop))})
        for start, stop in ((i, min(i + 97, total)) for i in range(0, total, 97))
    ]


def feature_publisher(
    root: str, table: str, day: str, keep: int, grace: float, object_store: bool = False
) -> Callable[[int], object]:
    """``FeatureStore.publish_partition`` of a tagged version (several files per version)."""
    import pyarrow.fs  # noqa: F401 - imported before forking, so kills land in publishes
    import pyarrow.parquet  # noqa: F401

    from airflow_mlops.store.feature_store import FeatureStore

    if object_store:
        from tests.reliability.object_store import object_store_filesystem

        store = FeatureStore(
            root, keep_versions=keep, retention_grace=grace, filesystem=object_store_filesystem()
        )
    else:
        store = FeatureStore(root, keep_versions=keep, retention_grace=grace)

    def write(tag: int) -> object:
        return store.publish_partition(table, day, tagged_batches(tag), max_rows_per_file=400)

    return write


def delta_publisher(
    root: str, table: str, day: str, keep: int, grace: float, storage_options: str = ""
) -> Callable[[int], object]:
    """``FeatureStore.publish_partition`` of a tagged version into a Delta-format store
    (several files per version); ``storage_options`` is JSON, for an object store.

    Nothing here calls delta-rs: its runtime does not survive ``fork()`` after first use, so
    each forked child is the first to use it."""
    import json

    import pyarrow.fs  # noqa: F401 - imported before forking, so kills land in publishes
    import pyarrow.parquet  # noqa: F401

    from airflow_mlops.store.feature_store import FeatureStore

    store = FeatureStore(
        root,
        keep_versions=keep,
        retention_grace=grace,
        table_format="delta",
        storage_options=json.loads(storage_options) if storage_options else None,
    )

    def write(tag: int) -> object:
        return store.publish_partition(table, day, tagged_batches(tag), max_rows_per_file=400)

    return write


def task_context(task_id: str, try_number: int, partition: str = DAY) -> dict[str, Any]:
    """The parts of the task runner's context the operators use (as tests/operators do)."""
    ti = SimpleNamespace(
        dag_id="crash_dag",
        run_id="manual__2026-01-05T03:00:00+00:00",
        task_id=task_id,
        try_number=try_number,
        map_index=-1,
        xcom_push=lambda **kwargs: None,
    )
    return {
        "ti": ti,
        "params": {},
        "partition": partition,
        "outlet_events": defaultdict(lambda: SimpleNamespace(extra=None)),
    }


def _allow_direct_execute() -> None:
    from airflow.sdk.bases.operator import ExecutorSafeguard

    ExecutorSafeguard.test_mode = True


def batch_scorer() -> Callable[[int], object]:
    """``BatchScoreOperator.execute``: champion ``CHAMPIONS[tag % 4]`` scores the features
    into ``customer_scores``, challenger ``c<tag % 4>`` a sample into the shadow table.

    Connections come from ``AIRFLOW_CONN_*`` in the environment.
    """
    import pandas  # noqa: F401 - imported before forking
    import sklearn.linear_model  # noqa: F401

    from airflow_mlops.operators import BatchScoreOperator

    _allow_direct_execute()

    def write(tag: int) -> object:
        operator = BatchScoreOperator(
            task_id="score",
            features_table=FEATURES,
            model_name=MODEL,
            output_table=SCORES,
            model_version=CHAMPIONS[tag % 4],
            challenger_alias=f"c{tag % 4}",
            shadow_fraction=CHALLENGERS[f"c{tag % 4}"][1],
            workers=1,
            batch_size=128,
            runtime="sklearn",
            partition=DAY,
        )
        return operator.execute(task_context("score", tag))

    return write


def drift_reporter() -> Callable[[int], object]:
    """``BuildDriftProfileOperator`` (profile of day ``PROFILE_DAYS[tag % 3]``, stored beside
    the table) then ``DriftCheckOperator`` against it (report JSON + HTML beside ``DAY``),
    both as try ``tag``."""
    import airflow_mlops.drift.compare
    import airflow_mlops.drift.report  # noqa: F401 - imported before forking
    from airflow_mlops.operators.drift_check import BuildDriftProfileOperator, DriftCheckOperator

    _allow_direct_execute()

    def write(tag: int) -> object:
        BuildDriftProfileOperator(
            task_id="profile",
            table=FEATURES,
            profile_name="reference",
            exclude=["customer_id"],
            partition=PROFILE_DAYS[tag % 3],
        ).execute(task_context("profile", tag, PROFILE_DAYS[tag % 3]))
        return DriftCheckOperator(
            task_id="drift",
            table=FEATURES,
            reference="profile",
            profile_name="reference",
            exclude=["customer_id"],
            mode="warn",
            partition=DAY,
        ).execute(task_context("drift", tag))

    return write


PROFILE_DAYS = ("2026-01-01", "2026-01-02", "2026-01-03")


def registry_writer(root: str) -> Callable[[int], object]:
    """Register a version (alias ``challenger`` moves to it), promote ``champion`` to it,
    and on every third tag roll ``champion`` back."""
    from airflow_mlops.models.registry import ModelRegistry

    registry = ModelRegistry(root)
    model, contract = small_model()

    def write(tag: int) -> object:
        record = registry.register(
            MODEL,
            model,
            input_contract=contract,
            output=OUTPUT,
            tags={"tag": str(tag)},
            aliases=["challenger"],
        )
        state = registry.promote(MODEL, "champion", record["version"])
        if tag % 3 == 0:
            state = registry.rollback(MODEL, "champion")
        return state

    return write


def alias_promoter(root: str, object_store: bool = False) -> Callable[[int], object]:
    """``promote(MODEL, "champion", f"v{tag:04d}")``: the tag names the version."""
    from airflow_mlops.models.registry import ModelRegistry

    if object_store:
        from tests.reliability.object_store import object_store_filesystem

        registry = ModelRegistry(root, filesystem=object_store_filesystem())
    else:
        registry = ModelRegistry(root)

    def write(tag: int) -> object:
        return registry.promote(MODEL, "champion", f"v{tag:04d}")

    return write


def small_model(seed: int = 0, features: pa.Table | None = None) -> tuple[Any, Any]:
    """A fitted logistic-regression pipeline on ``income, debt, age, region`` and its contract."""
    import numpy as np
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from airflow_mlops.contract import FeatureContract

    contract = FeatureContract.from_dict(
        {
            "income": ("float64", False),
            "debt": ("float64", False),
            "age": ("int64", False),
            "region": ("string", False),
        }
    )
    table = features if features is not None else credit_features(200, seed)
    frame = table.select(contract.names).to_pandas()
    rng = np.random.default_rng(seed)
    labels = pd.Series((rng.random(len(frame)) < 0.3).astype(int))
    labels.iloc[:2] = [0, 1]
    model = Pipeline(
        [
            (
                "features",
                ColumnTransformer(
                    [
                        ("numeric", StandardScaler(), ["income", "debt", "age"]),
                        ("region", OneHotEncoder(handle_unknown="ignore"), ["region"]),
                    ]
                ),
            ),
            ("classifier", LogisticRegression(C=0.1 + seed, max_iter=200)),
        ]
    ).fit(frame, labels)
    return model, contract


def credit_features(rows: int, seed: int, first_id: int = 1_000) -> pa.Table:
    """``customer_id, income, debt, age, region`` for ``rows`` customers (deterministic)."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "customer_id": pa.array(np.arange(first_id, first_id + rows), pa.int64()),
            "income": rng.normal(50_000, 15_000, rows).clip(8_000).round(2),
            "debt": rng.gamma(2.0, 10_000, rows).round(2),
            "age": rng.integers(21, 75, rows),
            "region": pa.array(rng.choice(["north", "south", "east", "west"], rows).tolist()),
        }
    )
