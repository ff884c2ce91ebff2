"""The operator fixtures (connections from ``AIRFLOW_CONN_*``): the scoring job is run beside
BatchScoreOperator and the ``airflow-mlops score`` command on the same store and registry."""

from __future__ import annotations

from tests.operators.conftest import (  # noqa: F401 - fixtures, found by name
    _allow_direct_execute,
    credit_data,
    feature_store,
    make_context,
    model_registry,
)
