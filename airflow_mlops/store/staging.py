"""The staging area's references: what a staging step (extract, transform, a score shard)
returns through XCom — the staged Parquet file's path, rows, SHA-256, partition and lineage,
never the data — and how a downstream step reads one back.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict

from airflow_mlops.exceptions import ArgumentError

if TYPE_CHECKING:
    from airflow_mlops.io.parquet import WrittenFile


class StagedOutput(TypedDict):
    """A staged file's reference, as XCom carries it between tasks."""

    path: str
    """Where the staged Parquet file is (a local path or URI under the store's ``_staging``)."""
    rows: int
    """Rows in the file."""
    sha256: str
    """SHA-256 of the file's bytes (hex)."""
    partition: str
    """The partition (day, ``YYYY-MM-DD``) the rows belong to."""
    lineage: dict[str, Any]
    """Where the rows came from (sources, queries, upstream lineage), for the manifest."""


def staged_output(written: WrittenFile, *, partition: str, lineage: dict[str, Any]) -> StagedOutput:
    """The XCom a staging step returns: a reference to its Parquet file, never the data."""
    return {
        "path": written.path,
        "rows": written.rows,
        "sha256": written.sha256,
        "partition": partition,
        "lineage": lineage,
    }


def staged_path(ref: Any, *, argument: str, operator: str) -> str:
    """The staged file path behind ``ref`` (an upstream XCom dict or a plain path).

    :raises ArgumentError: when ``ref`` is neither (e.g. ``None`` from a skipped upstream).
    """
    if isinstance(ref, dict) and ref.get("path"):
        return str(ref["path"])
    if isinstance(ref, str) and ref and ref != "None":
        return ref
    raise ArgumentError(
        f"The {argument!r} parameter of {operator} must be an upstream step's output "
        f"(e.g. extract.output) or a staged Parquet path. Got {ref!r} instead."
    )


def staged_lineage(ref: Any) -> dict[str, Any]:
    """The lineage an upstream staged output carries (empty for a plain path)."""
    return dict(ref.get("lineage") or {}) if isinstance(ref, dict) else {}
