"""Feature tables as Delta Lake tables (delta-rs, no JVM), on local disk or object storage.

One Delta table per feature table, ``<root>/<table>/``, partitioned by ``ds`` (a ``date``
column that lives in the transaction log, not in the data files)::

    _delta_log/00000000000000000000.json …    the commits
    ds=<day>/part-00000-<version>.parquet …   each publish's files, named by its version id

A publish streams its batches into new files (bounded memory, SHA-256 while writing, as the
store always did), then replaces exactly its partition in **one commit**: an overwrite whose
partition filter is the day, carrying the version's manifest (row count, files and their
checksums, content sha256, schema, contract, lineage, package version) in the commit's
metadata (:mod:`~airflow_mlops.store.delta_log`). Readers of the log (this package,
pyarrow's dataset through deltalake, Polars, DuckDB over the Arrow dataset, Spark, Trino) see
the old files or the new ones, never a mix, and never the files of a writer that was killed
before its commit. Two writers of one partition on object storage cannot both win: the log's
next entry is created with a conditional PUT, and the loser gets
:class:`~airflow_mlops.exceptions.ConcurrentPublishError` (locally, writers of one partition
also queue on a lock, as before).

A partition's history is the commits that carry its manifests: each publish adds a version,
:meth:`DeltaFeatureTables.rollback` commits an earlier version's files again (same files,
same content sha256), and :meth:`~DeltaFeatureTables.vacuum` deletes the files no kept
version needs once they are older than the grace period (orphans of killed writers too).
The log itself is never cleaned (``delta.enableExpiredLogCleanup=false``), so history and
time travel reach every commit. Schema changes across days follow :mod:`store.delta_schema`.
Readers must give deltalake's dataset a pyarrow filesystem (docs/delta.md).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
from typing import TYPE_CHECKING, Any

from airflow_mlops.exceptions import ArgumentError, PartitionNotFoundError, StoreError, format_names
from airflow_mlops.io.durable import writer_lock
from airflow_mlops.store.delta_log import (
    PartitionCommit,
    check_kept,
    commit_partition,
    create_table,
    kept_table_versions,
    kept_versions,
    open_table,
    partition_commits,
    table_schema,
    version_before,
)
from airflow_mlops.store.delta_schema import evolve
from airflow_mlops.store.layout import PARTITION_COLUMN, missing_partition_message
from airflow_mlops.store.publish import build_manifest, prepare_stream, verify_files, write_files
from airflow_mlops.store.refs import new_version_id

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping

    import pyarrow as pa
    import pyarrow.dataset as pads
    from deltalake import DeltaTable

    from airflow_mlops.contract import FeatureContract
    from airflow_mlops.store.layout import StoreLayout
    from airflow_mlops.store.publish import Manifest

_log = logging.getLogger(__name__)


class DeltaFeatureTables:
    """The feature tables under one store root, as Delta tables.

    :param layout: the store's filesystem and root (data files are written and read through
        it).
    :param storage_options: delta-rs options for an object store (endpoint, region,
        credentials, ``AWS_CONDITIONAL_PUT``…); None on local disk.
    :param keep_versions: versions of each partition kept for rollback (>= 1).
    :param grace: how long files no kept version needs stay, for readers that listed them.
    """

    def __init__(
        self,
        layout: StoreLayout,
        *,
        storage_options: Mapping[str, str] | None = None,
        keep_versions: int = 3,
        grace: dt.timedelta = dt.timedelta(seconds=60),
    ) -> None:
        self.layout = layout
        self.storage_options = dict(storage_options) if storage_options else None
        self.keep_versions = keep_versions
        self.grace = grace

    def uri(self, table: str) -> str:
        """The table's URI for delta-rs (a local path, or ``s3://bucket/key``)."""
        path = self.layout.table_dir(table)
        return path if self.layout.local else f"{self.layout.filesystem.type_name}://{path}"

    def partition_dir(self, table: str, partition: str) -> str:
        """Where a partition's data files live (a path in the store's filesystem)."""
        return f"{self.layout.table_dir(table)}/{PARTITION_COLUMN}={partition}"

    # -- writing ---------------------------------------------------------------------

    def publish(
        self,
        table: str,
        partition: str,
        batches: Iterable[pa.RecordBatch],
        *,
        schema: pa.Schema | None = None,
        contract: FeatureContract | None = None,
        lineage: dict[str, Any] | None = None,
        on_batch: Callable[[int], None] | None = None,
        max_rows_per_file: int = 1_000_000,
    ) -> Manifest:
        """Write ``batches`` as a new version of ``partition`` and commit it (module
        docstring); its manifest.

        :raises ContractError: the batches do not fit the contract, or the table's schema
            cannot take them (:func:`~airflow_mlops.store.delta_schema.evolve`).
        :raises ConcurrentPublishError: another writer committed first.
        :raises StoreError: a file or the log could not be written.
        """
        stream, incoming = prepare_stream(table, batches, schema=schema, contract=contract)
        version = new_version_id()
        directory = self.partition_dir(table, partition)
        with self.locked(table, partition):
            delta = self.open_for_write(table, incoming)
            evolution = evolve(table, table_schema(delta), incoming)
            if evolution.file_schema != incoming:
                stream = (batch.cast(evolution.file_schema) for batch in stream)
            try:
                files = write_files(
                    self.layout, directory, version, stream, evolution.file_schema, on_batch,
                    max_rows_per_file,
                )  # fmt: skip
                commits = partition_commits(delta, partition)
                previous = commits[0].manifest["version"] if commits else None
                manifest = build_manifest(
                    table, partition, version, previous, evolution.file_schema, files,
                    contract, lineage,
                )  # fmt: skip
                commit_partition(delta, manifest, evolution.table_schema, "publish")
            except BaseException:
                self._delete_version_files(directory, version)
                raise
        self._vacuum_quietly(table)
        return manifest

    def rollback(self, table: str, partition: str, *, to_version: str | None = None) -> Manifest:
        """Commit an earlier version's files again (by default the one before the current
        version in history); that version's manifest.

        :raises PartitionNotFoundError: no such partition, no earlier version, or
            ``to_version`` is not kept.
        :raises StoreError: the version's files are gone.
        """
        with self.locked(table, partition):
            delta, commits = self._commits(table, partition)
            current = commits[0].manifest["version"]
            kept = kept_versions(commits, self.keep_versions)
            target = to_version or version_before(kept, current)
            if target is None:
                raise PartitionNotFoundError(
                    f"Partition {partition} of table {table!r} has no version before "
                    f"{current} to roll back to (versions: {format_names(kept)})."
                )
            check_kept(table, partition, target, kept)
            manifest = next(c.manifest for c in commits if c.manifest["version"] == target)
            self._check_files(manifest)
            commit_partition(delta, manifest, table_schema(delta), "rollback")
        return manifest

    def vacuum(self, table: str) -> list[str]:
        """Delete files no kept version of any partition needs (and files no commit
        references: killed writers'), once older than the grace period; their paths."""
        delta = self._open(table)
        if delta is None:
            return []
        hours = math.ceil(self.grace.total_seconds() / 3600)
        return list(
            delta.vacuum(
                retention_hours=hours,
                dry_run=False,
                enforce_retention_duration=False,
                full=True,
                keep_versions=kept_table_versions(delta, self.keep_versions),
            )
        )

    # -- reading ---------------------------------------------------------------------

    def dataset(self, table: str, *, table_version: int | None = None) -> pads.Dataset:
        """The whole table (or its state at ``table_version``) as a pyarrow dataset read
        through the store's filesystem, with the ``ds`` column.

        :raises PartitionNotFoundError: the table does not exist.
        """
        delta = self._open(table, table_version)
        if delta is None:
            root = self.layout.root or "/"
            message = missing_partition_message(root, table, None, [], self.tables())
            raise PartitionNotFoundError(message)
        return self._arrow_dataset(delta, table)

    def read_batches(
        self,
        table: str,
        partition: str,
        *,
        columns: list[str] | None = None,
        version: str | None = None,
        batch_size: int = 65536,
    ) -> Iterator[pa.RecordBatch]:
        """One partition (its current version, or ``version``) as record batches of the
        table's schema, without ``ds``.

        :raises PartitionNotFoundError: no such partition or version.
        :raises ArgumentError: a column the table does not have.
        """
        return iter(self._scanner(table, partition, columns, version, batch_size).to_batches())

    def read(
        self,
        table: str,
        partition: str,
        *,
        columns: list[str] | None = None,
        version: str | None = None,
    ) -> pa.Table:
        """One partition as one table (as :meth:`read_batches`)."""
        return self._scanner(table, partition, columns, version, 65536).to_table()

    def verify(self, manifest: Manifest) -> None:
        """Every file's SHA-256 and size against ``manifest``.

        :raises ChecksumMismatchError: naming the files that are missing or differ.
        """
        directory = self.partition_dir(manifest["table"], manifest["partition"])
        verify_files(self.layout.filesystem, directory, manifest)

    def tables(self) -> list[str]:
        """Tables under the root that are Delta tables, sorted."""
        import pyarrow.fs as pafs

        root, filesystem = self.layout.root, self.layout.filesystem
        selector = pafs.FileSelector(root or "/", allow_not_found=True)
        names = [
            i.base_name for i in filesystem.get_file_info(selector) if i.type.name == "Directory"
        ]
        logs = [f"{self.layout.table_dir(name)}/_delta_log" for name in names]
        found = filesystem.get_file_info(logs)
        return sorted(
            name for name, log in zip(names, found, strict=True) if log.type.name == "Directory"
        )

    def partition_path(self, table: str, partition: str) -> str:
        """The table's location (a path in the store's filesystem): Delta readers read a
        partition through the table's log, never a directory listing.

        :raises PartitionNotFoundError: no such partition.
        """
        self._commits(table, partition)
        return self.layout.table_dir(table)

    def partitions(self, table: str) -> list[str]:
        """The table's partitions, oldest first (empty for no table)."""
        delta = self._open(table)
        if delta is None:
            return []
        return sorted({values[PARTITION_COLUMN] for values in delta.partitions()})

    def manifest(self, table: str, partition: str, *, version: str | None = None) -> Manifest:
        """The manifest of the partition's current version, or of ``version``.

        :raises PartitionNotFoundError: no such partition or version.
        """
        if version is not None:
            return self._commit_of(table, partition, version).manifest
        return self._commits(table, partition)[1][0].manifest

    def versions(self, table: str, partition: str) -> list[str]:
        """The partition's kept versions in publish order, oldest first."""
        return kept_versions(self._commits(table, partition)[1], self.keep_versions)

    # -- internals -------------------------------------------------------------------

    def _scanner(
        self,
        table: str,
        partition: str,
        columns: list[str] | None,
        version: str | None,
        batch_size: int,
    ) -> pads.Scanner:
        table_version = None
        if version is not None:
            table_version = self._commit_of(table, partition, version).table_version
        delta = self._open(table, table_version)
        if delta is None:
            raise self._missing(table, partition)
        only_day = [(PARTITION_COLUMN, "=", partition)]  # the log prunes the other days' files
        dataset = self._arrow_dataset(delta, table, file_pruning_predicate=only_day)
        names = [name for name in dataset.schema.names if name != PARTITION_COLUMN]
        unknown = [column for column in columns or () if column not in names]
        if unknown:
            raise ArgumentError(
                f"Table {table!r} has no column(s) {format_names(unknown)}. "
                f"Its columns: {format_names(names, limit=30)}."
            )
        if next(iter(dataset.get_fragments()), None) is None:  # a publish writes >= 1 file
            raise self._missing(table, partition)
        # one file and one batch ahead: pyarrow's defaults (4 files, 16 batches) held ~600 MiB
        # of a 5M-row partition and read it slower (benchmarks/store_formats.py)
        return dataset.scanner(
            columns=columns or names,
            batch_size=batch_size,
            fragment_readahead=1,
            batch_readahead=1,
        )

    def _open(self, table: str, table_version: int | None = None) -> DeltaTable | None:
        return open_table(self.uri(table), self.storage_options, table_version)

    def _arrow_dataset(self, delta: DeltaTable, table: str, **options: Any) -> pads.Dataset:
        """``delta``'s files as a pyarrow dataset read through the store's own filesystem
        (deltalake's would abort the process at exit: delta-rs issue #2184)."""
        import pyarrow.fs as pafs

        tree = pafs.SubTreeFileSystem(self.layout.table_dir(table), self.layout.filesystem)
        return delta.to_pyarrow_dataset(filesystem=tree, **options)

    def _commits(self, table: str, partition: str) -> tuple[DeltaTable, list[PartitionCommit]]:
        """The table and the partition's commits, newest first (one read of the history).

        :raises PartitionNotFoundError: no such table or partition.
        """
        delta = self._open(table)
        commits = [] if delta is None else partition_commits(delta, partition)
        if delta is None or not commits:
            raise self._missing(table, partition)
        return delta, commits

    def _missing(self, table: str, partition: str) -> PartitionNotFoundError:
        partitions = self.partitions(table)
        tables = [] if partitions else self.tables()
        root = self.layout.root or "/"
        message = missing_partition_message(root, table, partition, partitions, tables)
        return PartitionNotFoundError(message)

    def _commit_of(self, table: str, partition: str, version: str) -> PartitionCommit:
        """The commit that first published ``version`` of the partition."""
        commits = self._commits(table, partition)[1]
        check_kept(table, partition, version, kept_versions(commits, self.keep_versions))
        return next(c for c in reversed(commits) if c.manifest["version"] == version)

    def _check_files(self, manifest: Manifest) -> None:
        import pyarrow.fs as pafs

        directory = self.partition_dir(manifest["table"], manifest["partition"])
        paths = [f"{directory}/{entry['path']}" for entry in manifest["files"]]
        infos = self.layout.filesystem.get_file_info(paths)
        missing = [i.path for i in infos if i.type == pafs.FileType.NotFound]
        if missing:
            raise StoreError(
                f"Version {manifest['version']} of table {manifest['table']!r} partition "
                f"{manifest['partition']} lost {len(missing)} file(s) ({format_names(missing)}): "
                "it cannot be restored. Publish the partition again."
            )

    def _delete_version_files(self, directory: str, version: str) -> None:
        """Best effort: the files a failed publish wrote (vacuum gets any left)."""
        import pyarrow.fs as pafs

        filesystem = self.layout.filesystem
        with contextlib.suppress(OSError):
            selector = pafs.FileSelector(directory, allow_not_found=True)
            for info in filesystem.get_file_info(selector):
                if info.path.endswith(f"-{version}.parquet"):
                    filesystem.delete_file(info.path)

    def _vacuum_quietly(self, table: str) -> None:
        try:
            removed = self.vacuum(table)
        except Exception as exc:  # the publish is committed; the next vacuum retries
            _log.warning("Vacuum of table %r failed after a publish: %s", table, exc)
            return
        if removed:
            _log.info("Vacuumed %d file(s) no kept version of table %r needs", len(removed), table)

    def open_for_write(self, table: str, schema: pa.Schema) -> DeltaTable:
        """The table, created empty with ``schema`` if it does not exist yet."""
        return self._open(table) or create_table(self.uri(table), schema, self.storage_options)

    def locked(self, table: str, partition: str) -> contextlib.AbstractContextManager[None]:
        """The partition's writer lock (local filesystem only: object stores rely on the
        log's conditional PUTs)."""
        return writer_lock(self.layout.lock_path(table, partition), local=self.layout.local)
