"""Where a feature store keeps each file, and which table names it accepts.

The layout under ``<root>/<table>/`` is drawn in :mod:`airflow_mlops.store.feature_store`;
:class:`StoreLayout` is its one spelling, shared by the publish, commit, read, staging and
sidecar code. ``<root>/_staging/`` is the staging area and ``<root>/_logs/`` holds
append-only logs (:mod:`airflow_mlops.store.segments`), so no table may be called either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_mlops.exceptions import TableNameError, format_names, shown_value

if TYPE_CHECKING:
    import pyarrow.fs as pafs

STAGING_DIR = "_staging"
"""The staging area's directory under the root (a reserved table name)."""
LOGS_DIR = "_logs"
"""The append-only logs' directory under the root (a reserved table name)."""
RESERVED = frozenset({STAGING_DIR, LOGS_DIR})
TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MANIFEST_FILE = "_manifest.json"
PARTITION_COLUMN = "ds"


def validate_table_name(value: object) -> str:
    """``value`` if it is a valid table name, else :class:`TableNameError`."""
    if isinstance(value, str) and TABLE_NAME.match(value) and value not in RESERVED:
        return value
    raise TableNameError(
        "A feature table name must start with a letter or underscore and contain only "
        f"letters, digits and underscores (at most 128 characters; {STAGING_DIR!r} and "
        f"{LOGS_DIR!r} are reserved). "
        f"Got {shown_value(value, limit=200)} instead."
    )


@dataclass(frozen=True)
class StoreLayout:
    """A store's filesystem, root and the path of every file in it.

    Table and partition arguments are expected validated (:func:`validate_table_name`,
    :func:`~airflow_mlops.partition.validate_partition`).
    """

    filesystem: pafs.FileSystem
    """The pyarrow filesystem every path lives in."""
    root: str
    """The store's root, a path in :attr:`filesystem` (``""`` for a bucket's root)."""
    local: bool
    """Whether :attr:`filesystem` is the local one (symlinks, ``flock``, fsync, rename)."""

    def table_dir(self, table: str) -> str:
        return f"{self.root}/{table}"

    def refs_dir(self, table: str) -> str:
        return f"{self.table_dir(table)}/_refs"

    def ref_path(self, table: str, partition: str) -> str:
        return f"{self.refs_dir(table)}/{ref_name(partition)}"

    def versions_dir(self, table: str, partition: str) -> str:
        return f"{self.table_dir(table)}/_versions/{PARTITION_COLUMN}={partition}"

    def version_dir(self, table: str, partition: str, version: str) -> str:
        return f"{self.versions_dir(table, partition)}/{version}"

    def manifest_path(self, table: str, partition: str, version: str) -> str:
        return f"{self.version_dir(table, partition, version)}/{MANIFEST_FILE}"

    def view_path(self, table: str, partition: str) -> str:
        """The Hive view: a ``ds=<day>`` symlink to the current version (local only)."""
        return f"{self.table_dir(table)}/{view_name(partition)}"

    def view_target(self, partition: str, version: str) -> str:
        """Where the Hive view points, relative to the table directory."""
        return f"_versions/{PARTITION_COLUMN}={partition}/{version}"

    def lock_path(self, table: str, partition: str) -> str:
        return f"{self.table_dir(table)}/_locks/{PARTITION_COLUMN}={partition}.lock"


def ref_name(partition: str) -> str:
    """The file name of a partition's ref in ``_refs``."""
    return f"{PARTITION_COLUMN}={partition}.json"


def view_name(partition: str) -> str:
    """The name of a partition's Hive view in the table directory."""
    return f"{PARTITION_COLUMN}={partition}"


def missing_partition_message(
    root: str, table: str, partition: str | None, partitions: list[str], tables: list[str]
) -> str:
    """Why ``partition`` (or, with ``None``, any partition) of ``table`` cannot be read,
    given the table's ``partitions`` (oldest first) and the store's ``tables``."""
    if not partitions:
        listed = format_names(tables) or "none"
        return f"No table {table!r} in the feature store at {root}. Tables: {listed}."
    latest = format_names(reversed(partitions), limit=5)
    return (
        f"Table {table!r} has no partition {partition} in the feature store at "
        f"{root}. Latest partitions: {latest}."
    )
