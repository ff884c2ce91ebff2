"""
### score_large_partition

Scores one large `customer_features` partition fanned out over shards: each mapped
`score_shard` task scores the customers whose key hashes to its shard (on whichever
worker is free) and stages its scores; `publish_scores` then publishes all shards as one
atomic version of the `customer_scores` partition. Trigger it manually with the
`partition` param; raise `NUM_SHARDS` with the partition's size and the worker count.
"""

from __future__ import annotations

import datetime as dt

from airflow.sdk import DAG

from airflow_mlops.demo.credit_model import MODEL_NAME
from airflow_mlops.operators import BatchScoreOperator, PublishFeaturesOperator, partition_param

NUM_SHARDS = 4

with DAG(
    dag_id="score_large_partition",
    description="Score one customer_features partition in shards, publish the scores at once",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=5)},
    tags=["scoring", "batch"],
    params={"partition": partition_param("The day to score. Empty: the day before the run.")},
    doc_md=__doc__,
) as dag:
    shards = BatchScoreOperator.partial(
        task_id="score_shard",
        features_table="customer_features",
        model_name=MODEL_NAME,
        output_table="customer_scores",
        num_shards=NUM_SHARDS,
        workers=1,
    ).expand(shard=list(range(NUM_SHARDS)))
    PublishFeaturesOperator(task_id="publish_scores", table="customer_scores", source=shards.output)
