"""The feature store's commit point: version ids and partition refs.

A partition's ref (``_refs/ds=<day>.json``) is the single source of truth for which
version is current. It is replaced in one atomic step: ``os.replace`` of a fsynced temp
file on a local filesystem, a single PUT on an object store. Everything a publish writes
before that step is invisible to readers; everything after it is a convenience (the Hive
view symlink) or housekeeping (retention).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from airflow_mlops.io.durable import read_bytes, write_atomic

if TYPE_CHECKING:
    import pyarrow.fs as pafs

_VERSION_ID = re.compile(r"^v(\d{8}T\d{12})Z-([0-9a-f]{8})$")


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
