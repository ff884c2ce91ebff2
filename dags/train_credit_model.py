"""
### train_credit_model

Trains the demo credit-risk model on one day of `customer_features` joined to the
warehouse's `outcomes` labels: a small sweep of HistGradientBoosting and logistic
regression pipelines (scaled numerics + one-hot region), each cross-validated. The best
candidate is registered as `champion`, the runner-up as `challenger`; every record keeps
the whole sweep's params and metrics. `profile_training_data` then stores a drift profile
of the training day (`profile_name="credit_risk"`), the reference drift checks can use.
Run it manually and pick the training day with the `partition` param.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from airflow.sdk import DAG

from airflow_mlops.demo.credit_model import (
    GRID,
    INPUT_CONTRACT,
    LABEL,
    MODEL_NAME,
    OUTPUT,
    make_pipeline,
)
from airflow_mlops.operators import (
    BuildDriftProfileOperator,
    SqlExtractOperator,
    TrainModelOperator,
    partition_param,
)

SQL_DIR = os.environ.get("AIRFLOW_MLOPS_SQL_DIR", str(Path(__file__).resolve().parents[1] / "sql"))

with DAG(
    dag_id="train_credit_model",
    description="Sweep, cross-validate and register the credit-risk model (champion, challenger)",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    default_args={"retries": 1, "retry_delay": dt.timedelta(minutes=5)},
    tags=["models", "batch"],
    template_searchpath=[SQL_DIR],
    params={
        "partition": partition_param(
            "The customer_features day to train on. Empty: the day before the run.",
            title="Training partition",
        )
    },
    doc_md=__doc__,
) as dag:
    labels = SqlExtractOperator(
        task_id="extract_outcomes", conn_id="warehouse", sql="extract_outcomes.sql"
    )
    train = TrainModelOperator(
        task_id="train_and_register",
        features_table="customer_features",
        labels=labels.output,
        label_column=LABEL,
        model_name=MODEL_NAME,
        make_estimator=make_pipeline,
        grid=GRID,
        input_contract=INPUT_CONTRACT,
        model_output=OUTPUT,
    )
    # the reference the daily drift checks can compare against: the training data
    profile = BuildDriftProfileOperator(
        task_id="profile_training_data",
        table="customer_features",
        profile_name=MODEL_NAME,
        exclude=["customer_id"],
    )
    train >> profile
