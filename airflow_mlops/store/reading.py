"""Reading a published version: its manifest, then its files, opened up front.

A reader takes the current version from the ref, reads that version's manifest and opens
every file it lists before reading any. If a publish with retention removed the version in
between, the reader starts again from the ref; once its files are open, a local version
stays readable even if retention deletes it meanwhile.
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING

from airflow_mlops.exceptions import ArgumentError, StoreCorruptionError, StoreError, format_names
from airflow_mlops.io.durable import as_io_error, read_bytes
from airflow_mlops.store.refs import check_kept, require_ref

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pyarrow as pa

    from airflow_mlops.store.layout import StoreLayout
    from airflow_mlops.store.publish import Manifest

_READ_ATTEMPTS = 3


def find_manifest(layout: StoreLayout, table: str, partition: str, version: str | None) -> Manifest:
    """The manifest of the partition's current version, or of ``version``.

    :raises PartitionNotFoundError: when the partition, or ``version`` of it, is not kept.
    """
    ref = require_ref(layout, table, partition)
    if version is not None:
        check_kept(ref, table, partition, version)
    return load_manifest(layout, table, partition, version or ref.current)


def load_manifest(layout: StoreLayout, table: str, partition: str, version: str) -> Manifest:
    """The manifest of ``version``.

    :raises StoreError: when it is missing (removed while being read; retryable) or
        cannot be read.
    :raises StoreCorruptionError: when it cannot be parsed.
    """
    path = layout.manifest_path(table, partition, version)
    with as_io_error(path, "read"):
        data = read_bytes(layout.filesystem, path)
        if data is None:
            raise _vanished(path)
        try:
            manifest: Manifest = json.loads(data.decode("utf-8"))
        except ValueError as exc:
            raise StoreCorruptionError(
                f"The manifest {path} is damaged ({exc!r}). Roll back to an earlier "
                "version or publish the partition again."
            ) from exc
    return manifest


@contextlib.contextmanager
def open_version(
    layout: StoreLayout,
    table: str,
    partition: str,
    version: str | None,
    columns: list[str] | None,
) -> Iterator[list[pa.NativeFile]]:
    """Every file of the current version (or ``version``), open, in manifest order.

    A read of the current version starts again from the ref when the version vanished (a
    publish replaced it), up to 3 attempts.

    :param columns: columns the caller will read; each must be in the version's schema.
    :raises ArgumentError: for a column the version does not have.
    :raises StoreError: when the version vanished (on the last attempt) or cannot be read.
    """
    for attempt in range(_READ_ATTEMPTS):
        with contextlib.ExitStack() as stack:
            try:
                manifest = find_manifest(layout, table, partition, version)
                directory = layout.version_dir(table, partition, manifest["version"])
                handles = [
                    stack.enter_context(
                        layout.filesystem.open_input_file(f"{directory}/{f['path']}")
                    )
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


def _check_columns(table: str, manifest: Manifest, columns: list[str] | None) -> None:
    names = [field["name"] for field in manifest["schema"]]
    unknown = [column for column in columns or () if column not in names]
    if unknown:
        raise ArgumentError(
            f"Table {table!r} has no column(s) {format_names(unknown)}. "
            f"Its columns: {format_names(names, limit=30)}."
        )


def _vanished(path: str) -> StoreError:
    return StoreError(
        f"{path} is missing: the version was removed while being read (a publish with "
        "retention ran meanwhile) or the store was damaged. Retry the read."
    )
