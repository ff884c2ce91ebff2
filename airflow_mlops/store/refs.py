"""The feature store's commit machinery: version ids, partition refs, symlinks and locks.

A partition's ref (``_refs/ds=<day>.json``) is the single source of truth for which
version is current. It is replaced in one atomic step: ``os.replace`` of a fsynced temp
file on a local filesystem, a single PUT on an object store. Everything a publish writes
before that step is invisible to readers; everything after it is a convenience (the Hive
view symlink) or housekeeping (retention).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import re
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pyarrow.fs as pafs

_VERSION_ID = re.compile(r"^v(\d{8}T\d{12})Z-([0-9a-f]{8})$")
_TEMP_MARK = ".tmp-"


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
    try:
        with filesystem.open_input_stream(path) as stream:
            return PartitionRef.from_json(stream.read().decode("utf-8"))
    except FileNotFoundError:
        return None


def write_json(filesystem: pafs.FileSystem, path: str, data: Any, *, local: bool) -> None:
    """Write ``data`` as JSON; on a local filesystem, durably (fsync) but not atomically."""
    payload = json.dumps(data, indent=2).encode("utf-8")
    if local:
        with open(path, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        return
    filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
    with filesystem.open_output_stream(path) as stream:
        stream.write(payload)


def write_ref(filesystem: pafs.FileSystem, path: str, ref: PartitionRef, *, local: bool) -> None:
    """Replace the ref at ``path`` in one atomic step."""
    write_atomic(filesystem, path, ref.to_json().encode("utf-8"), local=local)


def write_atomic(filesystem: pafs.FileSystem, path: str, payload: bytes, *, local: bool) -> None:
    """Replace the file at ``path`` with ``payload`` in one atomic step.

    Local: a durable temp file renamed over it. Object stores: one PUT (an upload becomes
    visible whole or not at all).
    """
    if not local:
        # one PUT: object stores make a completed upload visible atomically
        filesystem.create_dir(path.rsplit("/", 1)[0], recursive=True)
        with filesystem.open_output_stream(path) as stream:
            stream.write(payload)
        return
    directory, name = os.path.split(path)
    os.makedirs(directory, exist_ok=True)
    temp = os.path.join(directory, temp_name(name))
    with open(temp, "wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, path)
    fsync_dir(directory)


def swap_symlink(link: str, target: str) -> None:
    """Point the symlink ``link`` at ``target`` (relative to its directory) atomically."""
    directory, name = os.path.split(link)
    temp = os.path.join(directory, temp_name(name))
    os.symlink(target, temp)
    os.replace(temp, link)
    fsync_dir(directory)


def temp_name(final_name: str) -> str:
    """A hidden, unique temp name beside ``final_name`` (readers skip ``.``-prefixed names)."""
    return f".{final_name}{_TEMP_MARK}{secrets.token_hex(4)}"


def remove_temps(directory: str, final_name: str | None = None) -> int:
    """Delete leftover temp files or symlinks of ``final_name`` (default: of any name) in
    ``directory``. Only under the lock that serialises the writers of those names."""
    prefix = f".{final_name}{_TEMP_MARK}" if final_name else "."
    removed = 0
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(directory):
            if entry.name.startswith(prefix) and _TEMP_MARK in entry.name:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
                    removed += 1
    return removed


def fsync_file(path: str) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_dir(path: str) -> None:
    """Make a directory's entries (new files, renames) durable."""
    fsync_file(path)


@contextlib.contextmanager
def partition_lock(path: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (blocking); released even on SIGKILL."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)
