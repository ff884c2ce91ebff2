"""Operators of the airflow-mlops provider. Importing this package imports no heavy library."""

from __future__ import annotations

from airflow_mlops.operators.base import partition_param, partitions_to_process
from airflow_mlops.operators.batch_score import BatchScoreOperator
from airflow_mlops.operators.drift_check import BuildDriftProfileOperator, DriftCheckOperator
from airflow_mlops.operators.extract import SqlExtractOperator
from airflow_mlops.operators.load import PublishFeaturesOperator
from airflow_mlops.operators.serving_log import (
    PublishServingLogOperator,
    ShadowReportOperator,
    serving_log_table,
)
from airflow_mlops.operators.train import TrainModelOperator
from airflow_mlops.operators.transform import PythonTransformOperator, SqlTransformOperator

__all__ = [
    "BatchScoreOperator",
    "BuildDriftProfileOperator",
    "DriftCheckOperator",
    "PublishFeaturesOperator",
    "PublishServingLogOperator",
    "PythonTransformOperator",
    "ShadowReportOperator",
    "SqlExtractOperator",
    "SqlTransformOperator",
    "TrainModelOperator",
    "partition_param",
    "partitions_to_process",
    "serving_log_table",
]
