"""The staging area: scratch files under ``<root>/_staging/<dag>/<run>/`` that steps hand on.

A staging step (extract, transform, a score shard) writes its Parquet file here and returns
through XCom a reference to it (the path, rows, SHA-256, partition and lineage, never the
data), which a downstream step reads back. A run's directory stays while its tasks may be
retried or cleared; :func:`clean_staging` deletes those not written for a while.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from typing import TYPE_CHECKING, Any, TypedDict

from airflow_mlops.exceptions import ArgumentError
from airflow_mlops.io.durable import as_io_error
from airflow_mlops.store.layout import STAGING_DIR

if TYPE_CHECKING:
    from airflow_mlops.io.parquet import WrittenFile
    from airflow_mlops.store.layout import StoreLayout

_log = logging.getLogger(__name__)

_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._=-]")


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


def staging_path(layout: StoreLayout, *parts: str) -> str:
    """A path under ``<root>/_staging/`` for upstream tasks' scratch files.

    Characters other than letters, digits and ``._=-`` are mapped to ``_`` and a short
    hash of the original is appended, so run ids like
    ``scheduled__2026-01-05T03:00:00+00:00`` stay distinct and deterministic.

    :param parts: one name per level, e.g. DAG id, run id and file name.
    :raises ArgumentError: without parts, or for a part that is empty, ``.``, ``..`` or
        holds a ``/`` or ``\\``.
    """
    if not parts:
        raise ArgumentError("staging_path needs at least one part. Got none.")
    return "/".join([layout.root, STAGING_DIR, *(_safe_component(part) for part in parts)])


def clean_staging(
    layout: StoreLayout, older_than: dt.timedelta, *, now: dt.datetime | None
) -> list[str]:
    """Delete staged run directories (``_staging/<dag>/<run>``) not written for a while.

    A run's staged files are kept while its tasks may be retried or cleared; once the
    newest file of a run is older than ``older_than`` the run's directory goes.

    :param now: the current time (UTC) for tests; ``None`` reads the clock.
    :returns: the deleted directories.
    :raises ArgumentError: for a negative ``older_than``.
    """
    import pyarrow.fs as pafs

    if older_than.total_seconds() < 0:
        raise ArgumentError(f"clean_staging needs older_than >= 0. Got {older_than!r} instead.")
    cutoff = (now or dt.datetime.now(dt.UTC)) - older_than
    filesystem, staging = layout.filesystem, f"{layout.root}/{STAGING_DIR}"
    removed = []
    for dag in filesystem.get_file_info(pafs.FileSelector(staging, allow_not_found=True)):
        if dag.type != pafs.FileType.Directory:
            continue
        for run in filesystem.get_file_info(pafs.FileSelector(dag.path)):
            if run.type != pafs.FileType.Directory:
                continue
            files = filesystem.get_file_info(pafs.FileSelector(run.path, recursive=True))
            newest = max((f.mtime for f in files if f.mtime is not None), default=run.mtime)
            if newest is None or newest.astimezone(dt.UTC) < cutoff:
                with as_io_error(run.path, "delete"):
                    filesystem.delete_dir(run.path)
                removed.append(run.path)
    if removed:
        _log.info("Removed %d staged run director(ies) older than %s", len(removed), older_than)
    return removed


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
