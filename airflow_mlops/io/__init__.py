"""Files underneath every concern: Parquet streams in and out, on a local or remote filesystem."""

from __future__ import annotations

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
    "file_sha256",
    "iter_batches",
    "open_root",
    "read_schema",
    "stored_schema",
    "write_batches",
]
