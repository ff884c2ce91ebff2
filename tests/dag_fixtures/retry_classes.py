"""Test fixture DAG: one task per error class, each with one retry and no retry delay.

``tests/dags/test_retry_classes.py`` sets up what each task trips over (connections,
damaged files, a staged file on a full disk) and checks, per task, the final state and
the try number: non-retryable errors fail on try 1, retryable ones are retried (try 2).
Airflow's failure and retry callbacks append each try's exception (and its cause) as a
JSON line to the file named by ``RETRY_CLASSES_RECORD``, when set.

Connections the test points elsewhere: ``feature_store_default`` (a fresh store),
``retry_registry`` (a registry with prepared models), ``retry_unreachable`` (PostgreSQL on
a closed port), ``retry_missing_sqlite`` (a SQLite file that does not exist).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import Any

from airflow.sdk import DAG, Param, task

from airflow_mlops.contract import FeatureContract
from airflow_mlops.operators import (
    BatchScoreOperator,
    PublishFeaturesOperator,
    SqlExtractOperator,
    SqlTransformOperator,
    partition_param,
)

REGISTRY = "retry_registry"


def _record(event: str) -> Any:
    def callback(context: Any) -> None:
        path = os.environ.get("RETRY_CLASSES_RECORD")
        if not path:
            return
        error = context.get("exception")
        line = {
            "task_id": context["ti"].task_id,
            "try_number": context["ti"].try_number,
            "event": event,
            "error": type(error).__name__,
            "cause": type(getattr(error, "__cause__", None)).__name__,
        }
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")

    return callback


def _score(task_id: str, model_name: str, features_table: str = "retry_features") -> None:
    BatchScoreOperator(
        task_id=task_id,
        features_table=features_table,
        model_name=model_name,
        output_table="retry_scores",
        workers=1,
        model_registry_conn_id=REGISTRY,
    )


with DAG(
    dag_id="retry_classes",
    schedule=None,
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    catchup=False,
    default_args={
        "retries": 1,
        "retry_delay": dt.timedelta(0),
        "on_failure_callback": _record("failed"),
        "on_retry_callback": _record("up_for_retry"),
    },
    params={"partition": partition_param(), "not_parquet": Param("", type="string")},
    tags=["test"],
):
    staged = SqlExtractOperator(task_id="extract_ok", conn_id="warehouse", sql="SELECT 1 AS a")

    # -- not retryable: bad arguments, data, schema, configuration, damaged files --------
    PublishFeaturesOperator(task_id="argument_error", table="retry_t", source="")
    SqlExtractOperator(
        task_id="partition_error",
        conn_id="warehouse",
        sql="SELECT 1 AS a",
        partition="{{ 'not-a-day' }}",
    )
    PublishFeaturesOperator(
        task_id="contract_error",
        table="retry_contract",
        source=staged.output,
        contract=FeatureContract.from_dict({"b": "int64"}),
    )
    SqlExtractOperator(
        task_id="empty_input_error",
        conn_id="warehouse",
        sql="SELECT 1 AS a WHERE 0",
        allow_empty=False,
    )
    SqlExtractOperator(
        task_id="source_query_error", conn_id="warehouse", sql="SELECT * FROM retry_no_such_table"
    )
    SqlExtractOperator(
        task_id="source_configuration_error", conn_id="retry_missing_sqlite", sql="SELECT 1"
    )
    SqlTransformOperator(
        task_id="transform_error",
        sql="SELECT no_such_column FROM src",
        inputs={"src": staged.output},
    )
    PublishFeaturesOperator(
        task_id="store_corruption_ref", table="retry_damaged", source=staged.output
    )
    _score("store_corruption_alias", "retry_damaged_alias")
    _score("partition_not_found", "retry_good", features_table="retry_absent")
    _score("model_not_found", "retry_no_such_model")
    _score("checksum_mismatch", "retry_tampered")
    _score("model_load_error", "retry_unpicklable")
    _score("model_version_mismatch", "retry_old_sklearn")
    PublishFeaturesOperator(
        task_id="foreign_arrow_invalid", table="retry_t", source="{{ params.not_parquet }}"
    )
    PublishFeaturesOperator(
        task_id="foreign_file_not_found", table="retry_t", source="/nonexistent/retry.parquet"
    )

    # -- retryable: connections and I/O --------------------------------------------------
    SqlExtractOperator(
        task_id="source_connection_error", conn_id="retry_unreachable", sql="SELECT 1"
    )

    @task
    def fill_disk(**context: Any) -> None:
        """Make the next task's staged file a link to /dev/full: every write gets ENOSPC."""
        from airflow_mlops.hooks.feature_store import FeatureStoreHook

        ti = context["ti"]
        store = FeatureStoreHook().get_store()
        path = store.staging_path(ti.dag_id, ti.run_id, "store_io_error.parquet")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if not os.path.islink(path):
            os.symlink("/dev/full", path)

    fill_disk() >> SqlExtractOperator(
        task_id="store_io_error", conn_id="warehouse", sql="SELECT 1 AS a"
    )
