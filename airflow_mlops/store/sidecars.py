"""Sidecars: files kept beside a table or one partition (drift reports, profiles).

Layout under ``<root>/<table>/``::

    _sidecars/<name>                  beside the table
    _sidecars/ds=<day>/<name>         beside one partition
    _locks/_sidecars[/ds=<day>]/<name>.lock   (local filesystem only)

A sidecar is replaced atomically, like a ref, and plain Parquet readers skip it (``_``-prefixed
directory). Locally, writers of one sidecar are serialised with an ``flock`` of their own, and
each deletes the temp files killed writers left. A sidecar is not versioned with its partition.
"""

from __future__ import annotations

import contextlib
import re
from typing import TYPE_CHECKING

from airflow_mlops.exceptions import ArgumentError, PartitionNotFoundError
from airflow_mlops.io.durable import as_io_error, file_lock, read_bytes, remove_temps, write_atomic
from airflow_mlops.partition import validate_partition
from airflow_mlops.store.layout import PARTITION_COLUMN, validate_table_name

if TYPE_CHECKING:
    from airflow_mlops.store.layout import StoreLayout

_SIDECAR_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


def write_sidecar(
    layout: StoreLayout, table: str, name: str, payload: bytes, *, partition: str | None
) -> str:
    """Store ``payload`` as ``name`` beside ``table`` (or one partition); returns its path.

    :raises TableNameError, ArgumentError, PartitionError: for a bad table, name or partition.
    :raises StoreError: when the lock or the write fails.
    """
    path = sidecar_path(layout, table, name, partition)
    if not layout.local:
        with as_io_error(path, "write"):
            write_atomic(layout.filesystem, path, payload, local=False)
        return path
    where = f"/{PARTITION_COLUMN}={partition}" if partition is not None else ""
    lock = f"{layout.table_dir(table)}/_locks/_sidecars{where}/{name}.lock"
    with as_io_error(path, "lock"), file_lock(lock):
        with as_io_error(path, "write"):
            write_atomic(layout.filesystem, path, payload, local=True)
        with contextlib.suppress(OSError):
            remove_temps(path.rsplit("/", 1)[0], name)
    return path


def read_sidecar(layout: StoreLayout, table: str, name: str, *, partition: str | None) -> bytes:
    """The sidecar ``name`` of ``table`` (or one partition).

    :raises PartitionNotFoundError: when there is no such sidecar.
    """
    path = sidecar_path(layout, table, name, partition)
    payload = read_bytes(layout.filesystem, path)
    if payload is None:
        where = f"partition {partition} of " if partition else ""
        raise PartitionNotFoundError(
            f"No {name!r} is stored beside {where}table {table!r} ({path}). Create it "
            "first (e.g. build the drift profile) or check the name."
        )
    return payload


def sidecar_uri(layout: StoreLayout, table: str, name: str, *, partition: str | None) -> str:
    """Where a sidecar lives, as a URI a person can open (``file://`` locally)."""
    path = sidecar_path(layout, table, name, partition)
    return f"file://{path}" if layout.local else path


def sidecar_path(layout: StoreLayout, table: str, name: str, partition: str | None) -> str:
    """The path of sidecar ``name`` of ``table`` (or one partition), all three validated.

    :raises ArgumentError: for a name that is not letters, digits, ``.``, ``_`` or ``-``.
    """
    validate_table_name(table)
    if not _SIDECAR_NAME.match(name):
        raise ArgumentError(
            "A sidecar name must be letters, digits, '.', '_' or '-' (no path). "
            f"Got {name!r} instead."
        )
    where = f"/{PARTITION_COLUMN}={validate_partition(partition)}" if partition is not None else ""
    return f"{layout.table_dir(table)}/_sidecars{where}/{name}"
