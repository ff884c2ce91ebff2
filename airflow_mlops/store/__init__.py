"""The feature store: versioned, partitioned Parquet tables published atomically.

``feature_store`` is the public :class:`FeatureStore`; ``publish`` prepares a stream and its
manifest; ``refs`` is the commit point (which version of a partition is published);
``staging`` holds the references that staging steps pass on through XCom.
"""

from __future__ import annotations

from airflow_mlops.store.feature_store import MANIFEST_FILE, FeatureStore, validate_table_name
from airflow_mlops.store.publish import PARTITION_COLUMN
from airflow_mlops.store.staging import StagedOutput, staged_lineage, staged_output, staged_path

__all__ = [
    "MANIFEST_FILE",
    "PARTITION_COLUMN",
    "FeatureStore",
    "StagedOutput",
    "staged_lineage",
    "staged_output",
    "staged_path",
    "validate_table_name",
]
