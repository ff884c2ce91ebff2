"""What a stored model must pass before it is unpickled: its bytes, then its libraries.

An artifact is pickle underneath, and unpickling runs code. Its SHA-256 and size are
therefore compared with the record *before* anything is unpickled, and the scikit-learn,
joblib and Python versions it was saved with are compared with the running ones.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from typing import TYPE_CHECKING

from airflow_mlops.exceptions import (
    ChecksumMismatchError,
    ModelNotFoundError,
    ModelVersionMismatchError,
    format_names,
)
from airflow_mlops.models.layout import read_file
from airflow_mlops.models.records import comparable, library_versions
from airflow_mlops.models.versions import list_versions

if TYPE_CHECKING:
    from airflow_mlops.models.layout import RegistryLayout
    from airflow_mlops.models.records import ModelRecord

_log = logging.getLogger(__name__)

MISMATCH_MODES = ("warn", "refuse", "ignore")


def verified_bytes(layout: RegistryLayout, name: str, version: str, record: ModelRecord) -> bytes:
    """The artifact's bytes, once their SHA-256 and size match ``record``.

    :raises ModelNotFoundError: when the artifact is missing.
    :raises ChecksumMismatchError: when it was modified, truncated or extended.
    """
    path = layout.artifact_path(name, version)
    payload = read_file(layout, path)
    if payload is None:
        raise ModelNotFoundError(
            f"Model {name!r} version {version} has a record but its artifact {path} is "
            f"missing. Restore the artifact or re-register the model (registered "
            f"versions: {format_names(list_versions(layout, name))})."
        )
    actual = hashlib.sha256(payload).hexdigest()
    expected, size = record["sha256"], record["size"]
    if actual != expected or len(payload) != size:
        damage = "truncated or extended" if len(payload) != size else "modified"
        raise ChecksumMismatchError(
            f"The artifact of model {name!r} version {version} at {path} was {damage} "
            f"after registration: its SHA-256 is {actual} ({len(payload)} bytes), the "
            f"record says {expected} ({size} bytes). It was not loaded. Restore the "
            "artifact from a backup or re-register the model.",
            path=path,
            expected=expected,
            actual=actual,
        )
    return payload


def check_libraries(
    name: str, version: str, record: ModelRecord, *, mode: str, stacklevel: int
) -> None:
    """Compare the libraries the model was saved with to the running ones.

    :param mode: on a difference in scikit-learn, joblib or Python (major.minor):
        ``"warn"`` (a ``UserWarning`` and a log line), ``"refuse"`` or ``"ignore"``.
    :param stacklevel: the warning's stack level, counted from this function.
    :raises ModelVersionMismatchError: on a difference, with ``mode="refuse"``.
    """
    if mode == "ignore":
        return
    saved, running = record.get("libraries", {}), library_versions()
    differences = [
        f"{lib} {saved.get(lib)} (running {running[lib]})"
        for lib in ("sklearn", "joblib", "python")
        if comparable(lib, saved.get(lib)) != comparable(lib, running[lib])
    ]
    if not differences:
        return
    message = (
        f"Model {name!r} version {version} was saved with "
        f"{', '.join(differences)}. Its predictions may differ or loading may fail: "
        "retrain and re-register it with the running versions, or pin them."
    )
    if mode == "refuse":
        raise ModelVersionMismatchError(message)
    _log.warning("%s", message)
    warnings.warn(message, UserWarning, stacklevel=stacklevel)
