"""A store in the parquet format converted into Delta tables under a new root, every kept
version with its id, manifest and content sha256.

For each table and partition, the kept versions are committed oldest first, each one's own
files copied byte for byte (after verifying their checksums) and its manifest committed
with them (:func:`adopt`); then, if the current version is not the newest (a rollback
happened), a rollback commit makes it current again. The source is only read: switch the
connection's root and ``table_format`` to the target once the migration has finished, and
delete the source when you no longer need it. A migration that stopped part-way runs again:
versions the target already has are skipped.

.. code-block:: bash

    airflow-mlops --root /data/features migrate --to /data/features-delta
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_mlops.exceptions import ArgumentError
from airflow_mlops.store.delta import DeltaFeatureTables
from airflow_mlops.store.delta_log import commit_partition, table_schema
from airflow_mlops.store.delta_schema import evolve
from airflow_mlops.store.ref_tables import RefTables

if TYPE_CHECKING:
    from collections.abc import Callable

    import pyarrow.fs as pafs

    from airflow_mlops.store.feature_store import FeatureStore
    from airflow_mlops.store.publish import Manifest

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class MigratedPartition:
    """What the migration did to one partition.

    :param versions: the versions committed now, oldest first (already there: skipped).
    :param current: the version current in both stores afterwards.
    """

    table: str
    partition: str
    versions: tuple[str, ...]
    current: str


def migrate_store(
    source: FeatureStore,
    target: FeatureStore,
    *,
    on_partition: Callable[[MigratedPartition], None] | None = None,
) -> list[MigratedPartition]:
    """Copy every table of ``source`` (parquet format) into ``target`` (delta format).

    :raises ArgumentError: the formats are not parquet → delta, or both are the same root.
    :raises ChecksumMismatchError: a source version's files do not match its manifest
        (nothing of that version is copied: roll it back or republish it, then run again).
    """
    old, new = source.tables, target.tables
    if not isinstance(old, RefTables) or not isinstance(new, DeltaFeatureTables):
        raise ArgumentError(
            "migrate_store converts a 'parquet' store into a 'delta' one. Got "
            f"{source.table_format!r} → {target.table_format!r} instead."
        )
    if source.filesystem.equals(target.filesystem) and source.root == target.root:
        raise ArgumentError(
            f"Migrate into a new root: {target.root} is the source's own root. Point the "
            "connection at the new root once the migration is done."
        )
    done = []
    for table in source.list_tables():
        for partition in source.list_partitions(table):
            migrated = _migrate_partition(old, new, table, partition)
            _log.info(
                "Migrated %s %s: %d version(s) committed, current %s",
                table,
                partition,
                len(migrated.versions),
                migrated.current,
            )
            if on_partition is not None:
                on_partition(migrated)
            done.append(migrated)
    return done


def _migrate_partition(
    old: RefTables, new: DeltaFeatureTables, table: str, partition: str
) -> MigratedPartition:
    present = set(new.versions(table, partition)) if partition in new.partitions(table) else set()
    committed = []
    for version in old.versions(table, partition):
        if version in present:
            continue
        manifest = old.manifest(table, partition, version)
        old.verify(manifest)
        adopt(new, manifest, old.version_files(manifest), old.layout.filesystem)
        committed.append(version)
    current = old.manifest(table, partition, None)["version"]
    if new.manifest(table, partition)["version"] != current:
        new.rollback(table, partition, to_version=current)
    return MigratedPartition(table, partition, tuple(committed), current)


def adopt(
    tables: DeltaFeatureTables, manifest: Manifest, paths: list[str], filesystem: pafs.FileSystem
) -> None:
    """Commit a version written elsewhere into ``tables`` as published: its files (``paths``
    in ``filesystem``, in the manifest's order) copied into the partition, then one commit
    carrying ``manifest`` itself, so the version keeps its id and content sha256. Files
    narrower than the table's types stay as they are (readers widen them).

    :raises ContractError: the version's schema cannot join the table's.
    :raises ConcurrentPublishError: another writer committed first.
    """
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    table, partition = manifest["table"], manifest["partition"]
    directory = tables.partition_dir(table, partition)
    with filesystem.open_input_file(paths[0]) as first:
        incoming = pq.read_schema(first)
    with tables.locked(table, partition):
        delta = tables.open_for_write(table, incoming)
        evolution = evolve(table, table_schema(delta), incoming)
        tables.layout.filesystem.create_dir(directory)
        for path, entry in zip(paths, manifest["files"], strict=True):
            pafs.copy_files(
                path,
                f"{directory}/{entry['path']}",
                source_filesystem=filesystem,
                destination_filesystem=tables.layout.filesystem,
            )
        commit_partition(delta, manifest, evolution.table_schema, "publish")
