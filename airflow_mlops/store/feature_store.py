"""The feature store: partitioned Parquet feature tables with atomic, versioned publishes.

:class:`FeatureStore` is the public API (publish, rollback, reads, listings, sidecars,
staging, logs) over one of two table formats, chosen per store: ``"parquet"``, the store's
own (:mod:`~airflow_mlops.store.ref_tables`: version directories, refs, a ``ds=`` view on
local disk), or ``"delta"``, Delta Lake tables (:mod:`~airflow_mlops.store.delta`: one commit
per publish, readable by any Delta reader, safe concurrent writers on object storage,
schema evolution across days). Both give the same guarantees to this API: a publish is
atomic, a reader sees one whole version, the newest ``keep_versions`` stay for rollback.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from airflow_mlops.checks import check_choice, check_int, check_number
from airflow_mlops.exceptions import ArgumentError, PartitionNotFoundError, format_names
from airflow_mlops.io import parquet
from airflow_mlops.io.object_storage import s3_filesystem
from airflow_mlops.partition import days_between, validate_partition
from airflow_mlops.store.delta import DeltaFeatureTables
from airflow_mlops.store.layout import (
    PARTITION_COLUMN,
    StoreLayout,
    missing_partition_message,
    validate_table_name,
)
from airflow_mlops.store.publish import lineage_json
from airflow_mlops.store.ref_tables import RefTables
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
#: The table formats a store can hold (see the module docstring).
TABLE_FORMATS = ("parquet", "delta")


class FeatureStore:
    """Partitioned, versioned Parquet feature tables under a local path or object-store URI.

    A publish writes new files, then makes them the partition's current version in one
    atomic step: readers see the old or the new version, never a mix, even if the writer
    is killed. The newest ``keep_versions`` versions stay available for :meth:`rollback`.
    On a local filesystem publishes and rollbacks of one partition are serialised with an
    ``flock``; on object storage, the ``"parquet"`` format is last-writer-wins (keep one
    writer per partition) while ``"delta"`` refuses the later of two concurrent commits
    (:class:`~airflow_mlops.exceptions.ConcurrentPublishError`, retryable).

    :param root: a local directory or a URI such as ``s3://bucket/features``.
    :param keep_versions: how many versions of each partition to keep (at least 1).
    :param retention_grace: seconds the files of a version that left history are kept
        before deletion, so that a plain reader which listed them just before can finish.
    :param filesystem: a pyarrow filesystem to use instead of resolving ``root`` (e.g. one
        built with credentials from an Airflow connection); ``root`` is then a path in it.
    :param table_format: ``"parquet"`` or ``"delta"`` (module docstring).
    :param storage_options: the object store's settings, as delta-rs takes them
        (``AWS_ENDPOINT_URL``, ``AWS_REGION``, credentials, ``AWS_ALLOW_HTTP``,
        ``AWS_CONDITIONAL_PUT``…); with an ``s3://`` root and no ``filesystem``, the pyarrow
        filesystem is built from them too (:mod:`~airflow_mlops.io.object_storage`).

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
        table_format: str = "parquet",
        storage_options: Mapping[str, str] | None = None,
    ) -> None:
        self.keep_versions = check_int(keep_versions, "keep_versions", "FeatureStore")
        self.table_format = check_choice(
            table_format, "table_format", "FeatureStore", TABLE_FORMATS
        )
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
        if filesystem is None and storage_options and root.startswith("s3://"):
            filesystem, root = s3_filesystem(storage_options), root.removeprefix("s3://")
        self._layout = StoreLayout(*parquet.open_root(root, filesystem))
        self._grace = dt.timedelta(seconds=grace)
        self._tables: RefTables | DeltaFeatureTables
        if self.table_format == "delta":
            self._tables = DeltaFeatureTables(
                self._layout,
                storage_options=storage_options,
                keep_versions=self.keep_versions,
                grace=self._grace,
            )
        else:
            self._tables = RefTables(
                self._layout, keep_versions=self.keep_versions, grace=self._grace
            )

    def __repr__(self) -> str:
        return (
            f"FeatureStore(root={self.root!r}, keep_versions={self.keep_versions}, "
            f"table_format={self.table_format!r})"
        )

    @property
    def filesystem(self) -> pafs.FileSystem:
        """The pyarrow filesystem every path of this store lives in."""
        return self._layout.filesystem

    @property
    def tables(self) -> RefTables | DeltaFeatureTables:
        """The table format's own API under this facade (:mod:`~airflow_mlops.store.ref_tables`
        or :mod:`~airflow_mlops.store.delta`): for migrations and format-specific work."""
        return self._tables

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
        manifest = self._tables.publish(
            table,
            partition,
            batches,
            schema=schema,
            contract=contract,
            lineage=lineage_json(lineage),
            on_batch=on_batch,
            max_rows_per_file=max_rows_per_file,
        )
        _log.info(
            "Published table %r partition %s version %s: %d rows in %d file(s)",
            table,
            partition,
            manifest["version"],
            manifest["row_count"],
            len(manifest["files"]),
        )
        return manifest

    def rollback(self, table: str, partition: str, *, to_version: str | None = None) -> Manifest:
        """Make an earlier version current again and return its manifest.

        :param to_version: the version to restore; by default the one before the current
            version in history.
        """
        table, partition = validate_table_name(table), validate_partition(partition)
        current = self._tables.manifest(table, partition, version=None)["version"]
        manifest = self._tables.rollback(table, partition, to_version=to_version)
        _log.info(
            "Rolled back table %r partition %s from %s to %s",
            table,
            partition,
            current,
            manifest["version"],
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
        table, partition = validate_table_name(table), validate_partition(partition)
        return self._tables.read(table, partition, columns=columns, version=version)

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
        return self._tables.read_batches(
            table, partition, columns=columns, version=version, batch_size=batch_size
        )

    def read_latest(self, table: str, *, columns: list[str] | None = None) -> pa.Table:
        """The newest partition of ``table``."""
        latest = self.latest_partition(table)
        if latest is None:
            tables = self.list_tables()
            message = missing_partition_message(self.root, table, None, [], tables)
            raise PartitionNotFoundError(message)
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
        return self._tables.manifest(table, partition, version=version)

    def verify(self, table: str, partition: str, *, version: str | None = None) -> Manifest:
        """Recompute every file's SHA-256 and size; :class:`ChecksumMismatchError` if any differ.

        Returns the verified manifest.
        """
        manifest = self.manifest(table, partition, version=version)
        self._tables.verify(manifest)
        return manifest

    # -- listing ---------------------------------------------------------------------

    def list_tables(self) -> list[str]:
        """Tables with at least one published partition, sorted."""
        return self._tables.tables()

    def list_partitions(self, table: str) -> list[str]:
        """Published partitions of ``table``, oldest first (empty for an unknown table)."""
        return self._tables.partitions(validate_table_name(table))

    def latest_partition(self, table: str) -> str | None:
        """The newest published partition of ``table``, or ``None``."""
        partitions = self.list_partitions(table)
        return partitions[-1] if partitions else None

    def list_versions(self, table: str, partition: str) -> list[str]:
        """The kept versions of a partition in publish order, oldest first."""
        table, partition = validate_table_name(table), validate_partition(partition)
        return self._tables.versions(table, partition)

    def partition_path(self, table: str, partition: str) -> str:
        """Where plain readers find a partition's current version.

        ``"parquet"``: on a local filesystem the ``ds=<day>`` symlink, elsewhere the version's
        directory (a path in :attr:`filesystem`). ``"delta"``: the table's location, read
        through its log (docs/delta.md).
        """
        table, partition = validate_table_name(table), validate_partition(partition)
        return self._tables.partition_path(table, partition)
