"""The feature store's commit point: version ids, partition refs, and what follows a commit.

A partition's ref (``_refs/ds=<day>.json``) is the single source of truth for which
version is current. It is replaced in one atomic step: ``os.replace`` of a fsynced temp
file on a local filesystem, a single PUT on an object store. Everything a publish writes
before that step is invisible to readers; everything after it is a convenience (the Hive
view symlink) or housekeeping (retention, :func:`remove_leftovers`). Which tables,
partitions and versions a store has published is read from the refs alone.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from airflow_mlops.exceptions import PartitionNotFoundError, StoreCorruptionError, format_names
from airflow_mlops.io.durable import (
    as_io_error,
    list_dir,
    read_bytes,
    remove_temps,
    swap_symlink,
    write_atomic,
)
from airflow_mlops.store.layout import (
    RESERVED,
    TABLE_NAME,
    missing_partition_message,
    ref_name,
    view_name,
)

if TYPE_CHECKING:
    import pyarrow.fs as pafs

    from airflow_mlops.store.layout import StoreLayout

_log = logging.getLogger(__name__)

_VERSION_ID = re.compile(r"^v(\d{8}T\d{12})Z-([0-9a-f]{8})$")
_REF_FILE = re.compile(r"^ds=(\d{4}-\d{2}-\d{2})\.json$")
# on object stores (no lock) a version dir outside history may be a concurrent writer's
ORPHAN_GRACE = dt.timedelta(hours=1)


def new_version_id() -> str:
    """A sortable, unique version id such as ``v20260125T031502123456Z-1a2b3c4d``.

    The wall clock is only metadata here (publish order lives in the ref's history).
    """
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
    return f"v{stamp}Z-{secrets.token_hex(4)}"


def version_created(version_id: str) -> dt.datetime | None:
    """The UTC instant encoded in a version id, or ``None`` if it is not one of ours."""
    match = _VERSION_ID.match(version_id)
    if not match:
        return None
    return dt.datetime.strptime(match.group(1), "%Y%m%dT%H%M%S%f").replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class PartitionRef:
    """Which version of a partition is current, and the versions kept, oldest first.

    ``retired`` maps versions that left history to the UTC time they left: their files
    stay for a grace period, for plain readers that listed them a moment before.
    """

    current: str
    history: list[str] = field(default_factory=list)
    retired: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        data = {"current": self.current, "history": self.history, "retired": self.retired}
        return json.dumps(data, indent=1)

    @classmethod
    def from_json(cls, text: str) -> PartitionRef:
        data = json.loads(text)
        return cls(data["current"], list(data["history"]), dict(data.get("retired", {})))

    def previous(self) -> str | None:
        """The version before the current one in history, if any."""
        index = self.history.index(self.current) if self.current in self.history else 0
        return self.history[index - 1] if index > 0 else None

    def in_grace(self, now: dt.datetime, grace: dt.timedelta) -> dict[str, str]:
        """The retired versions whose grace period has not ended at ``now``."""
        return {
            version: when
            for version, when in self.retired.items()
            if now - dt.datetime.fromisoformat(when) < grace
        }


def published(
    ref: PartitionRef | None, version: str, keep: int, *, now: dt.datetime, grace: dt.timedelta
) -> PartitionRef:
    """The ref after publishing ``version``: history trimmed to the newest ``keep`` entries."""
    history = [*(ref.history if ref else []), version]
    retired = ref.in_grace(now, grace) if ref else {}
    if grace > dt.timedelta(0):
        retired.update({old: now.isoformat() for old in history[:-keep]})
    return PartitionRef(version, history[-keep:], retired)


def read_ref(filesystem: pafs.FileSystem, path: str) -> PartitionRef | None:
    """The ref stored at ``path``, or ``None`` if there is none."""
    data = read_bytes(filesystem, path)
    return None if data is None else PartitionRef.from_json(data.decode("utf-8"))


def write_ref(filesystem: pafs.FileSystem, path: str, ref: PartitionRef, *, local: bool) -> None:
    """Replace the ref at ``path`` in one atomic step."""
    write_atomic(filesystem, path, ref.to_json().encode("utf-8"), local=local)


def load_ref(layout: StoreLayout, table: str, partition: str) -> PartitionRef | None:
    """The partition's ref, or ``None`` if it was never published.

    :raises StoreCorruptionError: when the ref cannot be parsed.
    :raises StoreError: when it cannot be read.
    """
    path = layout.ref_path(table, partition)
    with as_io_error(path, "read"):
        try:
            return read_ref(layout.filesystem, path)
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreCorruptionError(
                f"The partition ref {path} is damaged ({exc!r}). Restore it from a backup, "
                "or delete it and publish the partition again."
            ) from exc


def require_ref(layout: StoreLayout, table: str, partition: str) -> PartitionRef:
    """The partition's ref; :class:`PartitionNotFoundError` naming what exists if none."""
    ref = load_ref(layout, table, partition)
    if ref is None:
        raise PartitionNotFoundError(missing_message(layout, table, partition))
    return ref


def check_kept(ref: PartitionRef, table: str, partition: str, version: str) -> None:
    """:class:`PartitionNotFoundError` unless ``version`` is in the ref's history."""
    if version not in ref.history:
        raise PartitionNotFoundError(
            f"Partition {partition} of table {table!r} has no version {version!r}. "
            f"Kept versions: {format_names(ref.history)}."
        )


def list_partitions(layout: StoreLayout, table: str) -> list[str]:
    """Partitions of ``table`` with a ref, oldest first (empty for an unknown table)."""
    entries = list_dir(layout.filesystem, layout.refs_dir(table))
    matches = (_REF_FILE.match(info.base_name) for info in entries)
    return sorted(match.group(1) for match in matches if match)


def list_tables(layout: StoreLayout) -> list[str]:
    """Tables with at least one partition with a ref, sorted."""
    import pyarrow.fs as pafs

    return sorted(
        info.base_name
        for info in list_dir(layout.filesystem, layout.root)
        if info.type == pafs.FileType.Directory
        and info.base_name not in RESERVED
        and TABLE_NAME.match(info.base_name)
        and list_partitions(layout, info.base_name)
    )


def missing_message(layout: StoreLayout, table: str, partition: str | None) -> str:
    """Why ``partition`` (or, with ``None``, any partition) of ``table`` cannot be read."""
    partitions = list_partitions(layout, table)
    tables = [] if partitions else list_tables(layout)
    return missing_partition_message(layout.root or "/", table, partition, partitions, tables)


def advance(
    layout: StoreLayout, table: str, partition: str, old: PartitionRef | None, new: PartitionRef
) -> None:
    """Commit ``new``, then delete what neither it nor its grace period protects.

    The caller holds the partition's lock (locally).
    """
    _commit(layout, table, partition, new)
    protected = {*new.history, new.current, *new.retired}
    released = {*old.history, *old.retired} - protected if old else set()
    remove_leftovers(layout, table, partition, protected, released)


def _commit(layout: StoreLayout, table: str, partition: str, ref: PartitionRef) -> None:
    """Replace the ref (the commit point), then, locally, swap the Hive view symlink."""
    path = layout.ref_path(table, partition)
    with as_io_error(path, "write"):
        write_ref(layout.filesystem, path, ref, local=layout.local)
    if layout.local:
        view = layout.view_path(table, partition)
        with as_io_error(view, "update the symlink"):
            swap_symlink(view, layout.view_target(partition, ref.current))


def remove_leftovers(
    layout: StoreLayout, table: str, partition: str, protected: set[str], released: set[str]
) -> None:
    """Delete unprotected version dirs and stale temp files; failures only warn.

    Locally (under the lock) a version dir the ref does not protect is a leftover of a
    killed writer or out of its grace period. Without a lock, a dir the ref never knew
    may be a concurrent writer's: it goes only after :data:`ORPHAN_GRACE`.

    :param protected: versions the new ref keeps (history, current, in grace).
    :param released: versions the old ref kept and the new one does not.
    """
    import pyarrow.fs as pafs

    try:
        for info in list_dir(layout.filesystem, layout.versions_dir(table, partition)):
            name = info.base_name
            if info.type != pafs.FileType.Directory or name in protected:
                continue
            if layout.local or name in released or _is_stale(name):
                layout.filesystem.delete_dir(info.path)
        if layout.local:
            remove_temps(layout.refs_dir(table), ref_name(partition))
            remove_temps(layout.table_dir(table), view_name(partition))
    except OSError as exc:
        _log.warning(
            "Could not remove old versions of table %r partition %s: %s", table, partition, exc
        )


def _is_stale(version: str) -> bool:
    created = version_created(version)
    return created is not None and dt.datetime.now(dt.UTC) - created > ORPHAN_GRACE
