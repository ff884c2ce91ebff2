"""Streaming Parquet I/O on any pyarrow filesystem (local path or object-storage URI)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlops.exceptions import EmptyInputError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    import pyarrow as pa
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

COMPRESSION = "zstd"
ROW_GROUP_SIZE = 128 * 1024


@dataclass(frozen=True)
class WrittenFile:
    """A Parquet file that was written: where, how many rows, its size and SHA-256."""

    path: str
    rows: int
    bytes: int
    sha256: str


def resolve(uri_or_path: str) -> tuple[pafs.FileSystem, str]:
    """The filesystem and in-filesystem path of a local path or a URI (``s3://…``)."""
    import pyarrow.fs as pafs

    if "://" in uri_or_path:
        return pafs.FileSystem.from_uri(uri_or_path)
    import os

    return pafs.LocalFileSystem(), os.path.abspath(uri_or_path)


def open_root(
    root: str, filesystem: pafs.FileSystem | None = None
) -> tuple[pafs.FileSystem, str, bool]:
    """The filesystem, normalised root path and whether it is local, for a store root.

    ``filesystem`` (e.g. built with credentials) is used as given, ``root`` being a path in
    it; otherwise the root is resolved like :func:`resolve`.
    """
    import os

    import pyarrow.fs as pafs

    fs, base = resolve(root) if filesystem is None else (filesystem, root)
    local = isinstance(fs, pafs.LocalFileSystem)
    return fs, (os.path.abspath(base) if local else base).rstrip("/"), local


def file_sha256(filesystem: pafs.FileSystem, path: str, chunk: int = 4 << 20) -> tuple[str, int]:
    """SHA-256 hex digest and size of a file, read in ``chunk``-byte pieces."""
    digest = hashlib.sha256()
    size = 0
    with filesystem.open_input_stream(path) as stream:
        while True:
            block = stream.read(chunk)
            if not block:
                break
            size += len(block)
            digest.update(block)
    return digest.hexdigest(), size


def write_batches(
    batches: Iterable[pa.RecordBatch],
    filesystem: pafs.FileSystem,
    path: str,
    *,
    schema: pa.Schema | None = None,
    on_batch: Callable[[int], None] | None = None,
    allow_empty: bool = True,
) -> WrittenFile:
    """Write ``batches`` to one Parquet file, holding one batch in memory at a time.

    The schema is ``schema`` if given, else the first batch's; every batch is cast to it.
    With no batches at all, an empty file with ``schema`` is written (or, with
    ``allow_empty=False``, :class:`EmptyInputError` is raised and no file is). The file's
    SHA-256 and size are taken from the bytes as they are written (:class:`DigestSink`).
    """
    import contextlib

    writer: pq.ParquetWriter | None = None
    sink: DigestSink | None = None
    rows = 0
    filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with contextlib.ExitStack() as opened:

        def start(schema: pa.Schema) -> pq.ParquetWriter:
            nonlocal sink
            sink = DigestSink(opened.enter_context(filesystem.open_output_stream(path)))
            started = open_writer(filesystem, path, schema, sink=sink)
            opened.callback(started.close)  # before the stream closes (callbacks run LIFO)
            return started

        for batch in batches:
            if writer is None:
                schema = schema or batch.schema
                writer = start(schema)
            if batch.schema != schema:
                batch = batch.cast(schema)
            writer.write_batch(batch, row_group_size=ROW_GROUP_SIZE)
            rows += batch.num_rows
            if on_batch is not None:
                on_batch(batch.num_rows)
        if writer is None:
            if schema is None or not allow_empty:
                raise EmptyInputError(
                    f"No rows to write to {path}: the input was empty. Check the query's "
                    "filters and the partition, or allow empty input."
                )
            start(schema)
    assert sink is not None
    return WrittenFile(path=path, rows=rows, bytes=sink.size, sha256=sink.digest.hexdigest())


class DigestSink:
    """A writable file passing its bytes on to ``stream`` while hashing them (SHA-256) and
    counting them: a file's checksum known when it is written, without reading it back
    (on object storage, a second transfer of every byte)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: Any) -> int:
        self.digest.update(data)
        self.size += len(data)
        self._stream.write(data)
        return len(data)

    def flush(self) -> None:
        self._stream.flush()

    def tell(self) -> int:
        return self.size

    @property
    def closed(self) -> bool:
        return bool(self._stream.closed)

    def close(self) -> None:
        """Nothing: the stream's owner closes it (on object storage, completing the upload)."""

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False


def stored_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` as Parquet stores it and gives it back: Parquet has no seconds unit, so
    ``timestamp[s]`` becomes ``timestamp[ms]`` (the same instants); other types are kept."""
    import pyarrow as pa

    return pa.schema(
        [
            field.with_type(pa.timestamp("ms", tz=field.type.tz))
            if pa.types.is_timestamp(field.type) and field.type.unit == "s"
            else field
            for field in schema
        ],
        metadata=schema.metadata,
    )


def open_writer(
    filesystem: pafs.FileSystem, path: str, schema: pa.Schema, *, sink: Any = None
) -> pq.ParquetWriter:
    """A Parquet writer with the package's settings, for push-style writing: to ``path``, or
    into ``sink`` (a writable file, e.g. a :class:`DigestSink`) when given."""
    import pyarrow.parquet as pq

    if sink is None:
        filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)

    return pq.ParquetWriter(
        path if sink is None else sink,
        schema,
        filesystem=filesystem if sink is None else None,
        compression=COMPRESSION,
        # Dictionary pages cost ~2x the encode time of plain zstd pages and, measured on the
        # extract benchmark's table, gave larger files (docs/benchmarks.md).
        use_dictionary=False,
        write_statistics=True,
    )


def iter_batches(
    filesystem: pafs.FileSystem,
    paths: str | list[str],
    *,
    columns: list[str] | None = None,
    batch_size: int = 64 * 1024,
) -> Iterator[pa.RecordBatch]:
    """Record batches of one or several Parquet files, ``batch_size`` rows at a time."""

    for path in [paths] if isinstance(paths, str) else paths:
        with filesystem.open_input_file(path) as handle:
            yield from iter_open_file(handle, columns=columns, batch_size=batch_size)


def iter_open_file(
    handle: Any, *, columns: list[str] | None = None, batch_size: int = 64 * 1024
) -> Iterator[pa.RecordBatch]:
    """Record batches of one open Parquet file, memory bounded by the batch.

    ``pre_buffer`` is off: it would hold every column chunk of the file, so memory would
    grow with the file, not the batch (measured: 175 MiB at 5M rows, 18 MiB without).
    """
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(handle, pre_buffer=False)
    yield from parquet.iter_batches(batch_size=batch_size, columns=columns)


def read_schema(filesystem: pafs.FileSystem, path: str) -> pa.Schema:
    import pyarrow.parquet as pq

    with filesystem.open_input_file(path) as handle:
        return pq.ParquetFile(handle).schema_arrow
