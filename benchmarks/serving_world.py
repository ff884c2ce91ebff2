"""The served world of the serving benchmark: a published ``customer_features`` partition, the
demo credit model registered as ``champion`` (its compiled runtime verified, as training
registers it), the registry's artifact for the other servers, and the request rows.

Also the feature index memory check (``index_memory``), run in a fresh interpreter.
"""

from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import Any

from airflow_mlops.demo.synthetic import synthetic_customers

FEATURES = "customer_features"
PARTITION = "2026-01-30"
#: rows the model is fitted on (the served partition's first rows)
TRAIN_ROWS = 20_000
#: request rows cycled through by the load generators
REQUEST_ROWS = 1_000


def build(workdir: Path, customers: int) -> dict[str, Any]:
    """Publish the partition, register the champion, write its artifact and the request rows.

    :returns: the store and registry roots, the model version and runtime check, the
        artifact's path and the request rows' path.
    """
    from airflow_mlops.demo.credit_model import MODEL_NAME
    from airflow_mlops.demo.synthetic import fitted_demo_model, register_champion
    from airflow_mlops.models.registry import ModelRegistry
    from airflow_mlops.store.feature_store import FeatureStore

    store_root, registry_root = workdir / "feature_store", workdir / "model_registry"
    store = FeatureStore(str(store_root))
    registry = ModelRegistry(str(registry_root))
    features = synthetic_customers(customers)
    store.publish_partition(FEATURES, PARTITION, features.to_batches(), schema=features.schema)
    model = fitted_demo_model(features.slice(0, TRAIN_ROWS))
    version = register_champion(registry, model, features)
    artifact = workdir / "model.joblib"  # the registry's verified artifact bytes, as a file
    artifact.write_bytes(registry.artifact_bytes(MODEL_NAME, version))
    rows = request_rows(features, model)
    rows_path = workdir / "request_rows.json"
    rows_path.write_text(json.dumps(rows))
    return {
        "store": str(store_root),
        "registry": str(registry_root),
        "model": MODEL_NAME,
        "version": version,
        "runtimes": registry.record(MODEL_NAME, version)["runtimes"],
        "artifact": str(artifact),
        "rows": str(rows_path),
        "customers": customers,
    }


def request_rows(features: Any, model: Any) -> list[dict[str, Any]]:
    """:data:`REQUEST_ROWS` customers drawn at random, each with its features and the
    scikit-learn probability (every server's answer is checked against it)."""
    import numpy as np

    from airflow_mlops.demo.credit_model import INPUT_CONTRACT

    rng = np.random.default_rng(7)
    picked = features.take(rng.choice(features.num_rows, REQUEST_ROWS, replace=False))
    frame = picked.to_pandas()
    probabilities = model.predict_proba(frame[INPUT_CONTRACT.names])[:, 1]
    rows = picked.to_pylist()
    for row, probability in zip(rows, probabilities.tolist(), strict=True):
        row["expected_probability"] = probability
    return rows


def index_memory(workdir: Path, rows: int, *, shuffled: bool) -> dict[str, Any]:
    """Load a :class:`FeatureIndex` of ``rows`` keys (a partition published in key order, or
    shuffled) and measure what it holds: its ``nbytes`` (Arrow columns plus the key index)
    and this process's RSS growth across the load, against the Arrow size of the columns.

    Run it in a fresh interpreter (``--child index``): RSS is only meaningful there.
    """
    import numpy as np
    import pyarrow as pa

    from airflow_mlops.serving.features import FeatureIndex
    from airflow_mlops.store.feature_store import FeatureStore

    store = FeatureStore(str(workdir / "index_store"))
    table = f"index_{'shuffled' if shuffled else 'sorted'}"
    for name, count in ((table, rows), ("index_warmup", 1_000)):
        if store.latest_partition(name) is None:
            data = synthetic_customers(count, seed=3)
            if shuffled:
                data = data.take(np.random.default_rng(1).permutation(count))
            store.publish_partition(name, PARTITION, data.to_batches(), schema=data.schema)
            del data
    FeatureIndex.load(store, "index_warmup", "customer_id")  # imports and first allocations
    gc.collect()
    pool = pa.default_memory_pool()
    pool.release_unused()
    before = _rss_bytes()
    index = FeatureIndex.load(store, table, "customer_id")
    gc.collect()
    pool.release_unused()
    after = _rss_bytes()
    arrow = index.data.nbytes
    return {
        "rows": index.data.num_rows,
        "shuffled": shuffled,
        "arrow_bytes": arrow,
        "index_nbytes": index.nbytes,
        "key_index_bytes": index.nbytes - arrow,
        "rss_delta_bytes": after - before,
        "arrow_pool_bytes": pool.bytes_allocated(),
        "arrow_pool_backend": pool.backend_name,
        "nbytes_ratio": index.nbytes / arrow,
        "rss_ratio": (after - before) / arrow,
    }


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def model_call_costs(world: dict[str, Any], repeat: int = 100) -> dict[str, Any]:
    """Seconds of one ``ServedModel.predict`` call (the micro-batcher's model call) of 1, 16
    and 64 rows, and of its parts on 64 rows: Arrow to pandas, the column transformer, the
    trees; each the best of ``repeat`` calls (the least disturbed by other jobs). In a fresh
    interpreter, one thread, the served model as the server loads it."""
    import time

    import pyarrow as pa

    from airflow_mlops.models.registry import ModelRegistry
    from airflow_mlops.scoring.batches import ROW_BLOCK
    from airflow_mlops.serving.service import ModelServer
    from airflow_mlops.store.feature_store import FeatureStore

    server = ModelServer(
        FeatureStore(world["store"]),
        ModelRegistry(world["registry"]),
        world["model"],
        feature_table=FEATURES,
    )
    state = server.load()
    model, index = state.model, state.index
    assert index is not None

    def best(call: Any) -> float:
        call()
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        return min(times)

    costs: dict[str, Any] = {"runtime": model.runtime["name"]}
    for rows in (1, 16, 64):
        features, _ = index.lookup(pa.array(range(1, rows + 1), pa.int64()))
        costs[f"predict_{rows}"] = best(lambda f=features: model.predict(f))
    names = model.contract.names
    block = features.select(names).slice(0, ROW_BLOCK)
    frame = block.to_pandas()
    scorer = model.scorer
    preprocess = getattr(scorer, "preprocess", None)
    costs["to_pandas_64"] = best(block.to_pandas)
    if preprocess is not None:  # the compiled runtime: scikit-learn's transformer, then trees
        matrix = preprocess.transform(frame)
        costs["transform_64"] = best(lambda: preprocess.transform(frame))
        costs["trees_64"] = best(lambda: scorer.positive_probability(matrix))
    return costs
