"""The serving-log operators' arguments (their runs through Airflow: tests/dags/
test_daily_serving_log.py)."""

from __future__ import annotations

import pytest

from airflow_mlops.exceptions import ArgumentError
from airflow_mlops.operators import (
    PublishServingLogOperator,
    ShadowReportOperator,
    serving_log_table,
)


def test_tables_default_to_the_model_name() -> None:
    requests = PublishServingLogOperator(task_id="requests", model_name="credit_risk")
    shadow = PublishServingLogOperator(task_id="shadow", model_name="credit_risk", log="shadow")
    assert requests.table == serving_log_table("credit_risk") == "credit_risk_serving_log"
    assert shadow.table == serving_log_table("credit_risk", "shadow") == "credit_risk_shadow_log"
    assert requests.outlets[0].name.endswith("credit_risk_serving_log")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"model_name": "credit_risk", "log": "responses"}, "'log' .* 'requests', 'shadow'"),
        ({"model_name": "credit risk"}, "PublishServingLogOperator: .*'credit risk'"),
        ({"model_name": "m", "table": "_logs"}, "'_logs' are reserved"),
    ],
)
def test_bad_arguments_are_refused_when_the_dag_is_parsed(kwargs, message) -> None:
    with pytest.raises(ArgumentError, match=message):
        PublishServingLogOperator(task_id="publish", **kwargs)


def test_shadow_report_needs_a_table_name() -> None:
    with pytest.raises(ArgumentError, match="ShadowReportOperator: .*'a/b'"):
        ShadowReportOperator(task_id="compare", table="a/b")
