"""Where a model registry keeps each file, and how one is read or replaced.

Layout under ``<root>/<model>/``::

    v0001/model.joblib     the pipeline, ``joblib.dump``-ed
    v0001/model.json       its record (sha256, size, library versions, contract…), written last
    _aliases/<alias>.json  {"version": "v0002", "history": ["v0001", "v0002"]}
    .registry.lock         (local filesystem only)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlops.io.durable import as_io_error, read_bytes, write_json

if TYPE_CHECKING:
    import pyarrow.fs as pafs

ARTIFACT_FILE = "model.joblib"
RECORD_FILE = "model.json"
ALIASES_DIR = "_aliases"
LOCK_FILE = ".registry.lock"


@dataclass(frozen=True)
class RegistryLayout:
    """A registry's filesystem, root and the path of every file in it.

    Model, alias and version arguments are expected validated
    (:func:`~airflow_mlops.models.records.validate_name`, ``validate_version``).
    """

    filesystem: pafs.FileSystem
    """The pyarrow filesystem every path lives in."""
    root: str
    """The registry's root, a path in :attr:`filesystem` (``""`` for a bucket's root)."""
    local: bool
    """Whether :attr:`filesystem` is the local one (``flock``, fsync, rename)."""

    def model_dir(self, name: str) -> str:
        return f"{self.root}/{name}"

    def version_dir(self, name: str, version: str) -> str:
        return f"{self.model_dir(name)}/{version}"

    def artifact_path(self, name: str, version: str) -> str:
        return f"{self.version_dir(name, version)}/{ARTIFACT_FILE}"

    def record_path(self, name: str, version: str) -> str:
        return f"{self.version_dir(name, version)}/{RECORD_FILE}"

    def aliases_dir(self, name: str) -> str:
        return f"{self.model_dir(name)}/{ALIASES_DIR}"

    def alias_path(self, name: str, alias: str) -> str:
        return f"{self.aliases_dir(name)}/{alias}.json"

    def lock_path(self, name: str) -> str:
        return f"{self.model_dir(name)}/{LOCK_FILE}"


def read_file(layout: RegistryLayout, path: str) -> bytes | None:
    """The file's bytes, or ``None`` if there is no such file.

    :raises StoreError: when it cannot be read.
    """
    with as_io_error(path, "read"):
        return read_bytes(layout.filesystem, path)


def replace_json(layout: RegistryLayout, path: str, data: Any) -> None:
    """Replace ``path`` with ``data`` as JSON in one atomic step.

    :raises StoreError: when it cannot be written.
    """
    with as_io_error(path, "write"):
        write_json(layout.filesystem, path, data, local=layout.local, atomic=True)
