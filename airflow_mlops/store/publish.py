"""Shaping a publish: batches conformed and cut into files, and the version's manifest."""

from __future__ import annotations

import hashlib
import itertools
import json
from typing import TYPE_CHECKING, Any

from airflow_mlops import __version__
from airflow_mlops.contract import schema_to_json
from airflow_mlops.exceptions import ArgumentError, ContractError, EmptyInputError, format_names
from airflow_mlops.io.parquet import stored_schema
from airflow_mlops.store.refs import version_created

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    import pyarrow as pa

    from airflow_mlops.contract import FeatureContract
    from airflow_mlops.io.parquet import WrittenFile
    from airflow_mlops.store.refs import PartitionRef

PARTITION_COLUMN = "ds"


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
    stored = stored_schema(schema)  # what readers get back, as the manifest records it
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


def build_manifest(
    table: str,
    partition: str,
    version: str,
    ref: PartitionRef | None,
    schema: pa.Schema,
    files: list[WrittenFile],
    contract: FeatureContract | None,
    lineage: dict[str, Any] | None,
) -> dict[str, Any]:
    created = version_created(version)
    assert created is not None
    return {
        "table": table,
        "partition": partition,
        "version": version,
        "previous_version": ref.current if ref else None,
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
    return hashlib.sha256("".join(file_shas).encode("ascii")).hexdigest()


def lineage_json(lineage: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if lineage is None:
        return None
    try:
        return json.loads(json.dumps(dict(lineage)))
    except (TypeError, ValueError) as exc:
        raise ArgumentError(
            f"The 'lineage' parameter of publish_partition must be JSON-serialisable. {exc}."
        ) from exc
