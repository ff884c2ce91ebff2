"""A model's versions: listed, claimed, written, and what killed registers leave behind.

A version exists once its record does: a register killed midway leaves a directory without
``model.json`` that no reader lists and no new version reuses. Locally, under the model's
lock, the next register deletes those directories below the version it claims. On object
stores (no lock) the next number comes from a listing plus an "is it still absent" check
just before each write.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
from typing import TYPE_CHECKING, Any

from airflow_mlops.exceptions import StoreError, format_names
from airflow_mlops.io.durable import as_io_error, fsync_dir, list_dir, remove_temps
from airflow_mlops.models.layout import RECORD_FILE, replace_json
from airflow_mlops.models.records import NAME_PATTERN, VERSION_PATTERN

if TYPE_CHECKING:
    import pyarrow.fs as pafs

    from airflow_mlops.models.layout import RegistryLayout

_log = logging.getLogger(__name__)


def version_dirs(layout: RegistryLayout, name: str) -> list[pafs.FileInfo]:
    """Every version directory, with or without a record, in version order."""
    import pyarrow.fs as pafs

    infos = [
        info
        for info in list_dir(layout.filesystem, layout.model_dir(name))
        if info.type == pafs.FileType.Directory and VERSION_PATTERN.match(info.base_name)
    ]
    return sorted(infos, key=lambda info: int(info.base_name[1:]))


def list_versions(layout: RegistryLayout, name: str) -> list[str]:
    """Registered versions (those with a record), oldest first."""
    import pyarrow.fs as pafs

    return [
        info.base_name
        for info in version_dirs(layout, name)
        if layout.filesystem.get_file_info(f"{info.path}/{RECORD_FILE}").type == pafs.FileType.File
    ]


def list_models(layout: RegistryLayout) -> list[str]:
    """Models with at least one registered version, sorted."""
    import pyarrow.fs as pafs

    return sorted(
        info.base_name
        for info in list_dir(layout.filesystem, layout.root)
        if info.type == pafs.FileType.Directory
        and NAME_PATTERN.match(info.base_name)
        and list_versions(layout, info.base_name)
    )


def missing_model_message(layout: RegistryLayout, name: str) -> str:
    """That model ``name`` is not registered, and which models are."""
    models = format_names(list_models(layout)) or "none"
    return f"No model {name!r} in the registry at {layout.root or '/'}. Models: {models}."


def missing_version_message(layout: RegistryLayout, name: str, version: str) -> str:
    """That ``version`` of model ``name`` is not registered, and which versions are."""
    versions = list_versions(layout, name)
    if not versions:
        return missing_model_message(layout, name)
    return (
        f"Model {name!r} has no version {version} in the registry at {layout.root or '/'}. "
        f"Versions: {format_names(versions)}."
    )


def add_version(layout: RegistryLayout, name: str, payload: bytes, record: dict[str, Any]) -> str:
    """Store ``payload`` and ``record`` as the model's next version; returns the version.

    Fills the record's ``version`` and ``created_at``. The caller holds the model's lock.

    :raises StoreError: when a file cannot be written, or (object stores) another writer
        took the version meanwhile.
    """
    version = _claim_version(layout, name)
    remove_leftovers(layout, name, below=version)
    record["version"] = version
    record["created_at"] = dt.datetime.now(dt.UTC).isoformat()
    _write_version(layout, name, version, payload, record)
    return version


def remove_leftovers(layout: RegistryLayout, name: str, below: str | None = None) -> None:
    """Locally, under the lock: delete temp alias files and, with ``below``, version
    dirs under it without a record (killed registers). Failures only warn."""
    if not layout.local:  # no lock: a temp or a dir may be a concurrent writer's
        return
    try:
        remove_temps(layout.aliases_dir(name))
        if below is None:
            return
        for info in version_dirs(layout, name):
            record = f"{info.path}/{RECORD_FILE}"
            if int(info.base_name[1:]) < int(below[1:]) and not os.path.exists(record):
                layout.filesystem.delete_dir(info.path)
    except OSError as exc:
        _log.warning("Could not remove leftovers of killed writers of %r: %s", name, exc)


def _claim_version(layout: RegistryLayout, name: str) -> str:
    """The next free version number; its directory is created (locally) or checked free."""
    import pyarrow.fs as pafs

    dirs = version_dirs(layout, name)
    number = int(dirs[-1].base_name[1:]) + 1 if dirs else 1
    with as_io_error(layout.model_dir(name), "create a version in"):
        while True:
            version = f"v{number:04d}"
            directory = layout.version_dir(name, version)
            if layout.local:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(directory)
                    fsync_dir(layout.model_dir(name))
                    return version
            elif layout.filesystem.get_file_info(directory).type == pafs.FileType.NotFound:
                return version
            number += 1


def _write_version(
    layout: RegistryLayout, name: str, version: str, payload: bytes, record: dict[str, Any]
) -> None:
    """Write the artifact (durably), then the record: the version exists from then on."""
    import pyarrow.fs as pafs

    artifact = layout.artifact_path(name, version)
    record_path = layout.record_path(name, version)
    filesystem = layout.filesystem
    with as_io_error(artifact, "write"):
        if layout.local:
            with open(artifact, "xb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
        else:
            filesystem.create_dir(layout.version_dir(name, version), recursive=True)
            with filesystem.open_output_stream(artifact) as stream:
                stream.write(payload)
            if filesystem.get_file_info(record_path).type != pafs.FileType.NotFound:
                raise StoreError(
                    f"Another writer registered model {name!r} version {version} at the "
                    f"same time ({record_path} appeared). Register again; keep one writer "
                    "per model on object stores."
                )
    replace_json(layout, record_path, record)
