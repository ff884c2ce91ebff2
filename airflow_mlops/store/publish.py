"""Shaping a publish: batches conformed and cut into files, and the version's manifest."""

from __future__ import annotations

import hashlib
import itertools
import json
from typing import TYPE_CHECKING, Any, TypedDict

from airflow_mlops import __version__
from airflow_mlops.contract import schema_to_json
from airflow_mlops.exceptions import (
    ArgumentError,
    ChecksumMismatchError,
    ContractError,
    EmptyInputError,
    format_names,
)
from airflow_mlops.io import parquet
from airflow_mlops.io.durable import as_io_error, fsync_dir, fsync_file, write_json
from airflow_mlops.store.layout import MANIFEST_FILE, PARTITION_COLUMN
from airflow_mlops.store.refs import version_created

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping

    import pyarrow as pa
    import pyarrow.fs as pafs

    from airflow_mlops.contract import FeatureContract
    from airflow_mlops.io.parquet import WrittenFile
    from airflow_mlops.store.layout import StoreLayout


class ManifestFile(TypedDict):
    """One data file of a version, as its manifest lists it."""

    path: str
    """The file's name in the version directory (``part-00000-<version>.parquet``)."""
    rows: int
    """Rows in the file."""
    bytes: int
    """The file's size in bytes."""
    sha256: str
    """SHA-256 of the file's bytes (hex)."""


class Manifest(TypedDict):
    """A version's ``_manifest.json``: what was published, from what, and its checksums."""

    table: str
    """The feature table."""
    partition: str
    """The partition (day, ``YYYY-MM-DD``)."""
    version: str
    """The version id (``v<UTC time>Z-<8 hex>``)."""
    previous_version: str | None
    """The version that was current when this one was published (``None`` for the first)."""
    row_count: int
    """Rows in all files."""
    schema: list[dict[str, Any]]
    """The file schema as readers get it back: ``{"name", "type", "nullable"}`` per column."""
    files: list[ManifestFile]
    """The data files, in order."""
    content_sha256: str
    """SHA-256 over the files' SHA-256s in order: equal content, equal value."""
    contract: dict[str, Any] | None
    """The feature contract the batches were conformed to (its JSON), if any."""
    lineage: dict[str, Any] | None
    """Facts the writer passed (dag_id, run_id, try_number, sources…), as given."""
    package_version: str
    """The ``airflow-mlops`` version that wrote it."""
    created_at: str
    """When the version was created (UTC, ISO 8601), from its id."""


class RowSplitter:
    """Cuts a batch stream into per-file streams of at most ``max_rows`` rows."""

    def __init__(self, batches: Iterator[pa.RecordBatch], max_rows: int) -> None:
        self._batches = batches
        self._pending: pa.RecordBatch | None = None
        self._max_rows = max_rows

    def has_more(self) -> bool:
        while self._pending is None:
            batch = next(self._batches, None)
            if batch is None:
                return False
            if batch.num_rows:
                self._pending = batch
        return True

    def next_file(self) -> Iterator[pa.RecordBatch]:
        room = self._max_rows
        while room and self.has_more():
            assert self._pending is not None
            batch, self._pending = self._pending, None
            if batch.num_rows > room:
                batch, self._pending = batch.slice(0, room), batch.slice(room)
            room -= batch.num_rows
            yield batch


def prepare_stream(
    table: str,
    batches: Iterable[pa.RecordBatch],
    *,
    schema: pa.Schema | None,
    contract: FeatureContract | None,
) -> tuple[Iterator[pa.RecordBatch], pa.Schema]:
    """The batches conformed to the contract (or cast to ``schema``), and the file schema."""
    what = f"table {table!r}"
    stream = iter(batches)
    if contract is not None:
        declared = contract.to_arrow_schema()
        if schema is not None and not schema.equals(declared):
            raise ArgumentError(
                f"publish_partition got both a schema and a contract for {what}, and they "
                "differ. Pass only the contract."
            )
        schema = declared
        stream = (contract.conform(batch, what=what) for batch in stream)
    else:
        if schema is None:
            first = next(stream, None)
            if first is None:
                raise EmptyInputError(
                    f"No batches to publish to {what} and no schema or contract to write an "
                    "empty partition with. Pass schema= or contract=, or check the input."
                )
            schema, stream = first.schema, itertools.chain([first], stream)
        stream = (_cast(batch, schema, what) for batch in stream)
    if PARTITION_COLUMN in schema.names:
        raise ContractError(
            f"The {what} has a column named {PARTITION_COLUMN!r}, which is the partition "
            "column of the store's Hive layout. Rename it.",
            unexpected_columns=[PARTITION_COLUMN],
        )
    stored = parquet.stored_schema(schema)  # what readers get back, as the manifest records it
    if not stored.equals(schema):
        stream = (batch.cast(stored) for batch in stream)
    return stream, stored


