"""The operator fixtures (connections from ``AIRFLOW_CONN_*``), shared with tests/operators."""

from __future__ import annotations

from tests.operators.conftest import (  # noqa: F401 - fixtures, found by name
    _allow_direct_execute,
    credit_data,
    feature_store,
    make_context,
    model_registry,
    warehouse,
    write_parquet,
)
