"""
### daily_customer_scoring

Scores the credit-risk model on every `customer_features` partition that
`daily_customer_features` publishes: the DAG is scheduled on the feature table's Asset,
and reads the published partitions from the triggering asset events (several publishes,
e.g. a backfill, fan out as one mapped scoring task per partition).

The `champion` writes `customer_scores` (customer, `default_probability`, approve/decline
decision, model name and version); the `challenger` shadow-scores half of the customers
(the same half on every rerun) into `customer_scores_shadow`, with a comparison report in
that partition's manifest and in XCom. A failing challenger never fails the run.
`check_score_drift` then compares each day's score distribution with the previous day's.
A manual run scores the day given in the `partition` param.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG, task

from airflow_mlops.demo.credit_model import MODEL_NAME
from airflow_mlops.hooks.feature_store import feature_table_asset
from airflow_mlops.operators import (
    BatchScoreOperator,
    DriftCheckOperator,
    partition_param,
    partitions_to_process,
)

with DAG(
    dag_id="daily_customer_scoring",
    description="Score customer_features partitions as they are published (champion + shadow)",
    schedule=[feature_table_asset("customer_features")],
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=5)},
    tags=["scoring", "batch"],
    params={
        "partition": partition_param(
            "The day to score. Empty: the partitions the triggering events name."
        )
    },
    doc_md=__doc__,
) as dag:

    @task
    def partitions(**context: object) -> list[str]:
        """The partitions this run scores (one mapped scoring task each)."""
        return partitions_to_process(context)

    days = partitions()
    score = BatchScoreOperator.partial(
        task_id="score",
        features_table="customer_features",
        model_name=MODEL_NAME,
        output_table="customer_scores",
        challenger_alias="challenger",
        shadow_fraction=0.5,
        workers=2,
        # a mapped task's outlets must be declared here, where the DAG is parsed
        outlets=[
            feature_table_asset("customer_scores"),
            feature_table_asset("customer_scores_shadow"),
        ],
    ).expand(partition=days)
    check_drift = DriftCheckOperator.partial(
        task_id="check_score_drift",
        table="customer_scores",
        reference="previous",
        columns=["default_probability", "decision"],
        mode="warn",
        outlets=[feature_table_asset("customer_scores_drift")],
    ).expand(partition=days)
    score >> check_drift
