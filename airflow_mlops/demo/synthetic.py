"""Synthetic customers of the demo contract and a fitted, registered demo model, for tests
and benchmarks that need a served world without running the pipelines (no warehouse, no
Airflow): deterministic per seed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_mlops.demo.credit_model import (
    CUSTOMER_FEATURES,
    INPUT_CONTRACT,
    MODEL_NAME,
    OUTPUT,
    make_pipeline,
)

if TYPE_CHECKING:
    import pyarrow as pa

    from airflow_mlops.models.registry import ModelRegistry

#: the demo's champion family and grid point (``GRID`` of :mod:`airflow_mlops.demo.credit_model`)
CHAMPION = {"family": "hgb", "max_leaf_nodes": 15, "learning_rate": 0.1}


def synthetic_customers(rows: int, *, seed: int = 11, first_id: int = 1) -> pa.Table:
    """``rows`` customers of the demo contract (``customer_features``), keys ``first_id`` on,
    deterministic per ``seed``; about 2 % of ``debt_to_income`` null (its one nullable
    feature)."""
    import numpy as np
    import pyarrow as pa

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


def fitted_demo_model(features: pa.Table, *, max_iter: int | None = None) -> Any:
    """The demo pipeline (:data:`CHAMPION`; ``max_iter`` boosting iterations, default the
    demo's) fitted on labels drawn from ``features`` (more debt per income and a lower
    history score, more defaults)."""
    import numpy as np

    frame = features.select(INPUT_CONTRACT.names).to_pandas()
    rng = np.random.default_rng(5)
    logit = -1.5 + 3.0 * frame["debt"] / frame["income"] - 0.004 * (frame["history_score"] - 575)
    labels = (rng.random(len(frame)) < 1 / (1 + np.exp(-logit))).astype(np.int64)
    model = make_pipeline(CHAMPION)
    if max_iter is not None:
        model.set_params(model__max_iter=max_iter)
    return model.fit(frame, labels)


def register_champion(registry: ModelRegistry, model: Any, features: pa.Table) -> str:
    """Register ``model`` as ``champion`` with its compiled runtime checked on the first 2,000
    rows of ``features`` (as training does); its version."""
    from airflow_mlops.models.accelerate import registration_check

    frame = features.slice(0, 2_000).select(INPUT_CONTRACT.names).to_pandas()
    threshold = OUTPUT["threshold"]
    assert isinstance(threshold, float)
    runtimes = registration_check(model, frame, threshold=threshold)
    record = registry.register(
        MODEL_NAME,
        model,
        input_contract=INPUT_CONTRACT,
        output=OUTPUT,
        runtimes=runtimes,
        aliases=["champion"],
    )
    return str(record["version"])
