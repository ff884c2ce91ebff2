from __future__ import annotations

import pyarrow as pa

from airflow_mlops.demo.credit_model import ENTITY_KEY, INPUT_CONTRACT, LABEL, OUTPUT, train
from airflow_mlops.demo.warehouse import WarehouseSpec, generate
from airflow_mlops.models.training import labelled_frame


def _tables():
    tables = generate(WarehouseSpec(customers=1_500, days=30, seed=11))
    customers = tables["customers"]
    features = customers.assign(
        debt_to_income=customers.debt / customers.income,
        txn_count_7d=1,
        txn_amount_7d=10.0,
        txn_count_30d=4,
        txn_amount_30d=40.0,
        txn_max_amount_30d=20.0,
    )
    return pa.Table.from_pandas(features, preserve_index=False), pa.Table.from_pandas(
        tables["outcomes"], preserve_index=False
    )


def test_training_frame_joins_labels_in_contract_order():
    features, outcomes = _tables()
    x, y = labelled_frame(
        features,
        outcomes,
        entity_key=ENTITY_KEY,
        label_column=LABEL,
        feature_names=INPUT_CONTRACT.names,
    )
    assert list(x.columns) == INPUT_CONTRACT.names
    assert len(x) == len(y) == features.num_rows


def test_train_sweeps_both_families_and_learns_something():
    features, outcomes = _tables()
    candidates = train(features, outcomes, folds=2)
    assert {c.params["family"] for c in candidates} == {"hgb", "logreg"}
    assert candidates[0].metrics["cv_roc_auc_mean"] > 0.65
    assert OUTPUT["threshold"] == 0.3
