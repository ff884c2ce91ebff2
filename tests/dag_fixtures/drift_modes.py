"""Test fixture DAGs: one DriftCheckOperator per mode over the ``drift_fixture`` table.

Trigger with params ``partition`` (the day checked) and ``reference`` (the day compared
with); ``downstream`` (or the branches) show what each mode does to the rest of the run.
"""

from __future__ import annotations

import datetime as dt

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, Param

from airflow_mlops.operators import DriftCheckOperator, partition_param

for mode in ("fail", "soft_fail", "warn", "branch"):
    with DAG(
        dag_id=f"drift_mode_{mode}",
        schedule=None,
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        catchup=False,
        params={"partition": partition_param(), "reference": Param("2026-01-01", type="string")},
        tags=["test"],
    ):
        check = DriftCheckOperator(
            task_id="check",
            table="drift_fixture",
            reference="partition",
            reference_partition="{{ params.reference }}",
            exclude=["key"],
            thresholds={"amount": (0.1, 0.2)},
            mode=mode,
            ok_branch="ok_path" if mode == "branch" else None,
            drift_branch="drift_path" if mode == "branch" else None,
        )
        if mode == "branch":
            check >> [EmptyOperator(task_id="ok_path"), EmptyOperator(task_id="drift_path")]
        else:
            check >> EmptyOperator(task_id="downstream")
