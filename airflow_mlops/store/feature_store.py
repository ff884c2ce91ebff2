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
import hashlib
import json
import logging
import re
from typing import TYPE_CHECKING, Any

from airflow_mlops.exceptions import (
    ArgumentError,
    ChecksumMismatchError,
    PartitionNotFoundError,
    StoreCorruptionError,
    StoreError,
    TableNameError,
    format_names,
    shown_value,
)
from airflow_mlops.io import parquet
from airflow_mlops.io.durable import (
    as_io_error,
    file_lock,
    fsync_dir,
    fsync_file,
    list_dir,
    read_bytes,
    remove_temps,
    swap_symlink,
    write_atomic,
    write_json,
    writer_lock,
)
from airflow_mlops.partition import days_between, validate_partition
from airflow_mlops.store.publish import (
    PARTITION_COLUMN,
    RowSplitter,
    build_manifest,
    content_sha256,
    lineage_json,
    prepare_stream,
)
from airflow_mlops.store.refs import (
    PartitionRef,
    new_version_id,
    published,
    read_ref,
    version_created,
    write_ref,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping

    import pyarrow as pa
    import pyarrow.fs as pafs

    from airflow_mlops.contract import FeatureContract

_log = logging.getLogger(__name__)

_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_STAGING = "_staging"
_REF_FILE = re.compile(r"^ds=(\d{4}-\d{2}-\d{2})\.json$")
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._=-]")
MANIFEST_FILE = "_manifest.json"
# on object stores (no lock) a version dir outside history may be a concurrent writer's
ORPHAN_GRACE = dt.timedelta(hours=1)
_READ_ATTEMPTS = 3
_SIDECAR_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def validate_table_name(value: object) -> str:
    """``value`` if it is a valid table name, else :class:`TableNameError`."""
    if isinstance(value, str) and _TABLE_NAME.match(value) and value != _STAGING:
        return value
    raise TableNameError(
        "A feature table name must start with a letter or underscore and contain only "
        f"letters, digits and underscores (at most 128 characters; {_STAGING!r} is reserved). "
        f"Got {shown_value(value, limit=200)} instead."
    )


