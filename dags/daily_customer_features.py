"""
### daily_customer_features

Per-customer credit-risk features, one partition a day, published to the feature table
`customer_features` that the scoring DAG and the serving layer read.

`extract_customers` and `extract_transactions` stream from the `warehouse` connection
into staged Parquet; `build_features` computes 7- and 30-day transaction features with
DuckDB; `publish` checks the table's contract and atomically publishes the partition;
`check_feature_drift` compares it with the previous day (PSI per feature, KS/chi-square
beside it) and links an HTML report from the task (warn only: it never blocks).

**Which day?** The 03:00 run publishes the previous day, the last complete one
(`partition = logical_date - 1 day`). A manual run may pick its day with the
`partition` param; a run triggered without a logical date falls back to its
`run_after`. Re-running a day replaces it exactly; the previous version is kept.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from airflow.sdk import DAG

from airflow_mlops.demo.credit_model import CUSTOMER_FEATURES
from airflow_mlops.operators import (
    DriftCheckOperator,
    PublishFeaturesOperator,
    SqlExtractOperator,
    SqlTransformOperator,
    partition_param,
)

SQL_DIR = os.environ.get("AIRFLOW_MLOPS_SQL_DIR", str(Path(__file__).resolve().parents[1] / "sql"))

with DAG(
    dag_id="daily_customer_features",
    description="Daily per-customer credit-risk features → feature table customer_features",
    schedule="0 3 * * *",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=5)},
    tags=["features", "batch"],
    template_searchpath=[SQL_DIR],
    params={"partition": partition_param()},
    doc_md=__doc__,
) as dag:
    extract_customers = SqlExtractOperator(
        task_id="extract_customers",
        conn_id="warehouse",
        sql="extract_customers.sql",
        parameters={"partition": "{{ partition }}"},
    )
    extract_transactions = SqlExtractOperator(
        task_id="extract_transactions",
        conn_id="warehouse",
        sql="extract_transactions.sql",
        parameters={
            "window_start": "{{ macros.ds_add(partition, -29) }}",
            "window_end": "{{ macros.ds_add(partition, 1) }}",
        },
    )
    build_features = SqlTransformOperator(
        task_id="build_features",
        sql="customer_features.sql",
        inputs={
            "customers": extract_customers.output,
            "transactions": extract_transactions.output,
        },
        parameters={"partition": "{{ partition }}"},
    )
    publish = PublishFeaturesOperator(
        task_id="publish",
        table="customer_features",
        source=build_features.output,
        contract=CUSTOMER_FEATURES,
        unique_key="customer_id",  # the serving layer looks customers up by id
    )
    check_drift = DriftCheckOperator(
        task_id="check_feature_drift",
        table="customer_features",
        reference="previous",
        exclude=["customer_id"],
        thresholds={"debt_to_income": (0.05, 0.2)},
        mode="warn",
    )
    [extract_customers, extract_transactions] >> build_features >> publish >> check_drift
