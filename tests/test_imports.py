"""DAG files and operators must stay cheap to import: no heavy library at module level."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("pandas", "pyarrow", "sklearn", "joblib", "numpy", "scipy", "duckdb")


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param("import airflow_mlops.operators", id="operators"),
        pytest.param(
            "import airflow_mlops.hooks.feature_store, airflow_mlops.hooks.sql_source", id="hooks"
        ),
        pytest.param("import airflow_mlops.provider", id="provider"),
        pytest.param(
            "import airflow_mlops.sources, airflow_mlops.io, airflow_mlops.store, "
            "airflow_mlops.models, airflow_mlops.scoring, airflow_mlops.drift, airflow_mlops.cli, "
            "airflow_mlops.serving",
            id="engine-packages",
        ),
        pytest.param(
            "import runpy; runpy.run_path('dags/daily_customer_features.py')", id="dag-file"
        ),
    ],
)
def test_import_does_not_load_heavy_libraries(statement, repo):
    code = f"{statement}\nimport sys\nprint(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


@pytest.mark.airflow
def test_dagbag_loads_every_dag_without_errors(airflow_db, repo):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(repo / "dags"))
    assert bag.import_errors == {}
    assert "daily_customer_features" in bag.dag_ids