class FeatureStore:
    """Partitioned, versioned Parquet feature tables under a local path or object-store URI.

    A publish writes a new version directory, then replaces the partition's ref in one
    atomic step: readers see the old or the new version, never a mix, even if the writer
    is killed. The newest ``keep_versions`` versions stay available for :meth:`rollback`.

    On a local filesystem publishes and rollbacks of one partition are serialised with an
    ``flock``. Object stores have no lock: concurrent publishes of the same partition are
    last-writer-wins (keep one writer per partition, e.g. with ``max_active_runs=1`` or a
    pool), and version directories outside history are only deleted after
    :data:`ORPHAN_GRACE`.

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

        if (
            isinstance(keep_versions, bool)
            or not isinstance(keep_versions, int)
            or keep_versions < 1
        ):
            raise ArgumentError(
                "The 'keep_versions' parameter of FeatureStore must be an int >= 1. "
                f"Got {keep_versions!r} instead."
            )
        if (
            isinstance(retention_grace, bool)
            or not isinstance(retention_grace, int | float)
            or not retention_grace >= 0
        ):
            raise ArgumentError(
                "The 'retention_grace' parameter of FeatureStore must be a number of seconds "
                f">= 0. Got {retention_grace!r} instead."
            )
        if not root:
            raise ArgumentError(
                f"The 'root' parameter of FeatureStore must be a path or URI. Got {root!r} instead."
            )
        self._fs, self._root, self._local = parquet.open_root(root, filesystem)
        self.keep_versions = keep_versions
        self._grace = dt.timedelta(seconds=retention_grace)

    def __repr__(self) -> str:
        return f"FeatureStore(root={self.root!r}, keep_versions={self.keep_versions})"

    @property
    def filesystem(self) -> pafs.FileSystem:
        """The pyarrow filesystem every path of this store lives in."""
        return self._fs

    @property
    def retention_grace(self) -> float:
        """Seconds the files of a version that left history are kept for late readers."""
        return self._grace.total_seconds()

    @property
    def root(self) -> str:
        """The store's root as a path in :attr:`filesystem`."""
        return self._root or "/"

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
    ) -> dict[str, Any]:
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
        version = new_version_id()
        directory = self._version_dir(table, partition, version)
        with self._locked(table, partition):
            try:
                files = self._write_files(
                    directory, version, stream, file_schema, on_batch, max_rows_per_file
                )
                ref = self._read_ref(table, partition)
                manifest = build_manifest(
                    table, partition, version, ref, file_schema, files, contract, lineage_facts
                )
                with as_io_error(directory, "write the manifest of"):
                    write_json(
                        self._fs, f"{directory}/{MANIFEST_FILE}", manifest, local=self._local
                    )
                    if self._local:
                        for path in (directory, directory.rsplit("/", 1)[0]):
                            fsync_dir(path)
            except BaseException:
                with contextlib.suppress(OSError):
                    self._fs.delete_dir(directory)
                raise
            now = dt.datetime.now(dt.UTC)
            new_ref = published(ref, version, self.keep_versions, now=now, grace=self._grace)
            self._advance(table, partition, ref, new_ref)
        _log.info(
            "Published table %r partition %s version %s: %d rows in %d file(s)",
            table,
            partition,
            version,
            manifest["row_count"],
            len(files),
        )
        return manifest

    def rollback(
        self, table: str, partition: str, *, to_version: str | None = None
    ) -> dict[str, Any]:
        """Make an earlier version current again and return its manifest.

        :param to_version: the version to restore; by default the one before the current
            version in history.
        """
        table, partition = validate_table_name(table), validate_partition(partition)
        with self._locked(table, partition):
            ref = self._require_ref(table, partition)
            target = to_version or ref.previous()
            if target is None:
                raise PartitionNotFoundError(
                    f"Partition {partition} of table {table!r} has no version before "
                    f"{ref.current} to roll back to (versions: {format_names(ref.history)})."
                )
            self._check_version(table, partition, ref, target)
            manifest = self._load_manifest(table, partition, target)
            retired = ref.in_grace(dt.datetime.now(dt.UTC), self._grace)
            self._advance(table, partition, ref, PartitionRef(target, ref.history, retired))
        _log.info(
            "Rolled back table %r partition %s from %s to %s", table, partition, ref.current, target
        )
        return manifest

    def staging_path(self, *parts: str) -> str:
        """A path under ``<root>/_staging/`` for upstream tasks' scratch files.

        Characters other than letters, digits and ``._=-`` are mapped to ``_`` and a short
        hash of the original is appended, so run ids like
        ``scheduled__2026-01-05T03:00:00+00:00`` stay distinct and deterministic.
        """
        if not parts:
            raise ArgumentError("staging_path needs at least one part. Got none.")
        return "/".join([self._root, _STAGING, *(_safe_component(part) for part in parts)])

    def clean_staging(
        self, older_than: dt.timedelta, *, now: dt.datetime | None = None
    ) -> list[str]:
        """Delete staged run directories (``_staging/<dag>/<run>``) not written for a while.

        A run's staged files are kept while its tasks may be retried or cleared; once the
        newest file of a run is older than ``older_than`` the run's directory goes.
        Returns the deleted directories. ``now`` is for tests (default: the clock).
        """
        import pyarrow.fs as pafs

        if older_than.total_seconds() < 0:
            raise ArgumentError(f"clean_staging needs older_than >= 0. Got {older_than!r} instead.")
        cutoff = (now or dt.datetime.now(dt.UTC)) - older_than
        staging = f"{self._root}/{_STAGING}"
        removed = []
        for dag in self._fs.get_file_info(pafs.FileSelector(staging, allow_not_found=True)):
            if dag.type != pafs.FileType.Directory:
                continue
            for run in self._fs.get_file_info(pafs.FileSelector(dag.path)):
                if run.type != pafs.FileType.Directory:
                    continue
                files = self._fs.get_file_info(pafs.FileSelector(run.path, recursive=True))
                newest = max((f.mtime for f in files if f.mtime is not None), default=run.mtime)
                if newest is None or newest.astimezone(dt.UTC) < cutoff:
                    with as_io_error(run.path, "delete"):
                        self._fs.delete_dir(run.path)
                    removed.append(run.path)
        if removed:
            _log.info("Removed %d staged run director(ies) older than %s", len(removed), older_than)
        return removed

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
        with self._open_version(table, partition, version, columns) as handles:
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
            raise PartitionNotFoundError(self._missing_message(table, partition=None))
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

    def manifest(self, table: str, partition: str, *, version: str | None = None) -> dict[str, Any]:
        """The manifest of the current version of a partition, or of ``version``."""
        table, partition = validate_table_name(table), validate_partition(partition)
        ref = self._require_ref(table, partition)
        if version is not None:
            self._check_version(table, partition, ref, version)
        return self._load_manifest(table, partition, version or ref.current)

    def verify(self, table: str, partition: str, *, version: str | None = None) -> dict[str, Any]:
        """Recompute every file's SHA-256 and size; :class:`ChecksumMismatchError` if any differ.

        Returns the verified manifest.
        """
        manifest = self.manifest(table, partition, version=version)
        directory = self._version_dir(manifest["table"], manifest["partition"], manifest["version"])
        problems = []
        actual = []
        for entry in manifest["files"]:
            try:
                sha, size = parquet.file_sha256(self._fs, f"{directory}/{entry['path']}")
            except FileNotFoundError:
                problems.append(f"{entry['path']} is missing")
                actual.append("missing")
                continue
            actual.append(sha)
            if (sha, size) != (entry["sha256"], entry["bytes"]):
                problems.append(
                    f"{entry['path']} has sha256 {sha} and {size} bytes, "
                    f"manifest says {entry['sha256']} and {entry['bytes']}"
                )
        if content_sha256(f["sha256"] for f in manifest["files"]) != manifest["content_sha256"]:
            problems.append("content_sha256 does not match the files' checksums")
        if problems:
            raise ChecksumMismatchError(
                f"Version {manifest['version']} of table {manifest['table']!r} partition "
                f"{manifest['partition']} failed verification: {format_names(problems, 5)}. "
                "Roll back to an earlier version or publish the partition again.",
                path=directory,
                expected=manifest["content_sha256"],
                actual=content_sha256(actual),
            )
        return manifest

    # -- sidecars: files kept beside a table or a partition (reports, profiles) -------

    def write_sidecar(
        self, table: str, name: str, payload: bytes, *, partition: str | None = None
    ) -> str:
        """Store ``payload`` as ``name`` beside ``table`` (or one partition); its path.

        Replaced atomically, like a ref; plain Parquet readers skip it (``_sidecars``).
        Locally, writers of one sidecar are serialised with an ``flock`` and each deletes
        the temp files killed writers left.
        """
        path = self._sidecar_path(table, name, partition)
        if not self._local:
            with as_io_error(path, "write"):
                write_atomic(self._fs, path, payload, local=False)
            return path
        where = f"/ds={partition}" if partition is not None else ""
        lock = f"{self._table_dir(table)}/_locks/_sidecars{where}/{name}.lock"
        with as_io_error(path, "lock"), file_lock(lock):
            with as_io_error(path, "write"):
                write_atomic(self._fs, path, payload, local=True)
            with contextlib.suppress(OSError):
                remove_temps(path.rsplit("/", 1)[0], name)
        return path

    def read_sidecar(self, table: str, name: str, *, partition: str | None = None) -> bytes:
        """The sidecar ``name`` of ``table`` (or one partition)."""
        path = self._sidecar_path(table, name, partition)
        payload = read_bytes(self._fs, path)
        if payload is None:
            where = f"partition {partition} of " if partition else ""
            raise PartitionNotFoundError(
                f"No {name!r} is stored beside {where}table {table!r} ({path}). Create it "
                "first (e.g. build the drift profile) or check the name."
            )
        return payload

    def sidecar_uri(self, table: str, name: str, *, partition: str | None = None) -> str:
        """Where a sidecar lives, as a URI a person can open (``file://`` locally)."""
        path = self._sidecar_path(table, name, partition)
        return f"file://{path}" if self._local else path

    def _sidecar_path(self, table: str, name: str, partition: str | None) -> str:
        validate_table_name(table)
        if not _SIDECAR_NAME.match(name):
            raise ArgumentError(
                "A sidecar name must be letters, digits, '.', '_' or '-' (no path). "
                f"Got {name!r} instead."
            )
        where = f"/ds={validate_partition(partition)}" if partition is not None else ""
        return f"{self._table_dir(table)}/_sidecars{where}/{name}"

    # -- listing ---------------------------------------------------------------------

    def list_tables(self) -> list[str]:
        """Tables with at least one published partition, sorted."""
        import pyarrow.fs as pafs

        return sorted(
            info.base_name
            for info in list_dir(self._fs, self._root)
            if info.type == pafs.FileType.Directory
            and info.base_name != _STAGING
            and _TABLE_NAME.match(info.base_name)
            and self.list_partitions(info.base_name)
        )

    def list_partitions(self, table: str) -> list[str]:
        """Published partitions of ``table``, oldest first (empty for an unknown table)."""
        refs = f"{self._table_dir(validate_table_name(table))}/_refs"
        matches = (_REF_FILE.match(info.base_name) for info in list_dir(self._fs, refs))
        return sorted(match.group(1) for match in matches if match)

    def latest_partition(self, table: str) -> str | None:
        """The newest published partition of ``table``, or ``None``."""
        partitions = self.list_partitions(table)
        return partitions[-1] if partitions else None

    def list_versions(self, table: str, partition: str) -> list[str]:
        """The kept versions of a partition in publish order, oldest first."""
        table, partition = validate_table_name(table), validate_partition(partition)
        return list(self._require_ref(table, partition).history)

    def partition_path(self, table: str, partition: str) -> str:
        """The plain-Parquet directory of a partition's current version.

        On a local filesystem this is the ``ds=<day>`` symlink; elsewhere the version's
        directory (a path in :attr:`filesystem`).
        """
        table, partition = validate_table_name(table), validate_partition(partition)
        ref = self._require_ref(table, partition)
        if self._local:
            return self._view_path(table, partition)
        return self._version_dir(table, partition, ref.current)

    # -- internals -------------------------------------------------------------------

    def _table_dir(self, table: str) -> str:
        return f"{self._root}/{table}"

    def _ref_path(self, table: str, partition: str) -> str:
        return f"{self._table_dir(table)}/_refs/ds={partition}.json"

    def _versions_dir(self, table: str, partition: str) -> str:
        return f"{self._table_dir(table)}/_versions/ds={partition}"

    def _version_dir(self, table: str, partition: str, version: str) -> str:
        return f"{self._versions_dir(table, partition)}/{version}"

    def _view_path(self, table: str, partition: str) -> str:
        return f"{self._table_dir(table)}/{PARTITION_COLUMN}={partition}"

    def _locked(self, table: str, partition: str) -> contextlib.AbstractContextManager[None]:
        path = f"{self._table_dir(table)}/_locks/ds={partition}.lock"
        return writer_lock(path, local=self._local)

    def _read_ref(self, table: str, partition: str) -> PartitionRef | None:
        path = self._ref_path(table, partition)
        with as_io_error(path, "read"):
            try:
                return read_ref(self._fs, path)
            except (ValueError, KeyError, TypeError) as exc:
                raise StoreCorruptionError(
                    f"The partition ref {path} is damaged ({exc!r}). Restore it from a backup, "
                    "or delete it and publish the partition again."
                ) from exc

    def _require_ref(self, table: str, partition: str) -> PartitionRef:
        ref = self._read_ref(table, partition)
        if ref is None:
            raise PartitionNotFoundError(self._missing_message(table, partition))
        return ref

    def _missing_message(self, table: str, partition: str | None) -> str:
        partitions = self.list_partitions(table)
        if not partitions:
            tables = format_names(self.list_tables()) or "none"
            return f"No table {table!r} in the feature store at {self.root}. Tables: {tables}."
        latest = format_names(reversed(partitions), limit=5)
        return (
            f"Table {table!r} has no partition {partition} in the feature store at "
            f"{self.root}. Latest partitions: {latest}."
        )

    def _check_version(self, table: str, partition: str, ref: PartitionRef, version: str) -> None:
        if version not in ref.history:
            raise PartitionNotFoundError(
                f"Partition {partition} of table {table!r} has no version {version!r}. "
                f"Kept versions: {format_names(ref.history)}."
            )

    def _load_manifest(self, table: str, partition: str, version: str) -> dict[str, Any]:
        path = f"{self._version_dir(table, partition, version)}/{MANIFEST_FILE}"
        with as_io_error(path, "read"):
            data = read_bytes(self._fs, path)
            if data is None:
                raise _vanished(path)
            try:
                manifest: dict[str, Any] = json.loads(data.decode("utf-8"))
            except ValueError as exc:
                raise StoreCorruptionError(
                    f"The manifest {path} is damaged ({exc!r}). Roll back to an earlier "
                    "version or publish the partition again."
                ) from exc
        return manifest

    def _write_files(
        self,
        directory: str,
        version: str,
        stream: Iterator[pa.RecordBatch],
        schema: pa.Schema,
        on_batch: Callable[[int], None] | None,
        max_rows: int,
    ) -> list[parquet.WrittenFile]:
        splitter = RowSplitter(stream, max_rows)
        written: list[parquet.WrittenFile] = []
        while not written or splitter.has_more():
            path = f"{directory}/part-{len(written):05d}-{version}.parquet"
            with as_io_error(path, "write"):
                written.append(
                    parquet.write_batches(
                        splitter.next_file(), self._fs, path, schema=schema, on_batch=on_batch
                    )
                )
                if self._local:
                    fsync_file(path)
        return written

    def _commit(self, table: str, partition: str, ref: PartitionRef) -> None:
        """Replace the ref (the commit point), then, locally, swap the Hive view symlink."""
        path = self._ref_path(table, partition)
        with as_io_error(path, "write"):
            write_ref(self._fs, path, ref, local=self._local)
        if self._local:
            view = self._view_path(table, partition)
            with as_io_error(view, "update the symlink"):
                swap_symlink(view, f"_versions/ds={partition}/{ref.current}")

    def _advance(
        self, table: str, partition: str, old: PartitionRef | None, new: PartitionRef
    ) -> None:
        """Commit ``new``, then delete what neither it nor its grace period protects."""
        self._commit(table, partition, new)
        protected = {*new.history, new.current, *new.retired}
        released = {*old.history, *old.retired} - protected if old else set()
        self._remove_leftovers(table, partition, protected, released)

    def _remove_leftovers(
        self, table: str, partition: str, protected: set[str], released: set[str]
    ) -> None:
        """Delete unprotected version dirs and stale temp files; failures only warn.

        Locally (under the lock) a version dir the ref does not protect is a leftover of a
        killed writer or out of its grace period. Without a lock, a dir the ref never knew
        may be a concurrent writer's: it goes only after :data:`ORPHAN_GRACE`.
        """
        import pyarrow.fs as pafs

        try:
            for info in list_dir(self._fs, self._versions_dir(table, partition)):
                name = info.base_name
                if info.type != pafs.FileType.Directory or name in protected:
                    continue
                if self._local or name in released or _is_stale(name):
                    self._fs.delete_dir(info.path)
            if self._local:
                remove_temps(f"{self._table_dir(table)}/_refs", f"ds={partition}.json")
                remove_temps(self._table_dir(table), f"{PARTITION_COLUMN}={partition}")
        except OSError as exc:
            _log.warning(
                "Could not remove old versions of table %r partition %s: %s", table, partition, exc
            )

    @contextlib.contextmanager
    def _open_version(
        self, table: str, partition: str, version: str | None, columns: list[str] | None
    ) -> Iterator[list[pa.NativeFile]]:
        """Open every file of a version up front (retrying if a publish removed it).

        Open handles keep a local version readable even if retention deletes it meanwhile.
        """
        for attempt in range(_READ_ATTEMPTS):
            with contextlib.ExitStack() as stack:
                try:
                    manifest = self.manifest(table, partition, version=version)
                    directory = self._version_dir(table, partition, manifest["version"])
                    handles = [
                        stack.enter_context(self._fs.open_input_file(f"{directory}/{f['path']}"))
                        for f in manifest["files"]
                    ]
                except (FileNotFoundError, StoreError) as exc:
                    if version is not None or attempt == _READ_ATTEMPTS - 1:
                        if isinstance(exc, StoreError):
                            raise
                        raise _vanished(str(exc.filename or exc)) from exc
                    continue
                _check_columns(table, manifest, columns)
                yield handles
                return

    def _iter_batches(
        self,
        table: str,
        partition: str,
        columns: list[str] | None,
        batch_size: int,
        version: str | None,
    ) -> Iterator[pa.RecordBatch]:
        with self._open_version(table, partition, version, columns) as handles:
            for handle in handles:
                yield from parquet.iter_open_file(handle, columns=columns, batch_size=batch_size)


def _check_columns(table: str, manifest: dict[str, Any], columns: list[str] | None) -> None:
    names = [field["name"] for field in manifest["schema"]]
    unknown = [column for column in columns or () if column not in names]
    if unknown:
        raise ArgumentError(
            f"Table {table!r} has no column(s) {format_names(unknown)}. "
            f"Its columns: {format_names(names, limit=30)}."
        )


def _safe_component(part: str) -> str:
    text = str(part)
    if not text or text in {".", ".."} or "/" in text or "\\" in text:
        raise ArgumentError(
            "Each part of a staging path must be one non-empty name without '/', '\\' or "
            f"'..'. Got {part!r} instead."
        )
    cleaned = _UNSAFE_CHARS.sub("_", text)
    if cleaned != text:
        cleaned += "-" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]
    return cleaned


def _is_stale(version: str) -> bool:
    created = version_created(version)
    return created is not None and dt.datetime.now(dt.UTC) - created > ORPHAN_GRACE


def _vanished(path: str) -> StoreError:
    return StoreError(
        f"{path} is missing: the version was removed while being read (a publish with "
        "retention ran meanwhile) or the store was damaged. Retry the read."
    )
