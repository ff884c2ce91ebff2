"""The feature store: versioned, partitioned Parquet tables published atomically.

``feature_store`` is the public :class:`FeatureStore`; ``layout`` says where each file goes;
``publish`` prepares a stream, writes its files and the version's :class:`Manifest`; ``refs``
is the commit point (which version of a partition is published) and its housekeeping;
``reading`` opens a published version; ``staging`` is the scratch area and the references
that staging steps pass on through XCom; ``sidecars`` are files kept beside a table.
"""

from __future__ import annotations

from airflow_mlops.store.feature_store import FeatureStore
from airflow_mlops.store.layout import MANIFEST_FILE, PARTITION_COLUMN, validate_table_name
from airflow_mlops.store.publish import Manifest, ManifestFile
from airflow_mlops.store.staging import StagedOutput, staged_lineage, staged_output, staged_path

__all__ = [
    "MANIFEST_FILE",
    "PARTITION_COLUMN",
    "FeatureStore",
    "Manifest",
    "ManifestFile",
    "StagedOutput",
    "staged_lineage",
    "staged_output",
    "staged_path",
    "validate_table_name",
]
