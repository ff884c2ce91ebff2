"""Provider metadata for Airflow's ProvidersManager (entry point ``apache_airflow_provider``)."""

from __future__ import annotations

from typing import Any

from airflow_mlops import __version__

# The connection forms (Airflow >= 3.2 reads them from here, not from the hooks).
FEATURE_STORE_CONNECTION: dict[str, Any] = {
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
        "retention_grace_seconds": {
            "label": "Retention grace (seconds)",
            "schema": {"type": ["number", "null"], "default": 60, "minimum": 0},
            "description": (
                "How long the files of a version that left history stay for "
                "readers still reading them (set it above your longest read)."
            ),
        },
        "table_format": {
            "label": "Table format",
            "schema": {
                "type": ["string", "null"],
                "default": "parquet",
                "enum": ["parquet", "delta"],
            },
            "description": (
                "parquet: the store's own versioned format; delta: Delta Lake tables any "
                "Delta reader can read (docs/delta.md)."
            ),
        },
        "endpoint_url": {
            "label": "S3 endpoint URL",
            "schema": {"type": ["string", "null"]},
            "description": "An S3-compatible server's URL (empty for AWS S3 itself).",
        },
        "region": {
            "label": "S3 region",
            "schema": {"type": ["string", "null"]},
            "description": "The region requests are signed for (empty: the AWS config's).",
        },
        "allow_http": {
            "label": "Allow plain HTTP",
            "schema": {"type": ["boolean", "null"], "default": False},
            "description": "Needed for an http:// endpoint (credentials travel unencrypted).",
        },
    },
    "ui-field-behaviour": {
        "hidden-fields": ["host", "schema", "port", "extra"],
        "relabeling": {"login": "Access key ID (object storage)", "password": "Secret access key"},
        "placeholders": {
            "root": "/data/features or s3://bucket/features",
            "login": "empty: the AWS environment's credentials",
            "endpoint_url": "empty for AWS; http://seaweedfs:8333 for a local S3 server",
        },
    },
}

MODEL_REGISTRY_CONNECTION: dict[str, Any] = {
    "hook-class-name": "airflow_mlops.hooks.model_registry.ModelRegistryHook",
    "hook-name": "Model Registry",
    "connection-type": "model_registry",
    "conn-fields": {
        "root": {
            "label": "Registry root",
            "schema": {"type": ["string", "null"]},
            "description": (
                "Local path or object-storage URI of the registry, "
                "e.g. /data/models or s3://bucket/models"
            ),
        },
        "on_version_mismatch": {
            "label": "On library version mismatch",
            "schema": {
                "type": ["string", "null"],
                "default": "warn",
                "enum": ["warn", "refuse", "ignore"],
            },
            "description": (
                "What loading a model saved with other scikit-learn, joblib or "
                "Python versions does."
            ),
        },
    },
    "ui-field-behaviour": {
        "hidden-fields": ["host", "schema", "login", "password", "port", "extra"],
        "relabeling": {},
        "placeholders": {"root": "/data/models or s3://bucket/models"},
    },
}


def get_provider_info() -> dict[str, Any]:
    """What ``airflow providers list`` and the connection form know of this package."""
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
                    "airflow_mlops.operators.train",
                    "airflow_mlops.operators.batch_score",
                    "airflow_mlops.operators.drift_check",
                    "airflow_mlops.operators.serving_log",
                ],
            }
        ],
        "hooks": [
            {
                "integration-name": "Feature store",
                "python-modules": [
                    "airflow_mlops.hooks.feature_store",
                    "airflow_mlops.hooks.sql_source",
                    "airflow_mlops.hooks.model_registry",
                ],
            }
        ],
        "extra-links": ["airflow_mlops.operators.drift_check.DriftReportLink"],
        "connection-types": [
            FEATURE_STORE_CONNECTION,
            MODEL_REGISTRY_CONNECTION,
        ],
    }
