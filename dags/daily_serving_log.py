"""
### daily_serving_log

Publishes each day of live traffic of the credit-risk model's online servers
(`airflow-mlops serve credit_risk …`, which append what they answer to the store's serving
log every minute) and checks it:

- `publish_requests` publishes the day's answered rows (features, score, decision, model
  version, latency) as a partition of `credit_risk_serving_log`; `check_live_drift`
  compares the live inputs with the training data's drift profile (the one
  `train_credit_model` stores beside `customer_features`), in `warn` mode.
- `publish_shadow` publishes the day's champion/challenger comparisons (servers run with
  `--shadow-alias challenger`) as `credit_risk_shadow_log`; `compare_shadow` reports mean
  and p95 |Δ| of the scores, decision agreement and latency p50/p95 per model.

A day without traffic (or without a challenger) skips its branch. Runs at 00:30 for the
previous day (UTC); rerun or backfill any day with the `partition` param: the publish is
idempotent and picks up every segment the day has.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from airflow_mlops.demo.credit_model import INPUT_CONTRACT, MODEL_NAME
from airflow_mlops.operators import (
    DriftCheckOperator,
    PublishServingLogOperator,
    ShadowReportOperator,
    partition_param,
    serving_log_table,
)

with DAG(
    dag_id="daily_serving_log",
    description="Publish the online servers' daily log; live drift and shadow comparison",
    schedule="30 0 * * *",
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=5)},
    tags=["serving", "monitoring"],
    params={"partition": partition_param("The day of traffic to publish. Empty: yesterday.")},
    doc_md=__doc__,
) as dag:
    requests = PublishServingLogOperator(task_id="publish_requests", model_name=MODEL_NAME)
    live_drift = DriftCheckOperator(
        task_id="check_live_drift",
        table=serving_log_table(MODEL_NAME),
        reference="profile",
        profile_table="customer_features",
        profile_name=MODEL_NAME,
        columns=INPUT_CONTRACT.names,
        mode="warn",
    )
    shadow = PublishServingLogOperator(
        task_id="publish_shadow", model_name=MODEL_NAME, log="shadow"
    )
    compare = ShadowReportOperator(
        task_id="compare_shadow", table=serving_log_table(MODEL_NAME, "shadow")
    )
    requests >> live_drift
    shadow >> compare