def _cast(batch: pa.RecordBatch, schema: pa.Schema, what: str) -> pa.RecordBatch:
    """``batch`` with the columns and types of ``schema``, or :class:`ContractError`."""
    import pyarrow as pa

    if batch.schema.equals(schema):
        return batch
    missing = [name for name in schema.names if name not in batch.schema.names]
    unexpected = [name for name in batch.schema.names if name not in schema.names]
    if missing or unexpected:
        raise ContractError(
            f"A batch for {what} does not have the publish schema's columns: missing "
            f"{format_names(missing) or 'none'}; unexpected {format_names(unexpected) or 'none'}.",
            missing_columns=missing,
            unexpected_columns=unexpected,
        )
    try:
        return batch.select(schema.names).cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise ContractError(f"A batch for {what} does not fit the publish schema: {exc}.") from exc


def write_files(
    layout: StoreLayout,
    directory: str,
    version: str,
    stream: Iterator[pa.RecordBatch],
    schema: pa.Schema,
    on_batch: Callable[[int], None] | None,
    max_rows: int,
) -> list[WrittenFile]:
    """Write ``stream`` into ``directory`` as files of at most ``max_rows`` rows (locally
    fsynced); at least one file, so an empty partition keeps its schema.

    :raises StoreError: when a file cannot be written.
    """
    splitter = RowSplitter(stream, max_rows)
    written: list[WrittenFile] = []
    while not written or splitter.has_more():
        path = f"{directory}/part-{len(written):05d}-{version}.parquet"
        with as_io_error(path, "write"):
            written.append(
                parquet.write_batches(
                    splitter.next_file(), layout.filesystem, path, schema=schema, on_batch=on_batch
                )
            )
            if layout.local:
                fsync_file(path)
    return written


def write_manifest(layout: StoreLayout, directory: str, manifest: Manifest) -> None:
    """Write the version's manifest, last; locally, fsync it and the version directories.

    :raises StoreError: when it cannot be written.
    """
    with as_io_error(directory, "write the manifest of"):
        write_json(layout.filesystem, f"{directory}/{MANIFEST_FILE}", manifest, local=layout.local)
        if layout.local:
            for path in (directory, directory.rsplit("/", 1)[0]):
                fsync_dir(path)


def build_manifest(
    table: str,
    partition: str,
    version: str,
    previous: str | None,
    schema: pa.Schema,
    files: list[WrittenFile],
    contract: FeatureContract | None,
    lineage: dict[str, Any] | None,
) -> Manifest:
    """The manifest of ``version``, written ``files`` with ``schema``, replacing the version
    ``previous`` (None for a partition's first)."""
    created = version_created(version)
    assert created is not None
    return {
        "table": table,
        "partition": partition,
        "version": version,
        "previous_version": previous,
        "row_count": sum(f.rows for f in files),
        "schema": schema_to_json(schema),
        "files": [
            {
                "path": f.path.rsplit("/", 1)[-1],
                "rows": f.rows,
                "bytes": f.bytes,
                "sha256": f.sha256,
            }
            for f in files
        ],
        "content_sha256": content_sha256(f.sha256 for f in files),
        "contract": json.loads(contract.to_json()) if contract else None,
        "lineage": lineage,
        "package_version": __version__,
        "created_at": created.isoformat(),
    }


def content_sha256(file_shas: Iterable[str]) -> str:
    """One digest of a version's content: SHA-256 over its files' SHA-256s, in order."""
    return hashlib.sha256("".join(file_shas).encode("ascii")).hexdigest()


def verify_files(filesystem: pafs.FileSystem, directory: str, manifest: Manifest) -> None:
    """Recompute every file's SHA-256 and size and compare them with ``manifest``.

    :raises ChecksumMismatchError: naming the files that are missing or differ.
    """
    problems = []
    actual = []
    for entry in manifest["files"]:
        try:
            sha, size = parquet.file_sha256(filesystem, f"{directory}/{entry['path']}")
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


def lineage_json(lineage: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``lineage`` as plain JSON data (a copy), or :class:`ArgumentError` if it is not JSON."""
    if lineage is None:
        return None
    try:
        return json.loads(json.dumps(dict(lineage)))
    except (TypeError, ValueError) as exc:
        raise ArgumentError(
            f"The 'lineage' parameter of publish_partition must be JSON-serialisable. {exc}."
        ) from exc
