"""Files underneath every concern: Parquet streams in and out, and durable writes (atomic
replaces, fsyncs, temp files, locks), on a local or remote filesystem."""

from __future__ import annotations

from airflow_mlops.io.durable import (
    as_io_error,
    file_lock,
    fsync_dir,
    fsync_file,
    list_dir,
    read_bytes,
    remove_temps,
    swap_symlink,
    temp_name,
    write_atomic,
    write_json,
    writer_lock,
)
from airflow_mlops.io.parquet import (
    WrittenFile,
    file_sha256,
    iter_batches,
    open_root,
    read_schema,
    stored_schema,
    write_batches,
)

__all__ = [
    "WrittenFile",
    "as_io_error",
    "file_lock",
    "file_sha256",
    "fsync_dir",
    "fsync_file",
    "iter_batches",
    "list_dir",
    "open_root",
    "read_bytes",
    "read_schema",
    "remove_temps",
    "stored_schema",
    "swap_symlink",
    "temp_name",
    "write_atomic",
    "write_batches",
    "write_json",
    "writer_lock",
]
