"""The store's own table format: version directories, refs and manifests, a ``ds=`` view.

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
Readers that must not retry read ``os.path.realpath(partition_path(...))`` instead: a version
directory never changes and outlives its replacement by the retention grace.

Object stores have no lock: concurrent publishes of the same partition are last-writer-wins,
and version directories outside history are only deleted after
:data:`~airflow_mlops.store.refs.ORPHAN_GRACE`. :mod:`~airflow_mlops.store.delta` is the
format that lifts those limits.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from airflow_mlops.exceptions import PartitionNotFoundError, format_names
from airflow_mlops.io import parquet
from airflow_mlops.io.durable import writer_lock
from airflow_mlops.store.publish import (
    build_manifest,
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
    new_version_id,
    published,
    require_ref,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    import pyarrow as pa

    from airflow_mlops.contract import FeatureContract
    from airflow_mlops.store.layout import StoreLayout
    from airflow_mlops.store.publish import Manifest

_log = logging.getLogger(__name__)


class RefTables:
    """The feature tables under one store root, in the store's own format (module
    docstring). Table and partition arguments are expected validated.

    :param layout: the store's filesystem, root and paths.
    :param keep_versions: versions of each partition kept for rollback (>= 1).
    :param grace: how long the files of a version that left history stay for readers.
    """

    def __init__(self, layout: StoreLayout, *, keep_versions: int, grace: dt.timedelta) -> None:
        self.layout = layout
        self.keep_versions = keep_versions
        self.grace = grace

    def publish(
        self,
        table: str,
        partition: str,
        batches: Iterable[pa.RecordBatch],
        *,
        schema: pa.Schema | None,
        contract: FeatureContract | None,
        lineage: dict[str, Any] | None,
        on_batch: Callable[[int], None] | None,
        max_rows_per_file: int,
    ) -> Manifest:
        """Write a new version directory, then advance the partition's ref to it."""
        stream, file_schema = prepare_stream(table, batches, schema=schema, contract=contract)
        version, layout = new_version_id(), self.layout
        directory = layout.version_dir(table, partition, version)
        with self._locked(table, partition):
            try:
                files = write_files(
                    layout, directory, version, stream, file_schema, on_batch, max_rows_per_file
                )
                ref = load_ref(layout, table, partition)
                previous = ref.current if ref else None
                manifest = build_manifest(
                    table, partition, version, previous, file_schema, files, contract, lineage
                )
                write_manifest(layout, directory, manifest)
            except BaseException:
                with contextlib.suppress(OSError):
                    layout.filesystem.delete_dir(directory)
                raise
            now = dt.datetime.now(dt.UTC)
            new_ref = published(ref, version, self.keep_versions, now=now, grace=self.grace)
            advance(layout, table, partition, ref, new_ref)
        return manifest

    def rollback(self, table: str, partition: str, to_version: str | None) -> Manifest:
        """Point the partition's ref at an earlier kept version again."""
        with self._locked(table, partition):
            ref = require_ref(self.layout, table, partition)
            target = to_version or ref.previous()
            if target is None:
                raise PartitionNotFoundError(
                    f"Partition {partition} of table {table!r} has no version before "
                    f"{ref.current} to roll back to (versions: {format_names(ref.history)})."
                )
            check_kept(ref, table, partition, target)
            manifest = load_manifest(self.layout, table, partition, target)
            retired = ref.in_grace(dt.datetime.now(dt.UTC), self.grace)
            advance(self.layout, table, partition, ref, PartitionRef(target, ref.history, retired))
        return manifest

    def read(
        self, table: str, partition: str, columns: list[str] | None, version: str | None
    ) -> pa.Table:
        """One partition version's files as one table (their schema)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        with open_version(self.layout, table, partition, version, columns) as handles:
            pieces = [pq.ParquetFile(handle).read(columns=columns) for handle in handles]
        return pieces[0] if len(pieces) == 1 else pa.concat_tables(pieces)

    def read_batches(
        self,
        table: str,
        partition: str,
        columns: list[str] | None,
        version: str | None,
        batch_size: int,
    ) -> Iterator[pa.RecordBatch]:
        """One partition version's files as record batches."""
        with open_version(self.layout, table, partition, version, columns) as handles:
            for handle in handles:
                yield from parquet.iter_open_file(handle, columns=columns, batch_size=batch_size)

    def manifest(self, table: str, partition: str, version: str | None) -> Manifest:
        return find_manifest(self.layout, table, partition, version)

    def verify(self, manifest: Manifest) -> None:
        """Every file's SHA-256 and size against ``manifest``."""
        layout = self.layout
        directory = layout.version_dir(
            manifest["table"], manifest["partition"], manifest["version"]
        )
        verify_files(layout.filesystem, directory, manifest)

    def tables(self) -> list[str]:
        return list_tables(self.layout)

    def partitions(self, table: str) -> list[str]:
        return list_partitions(self.layout, table)

    def versions(self, table: str, partition: str) -> list[str]:
        return list(require_ref(self.layout, table, partition).history)

    def version_files(self, manifest: Manifest) -> list[str]:
        """The paths of a version's data files (in :attr:`layout`'s filesystem), in order."""
        layout = self.layout
        directory = layout.version_dir(
            manifest["table"], manifest["partition"], manifest["version"]
        )
        return [f"{directory}/{entry['path']}" for entry in manifest["files"]]

    def partition_path(self, table: str, partition: str) -> str:
        """The ``ds=<day>`` symlink locally; elsewhere the current version's directory."""
        ref = require_ref(self.layout, table, partition)
        if self.layout.local:
            return self.layout.view_path(table, partition)
        return self.layout.version_dir(table, partition, ref.current)

    def _locked(self, table: str, partition: str) -> contextlib.AbstractContextManager[None]:
        """The partition's writer lock (local filesystem only)."""
        return writer_lock(self.layout.lock_path(table, partition), local=self.layout.local)
