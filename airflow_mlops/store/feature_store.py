"""The feature store: partitioned Parquet feature tables with atomic, versioned publishes.

Layout under ``<root>/<table>/``::

    _versions/ds=<day>/<version>/part-00000-<version>.parquet …, _manifest.json
    _refs/ds=<day>.json      {"current": <version>, "history": [<versions>, newest last]}
    _locks/ds=<day>.lock     (local filesystem only; sidecars' under _locks/_sidecars/)
    ds=<day> -> _versions/ds=<day>/<version>   (local only: relative symlink, the Hive view)

The ref is the source of truth; our read API always goes through it. On a local
filesystem the ``ds=<day>`` symlink lets pyarrow, pandas, DuckDB or Spark read a partition
as plain Parquet (they skip ``_``- and ``.``-prefixed names). Such readers resolve the
symlink once per file, so file names carry the version id: a reader racing a publish gets
"file not found" (pyarrow: an empty table without columns), never a mix of two versions.
Readers that must not retry read ``os.path.realpath(store.partition_path(...))`` instead:
a version directory never changes and outlives its replacement by ``retention_grace``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from airflow_mlops.checks import check_int, check_number
from airflow_mlops.exceptions import ArgumentError, PartitionNotFoundError, format_names
from airflow_mlops.io import parquet
from airflow_mlops.io.durable import writer_lock
from airflow_mlops.partition import days_between, validate_partition
from airflow_mlops.store.layout import PARTITION_COLUMN, StoreLayout, validate_table_name
from airflow_mlops.store.publish import (
    build_manifest,
    lineage_json,
    prepare_stream,
    verify_files,
    write_files,
    write_manifest,
)
from airflow_mlops.store.reading import find_manifest, load_manifest, open_version
from airflow_mlops.store.refs import (
    PartitionRef,
    advance,
    check_kept,
    list_partitions,
    list_tables,
    load_ref,
    missing_message,
    new_version_id,
    published,
    require_ref,
)
from airflow_mlops.store.segments import StoreLogs
from airflow_mlops.store.sidecars import read_sidecar, sidecar_uri, write_sidecar
from airflow_mlops.store.staging import clean_staging, staging_path

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping

    import pyarrow as pa
    import pyarrow.fs as pafs

    from airflow_mlops.contract import FeatureContract
    from airflow_mlops.store.publish import Manifest

_log = logging.getLogger(__name__)


class FeatureStore:
    """Partitioned, versioned Parquet feature tables under a local path or object-store URI.

    A publish writes a new version directory, then replaces the partition's ref in one
    atomic step: readers see the old or the new version, never a mix, even if the writer
    is killed. The newest ``keep_versions`` versions stay available for :meth:`rollback`.

    On a local filesystem publishes and rollbacks of one partition are serialised with an
    ``flock``. Object stores have no lock: concurrent publishes of the same partition are
    last-writer-wins (keep one writer per partition, e.g. with ``max_active_runs=1`` or a
    pool), and version directories outside history are only deleted after
    :data:`~airflow_mlops.store.refs.ORPHAN_GRACE`.

    :param root: a local directory or a URI such as ``s3://bucket/features``.
    :param keep_versions: how many versions of each partition to keep (at least 1).
    :param retention_grace: seconds the files of a version that left history are kept
        before deletion, so that a plain reader which listed them just before can finish.
    :param filesystem: a pyarrow filesystem to use instead of resolving ``root`` (e.g. one
        built with credentials from an Airflow connection); ``root`` is then a path in it.

    .. code-block:: python

        store = FeatureStore("/data/features")
        store.publish_partition("customer_features", "2026-01-04", batches, contract=contract)
        table = store.read_partition("customer_features", "2026-01-04")
    """

    def __init__(
        self,
        root: str,
        *,
        keep_versions: int = 3,
        retention_grace: float = 60.0,
        filesystem: pafs.FileSystem | None = None,
    ) -> None:
        self.keep_versions = check_int(keep_versions, "keep_versions", "FeatureStore")
        grace = check_number(
            retention_grace,
            "retention_grace",
            "FeatureStore",
            low=0,
            expected="a number of seconds >= 0",
        )
        if not root:
            raise ArgumentError(
                f"The 'root' parameter of FeatureStore must be a path or URI. Got {root!r} instead."
            )
        self._layout = StoreLayout(*parquet.open_root(root, filesystem))
        self._grace = dt.timedelta(seconds=grace)

    def __repr__(self) -> str:
        return f"FeatureStore(root={self.root!r}, keep_versions={self.keep_versions})"

    @property
    def filesystem(self) -> pafs.FileSystem:
        """The pyarrow filesystem every path of this store lives in."""
        return self._layout.filesystem

    @property
    def retention_grace(self) -> float:
        """Seconds the files of a version that left history are kept for late readers."""
        return self._grace.total_seconds()

    @property
    def root(self) -> str:
        """The store's root as a path in :attr:`filesystem`."""
        return self._layout.root or "/"

    # -- writing ---------------------------------------------------------------------

    def publish_partition(
        self,
        table: str,
        partition: str,
        batches: Iterable[pa.RecordBatch],
        *,
        schema: pa.Schema | None = None,
        contract: FeatureContract | None = None,
        lineage: Mapping[str, Any] | None = None,
        on_batch: Callable[[int], None] | None = None,
        max_rows_per_file: int = 1_000_000,
    ) -> Manifest:
        """Write ``batches`` as a new version of ``partition`` and make it current.

        Batches are streamed (one in memory at a time) into files of at most
        ``max_rows_per_file`` rows. Returns the version's manifest.

        :param schema: the file schema; needed for empty input when there is no contract.
        :param contract: every batch is checked and cast to it; it sets the file schema.
        :param lineage: JSON-serialisable facts stored in the manifest as given
            (dag_id, run_id, try_number, source query hashes…).
        :param on_batch: called with the row count of every batch written.
        """
        table, partition = validate_table_name(table), validate_partition(partition)
        if max_rows_per_file < 1:
            raise ArgumentError(
                "The 'max_rows_per_file' parameter of publish_partition must be an int >= 1. "
                f"Got {max_rows_per_file!r} instead."
            )
        lineage_facts = lineage_json(lineage)
        stream, file_schema = prepare_stream(table, batches, schema=schema, contract=contract)
        version, layout = new_version_id(), self._layout
        directory = layout.version_dir(table, partition, version)
        with self._locked(table, partition):
            try:
                files = write_files(
                    layout, directory, version, stream, file_schema, on_batch, max_rows_per_file
                )
                ref = load_ref(layout, table, partition)
                previous = ref.current if ref else None
                manifest = build_manifest(
                    table, partition, version, previous, file_schema, files, contract, lineage_facts
                )
                write_manifest(layout, directory, manifest)
            except BaseException:
                with contextlib.suppress(OSError):
                    layout.filesystem.delete_dir(directory)
                raise
            now = dt.datetime.now(dt.UTC)
            new_ref = published(ref, version, self.keep_versions, now=now, grace=self._grace)
            advance(layout, table, partition, ref, new_ref)
        _log.info(
            "Published table %r partition %s version %s: %d rows in %d file(s)",
            table,
            partition,
            version,
            manifest["row_count"],
            len(files),
        )
        return manifest

    def rollback(self, table: str, partition: str, *, to_version: str | None = None) -> Manifest:
        """Make an earlier version current again and return its manifest.

        :param to_version: the version to restore; by default the one before the current
            version in history.
        """
        table, partition = validate_table_name(table), validate_partition(partition)
        with self._locked(table, partition):
            ref = require_ref(self._layout, table, partition)
            target = to_version or ref.previous()
            if target is None:
                raise PartitionNotFoundError(
                    f"Partition {partition} of table {table!r} has no version before "
                    f"{ref.current} to roll back to (versions: {format_names(ref.history)})."
                )
            check_kept(ref, table, partition, target)
            manifest = load_manifest(self._layout, table, partition, target)
            retired = ref.in_grace(dt.datetime.now(dt.UTC), self._grace)
            advance(self._layout, table, partition, ref, PartitionRef(target, ref.history, retired))
        _log.info(
            "Rolled back table %r partition %s from %s to %s", table, partition, ref.current, target
        )
        return manifest

    # -- the staging area and sidecars (see their modules) ---------------------------

    def staging_path(self, *parts: str) -> str:
        """A path under ``<root>/_staging/`` for upstream tasks' scratch files
        (:func:`~airflow_mlops.store.staging.staging_path`)."""
        return staging_path(self._layout, *parts)

    def clean_staging(
        self, older_than: dt.timedelta, *, now: dt.datetime | None = None
    ) -> list[str]:
        """Delete staged run directories not written for ``older_than``; returns them
        (:func:`~airflow_mlops.store.staging.clean_staging`)."""
        return clean_staging(self._layout, older_than, now=now)

    @property
    def logs(self) -> StoreLogs:
        """The store's append-only logs (:mod:`~airflow_mlops.store.segments`)."""
        return StoreLogs(self._layout)

    def write_sidecar(
        self, table: str, name: str, payload: bytes, *, partition: str | None = None
    ) -> str:
        """Store ``payload`` as ``name`` beside ``table`` (or one partition); its path
        (:func:`~airflow_mlops.store.sidecars.write_sidecar`)."""
        return write_sidecar(self._layout, table, name, payload, partition=partition)

    def read_sidecar(self, table: str, name: str, *, partition: str | None = None) -> bytes:
        """The sidecar ``name`` of ``table`` (or one partition)."""
        return read_sidecar(self._layout, table, name, partition=partition)

    def sidecar_uri(self, table: str, name: str, *, partition: str | None = None) -> str:
        """Where a sidecar lives, as a URI a person can open (``file://`` locally)."""
        return sidecar_uri(self._layout, table, name, partition=partition)

    # -- reading ---------------------------------------------------------------------

    def read_partition(
        self,
        table: str,
        partition: str,
        *,
        columns: list[str] | None = None,
        version: str | None = None,
    ) -> pa.Table:
        """One partition (its current version, or ``version``) as an Arrow table."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        table, partition = validate_table_name(table), validate_partition(partition)
        with open_version(self._layout, table, partition, version, columns) as handles:
            pieces = [pq.ParquetFile(handle).read(columns=columns) for handle in handles]
        return pieces[0] if len(pieces) == 1 else pa.concat_tables(pieces)

    def iter_partition_batches(
        self,
        table: str,
        partition: str,
        *,
        columns: list[str] | None = None,
        batch_size: int = 65536,
        version: str | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """One partition as record batches of at most ``batch_size`` rows."""
        table, partition = validate_table_name(table), validate_partition(partition)
        return self._iter_batches(table, partition, columns, batch_size, version)

    def read_latest(self, table: str, *, columns: list[str] | None = None) -> pa.Table:
        """The newest partition of ``table``."""
        latest = self.latest_partition(table)
        if latest is None:
            raise PartitionNotFoundError(missing_message(self._layout, table, partition=None))
        return self.read_partition(table, latest, columns=columns)

    def read_range(
        self, table: str, start: str, end: str, *, columns: list[str] | None = None
    ) -> pa.Table:
        """Partitions ``start`` to ``end`` inclusive, with a ``ds`` date32 column added.

        Days without a partition are skipped; if none exists, :class:`PartitionNotFoundError`.
        """
        import pyarrow as pa

        available = set(self.list_partitions(table))
        pieces = []
        for day in days_between(start, end):
            if day in available:
                piece = self.read_partition(table, day, columns=columns)
                ds = pa.repeat(pa.scalar(dt.date.fromisoformat(day), pa.date32()), piece.num_rows)
                pieces.append(piece.append_column(pa.field(PARTITION_COLUMN, pa.date32()), ds))
        if not pieces:
            latest = format_names(sorted(available, reverse=True), limit=5) or "none"
            raise PartitionNotFoundError(
                f"Table {table!r} has no partition from {start} to {end}. "
                f"Latest partitions: {latest}."
            )
        return pa.concat_tables(pieces, promote_options="default")

    def manifest(self, table: str, partition: str, *, version: str | None = None) -> Manifest:
        """The manifest of the current version of a partition, or of ``version``."""
        table, partition = validate_table_name(table), validate_partition(partition)
        return find_manifest(self._layout, table, partition, version)

    def verify(self, table: str, partition: str, *, version: str | None = None) -> Manifest:
        """Recompute every file's SHA-256 and size; :class:`ChecksumMismatchError` if any differ.

        Returns the verified manifest.
        """
        manifest = self.manifest(table, partition, version=version)
        directory = self._layout.version_dir(
            manifest["table"], manifest["partition"], manifest["version"]
        )
        verify_files(self.filesystem, directory, manifest)
        return manifest

    # -- listing ---------------------------------------------------------------------

    def list_tables(self) -> list[str]:
        """Tables with at least one published partition, sorted."""
        return list_tables(self._layout)

    def list_partitions(self, table: str) -> list[str]:
        """Published partitions of ``table``, oldest first (empty for an unknown table)."""
        return list_partitions(self._layout, validate_table_name(table))

    def latest_partition(self, table: str) -> str | None:
        """The newest published partition of ``table``, or ``None``."""
        partitions = self.list_partitions(table)
        return partitions[-1] if partitions else None

    def list_versions(self, table: str, partition: str) -> list[str]:
        """The kept versions of a partition in publish order, oldest first."""
        table, partition = validate_table_name(table), validate_partition(partition)
        return list(require_ref(self._layout, table, partition).history)

    def partition_path(self, table: str, partition: str) -> str:
        """The plain-Parquet directory of a partition's current version.

        On a local filesystem this is the ``ds=<day>`` symlink; elsewhere the version's
        directory (a path in :attr:`filesystem`).
        """
        table, partition = validate_table_name(table), validate_partition(partition)
        ref = require_ref(self._layout, table, partition)
        if self._layout.local:
            return self._layout.view_path(table, partition)
        return self._layout.version_dir(table, partition, ref.current)

    # -- internals (table and partition already validated) ----------------------------

    def _locked(self, table: str, partition: str) -> contextlib.AbstractContextManager[None]:
        """The partition's writer lock (local filesystem only)."""
        return writer_lock(self._layout.lock_path(table, partition), local=self._layout.local)

    def _iter_batches(
        self,
        table: str,
        partition: str,
        columns: list[str] | None,
        batch_size: int,
        version: str | None,
    ) -> Iterator[pa.RecordBatch]:
        with open_version(self._layout, table, partition, version, columns) as handles:
            for handle in handles:
                yield from parquet.iter_open_file(handle, columns=columns, batch_size=batch_size)
