"""Append-only logs: Parquet segments under ``<root>/_logs/<log>/ds=<day>/``.

A writer that produces rows all day (an online server's request log) cannot publish a
partition per row; it appends *segments*, each a whole Parquet file written in one atomic
step (a fsynced temp file renamed into place locally, one PUT on an object store), named so
that writers in several processes and hosts never collide::

    _logs/<log>/ds=<day>/<UTC time>-<host>-<pid>-<sequence>.parquet

Readers list a day's segments (temp files, ``.``-prefixed, are never listed) and read them
one at a time; a job then publishes the day as a table partition (e.g.
:func:`airflow_mlops.serving.log_tables.publish_log_day`). Segments are not versioned: what a
day holds grows until its writers move on to the next day.
"""

from __future__ import annotations

import itertools
import os
import socket
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from airflow_mlops.exceptions import ContractError
from airflow_mlops.io.durable import as_io_error, list_dir, write_atomic
from airflow_mlops.partition import validate_partition
from airflow_mlops.store.layout import LOGS_DIR, PARTITION_COLUMN, validate_table_name

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pyarrow as pa

    from airflow_mlops.store.layout import StoreLayout

SEGMENT_SUFFIX = ".parquet"
_sequence = itertools.count()


class StoreLogs:
    """The append-only logs of one store (``FeatureStore.logs``).

    :param layout: the store's layout.
    """

    def __init__(self, layout: StoreLayout) -> None:
        self._layout = layout

    def day_dir(self, log: str, day: str) -> str:
        """The directory of ``log``'s segments of ``day`` (both validated)."""
        log, day = validate_table_name(log), validate_partition(day)
        return f"{self._layout.root}/{LOGS_DIR}/{log}/{PARTITION_COLUMN}={day}"

    def write(self, log: str, day: str, table: pa.Table) -> str:
        """Append ``table`` to ``log`` as one segment of ``day``, atomically; its path.

        :raises TableNameError, PartitionError: for a bad log name or day.
        :raises StoreError: when the write fails.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        directory = self.day_dir(log, day)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        host = socket.gethostname().replace("-", "_") or "host"
        name = f"{stamp}-{host}-{os.getpid()}-{next(_sequence)}{SEGMENT_SUFFIX}"
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        path = f"{directory}/{name}"
        layout = self._layout
        with as_io_error(path, "write"):
            write_atomic(layout.filesystem, path, sink.getvalue().to_pybytes(), local=layout.local)
        return path

    def segments(self, log: str, day: str) -> list[str]:
        """The paths of ``log``'s segments of ``day``, oldest first (none for a quiet day)."""
        import pyarrow.fs as pafs

        entries = list_dir(self._layout.filesystem, self.day_dir(log, day))
        return sorted(
            info.path
            for info in entries
            if info.type == pafs.FileType.File
            and info.base_name.endswith(SEGMENT_SUFFIX)
            and not info.base_name.startswith(".")
        )

    def iter_batches(
        self, log: str, day: str, *, batch_size: int = 65_536
    ) -> Iterator[pa.RecordBatch]:
        """The rows of ``log``'s segments of ``day``, one segment read at a time, in the
        schema every segment's is unified into (columns a segment lacks come as nulls).

        :raises ContractError: when two segments' columns have types that do not unify.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        paths = self.segments(log, day)
        filesystem = self._layout.filesystem
        schemas = [pq.read_schema(path, filesystem=filesystem) for path in paths]
        if not schemas:
            return
        try:
            schema = pa.unify_schemas(schemas, promote_options="permissive")
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise ContractError(
                f"The segments of log {log!r} ds={day} have columns of conflicting types "
                f"({exc}); publish the day's segments in groups of one schema."
            ) from exc
        for path in paths:
            with as_io_error(path, "read"):
                table = pq.read_table(path, filesystem=filesystem)
            for batch in table.to_batches(max_chunksize=batch_size):
                yield _conformed(batch, schema)


def _conformed(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` in ``schema``: columns cast, missing ones all null."""
    import pyarrow as pa

    columns = [
        batch.column(field.name).cast(field.type)
        if field.name in batch.schema.names
        else pa.nulls(batch.num_rows, field.type)
        for field in schema
    ]
    return pa.RecordBatch.from_arrays(columns, schema=schema)
