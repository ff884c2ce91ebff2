"""Provider metadata for Airflow's ProvidersManager (entry point ``apache_airflow_provider``)."""

from __future__ import annotations

from typing import Any

from airflow_mlops import __version__


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-mlops",
        "name": "MLOps batch features and scoring",
        "description": (
            "Operators and hooks for batch feature pipelines: SQL extract to Parquet, "
            "DuckDB/Python transforms, and atomic, versioned, partitioned Parquet feature tables."
        ),
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": "Feature store",
                "tags": ["software"],
            }
        ],
        "operators": [
            {
                "integration-name": "Feature store",
                "python-modules": [
                    "airflow_mlops.operators.extract",
                    "airflow_mlops.operators.transform",
                    "airflow_mlops.operators.load",
                ],
            }
        ],
        "hooks": [
            {
                "integration-name": "Feature store",
                "python-modules": [
                    "airflow_mlops.hooks.feature_store",
                    "airflow_mlops.hooks.sql_source",
                ],
            }
        ],
        "connection-types": [
            {
                "hook-class-name": "airflow_mlops.hooks.feature_store.FeatureStoreHook",
                "hook-name": "Feature Store",
                "connection-type": "feature_store",
                "conn-fields": {
                    "root": {
                        "label": "Store root",
                        "schema": {"type": ["string", "null"]},
                        "description": (
                            "Local path or object-storage URI of the store, "
                            "e.g. /data/features or s3://bucket/features"
                        ),
                    },
                    "keep_versions": {
                        "label": "Versions kept per partition",
                        "schema": {"type": ["integer", "null"], "default": 3, "minimum": 1},
                        "description": "Previous versions kept for rollback (at least 1).",
                    },
                },
                "ui-field-behaviour": {
                    "hidden-fields": ["host", "schema", "login", "password", "port", "extra"],
                    "relabeling": {},
                    "placeholders": {"root": "/data/features or s3://bucket/features"},
                },
            }
        ],
    }
