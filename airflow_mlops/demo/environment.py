"""An embedded Airflow for the demo and the tests: temp home, SQLite metadata DB, connections.

Everything is passed as environment variables (``AIRFLOW__…`` settings and
``AIRFLOW_CONN_…`` connections), the way a deployment configures Airflow too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def connection_json(conn_type: str, **fields: object) -> str:
    """An Airflow connection in the JSON form ``AIRFLOW_CONN_<ID>`` accepts."""
    return json.dumps({"conn_type": conn_type, **fields})


def airflow_env(
    home: Path,
    *,
    warehouse_db: Path,
    store_root: Path,
    registry_root: Path,
    dags_folder: Path = REPO / "dags",
) -> dict[str, str]:
    """Environment for an embedded Airflow whose ``warehouse`` is a SQLite file."""
    home.mkdir(parents=True, exist_ok=True)
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW_CONN_WAREHOUSE": connection_json("sqlite", host=str(warehouse_db)),
        "AIRFLOW_CONN_FEATURE_STORE_DEFAULT": connection_json(
            "feature_store", extra={"root": str(store_root), "keep_versions": 3}
        ),
        "AIRFLOW_CONN_MODEL_REGISTRY_DEFAULT": connection_json(
            "model_registry", extra={"root": str(registry_root), "on_version_mismatch": "warn"}
        ),
    }


def airflow_cli(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run the ``airflow`` CLI of this interpreter's environment with ``env`` added."""
    airflow = Path(sys.executable).with_name("airflow")
    return subprocess.run(
        [str(airflow), *args],
        env={**os.environ, **env},
        check=check,
        capture_output=True,
        text=True,
    )


def migrate(env: dict[str, str]) -> None:
    """Create or upgrade the metadata database (idempotent)."""
    airflow_cli(env, "db", "migrate")
