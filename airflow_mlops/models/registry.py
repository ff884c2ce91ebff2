"""The model registry: versioned scikit-learn pipelines, checked before they are unpickled.

Under ``<root>/<model>/`` a directory per version holds the pickled pipeline and its
record, written last: a version exists once its record does. One file per alias says which
version it points at. :class:`ModelRegistry` is the public API over four modules:
``layout`` (where each file goes), ``versions`` (listed, claimed, written, leftovers),
``aliases`` and ``verification`` (the checks before unpickling).

An artifact is pickle underneath, and unpickling runs code. :meth:`ModelRegistry.load`
and :meth:`ModelRegistry.artifact_bytes` therefore compare the artifact's SHA-256 and size
with the record *before* anything is unpickled, and :meth:`ModelRegistry.load` checks the
scikit-learn, joblib and Python versions it was saved with.

On a local filesystem, registers and alias moves of one model are serialised with an
``flock``; under it, every register, promote and rollback first deletes what killed
writers left: temp alias files, and (register, below the version it claims) directories
without a record. Object stores have no lock: the next version number comes from a listing
plus an "is it still absent" check just before each write, so two concurrent registers of
one model can still collide (last writer wins; the loser's record then disagrees with the
artifact and loading it fails with :class:`ChecksumMismatchError`, never unpickles it),
and concurrent alias moves are last-writer-wins. Keep one writer per model there.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlops.exceptions import ArgumentError, ModelLoadError, ModelNotFoundError, format_names
from airflow_mlops.io import parquet
from airflow_mlops.io.durable import writer_lock
from airflow_mlops.models.aliases import (
    list_aliases,
    move_alias,
    read_alias,
    require_alias,
    write_alias,
)
from airflow_mlops.models.artifacts import dump_model, load_model
from airflow_mlops.models.layout import RegistryLayout, read_file
from airflow_mlops.models.records import (
    ModelRecord,
    as_list,
    as_mapping,
    as_metrics,
    as_tags,
    check_model,
    final_estimator,
    library_versions,
    qualified_class,
    validate_name,
    validate_version,
)
from airflow_mlops.models.verification import MISMATCH_MODES, check_libraries, verified_bytes
from airflow_mlops.models.versions import (
    add_version,
    list_models,
    list_versions,
    missing_version_message,
    remove_leftovers,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from contextlib import AbstractContextManager

    import pyarrow.fs as pafs

    from airflow_mlops.contract import FeatureContract

_log = logging.getLogger(__name__)

DEFAULT_ALIAS = "champion"


@dataclass(frozen=True)
class LoadedModel:
    """A verified, unpickled model and the record it was registered with."""

    name: str
    version: str
    model: Any
    record: ModelRecord


class ModelRegistry:
    """Versioned scikit-learn pipelines under a local path or object-storage URI.

    :param root: a local directory or a URI such as ``s3://bucket/models``.
    :param filesystem: a pyarrow filesystem to use instead of resolving ``root``; ``root``
        is then a path in it.
    :param on_version_mismatch: what :meth:`load` does when the running scikit-learn,
        joblib or Python (major.minor) differs from the one the model was saved with:
        ``"warn"`` (a ``UserWarning`` and a log line), ``"refuse"``
        (:class:`ModelVersionMismatchError`) or ``"ignore"``.

    .. code-block:: python

        registry = ModelRegistry("/data/models")
        registry.register(
            "credit_default", pipeline, input_contract=contract,
            output={"score": "default_probability", "threshold": 0.3}, aliases=["champion"],
        )
        loaded = registry.load("credit_default")  # the "champion" alias
        loaded.model.predict_proba(frame)
    """

    def __init__(
        self,
        root: str,
        *,
        filesystem: pafs.FileSystem | None = None,
        on_version_mismatch: str = "warn",
    ) -> None:

        if on_version_mismatch not in MISMATCH_MODES:
            raise ArgumentError(
                "The 'on_version_mismatch' parameter of ModelRegistry must be one of "
                f"{', '.join(map(repr, MISMATCH_MODES))}. Got {on_version_mismatch!r} instead."
            )
        if not root or not isinstance(root, str):
            raise ArgumentError(
                "The 'root' parameter of ModelRegistry must be a path or URI. "
                f"Got {root!r} instead."
            )
        self._layout = RegistryLayout(*parquet.open_root(root, filesystem))
        self.on_version_mismatch = on_version_mismatch

    def __repr__(self) -> str:
        mode = self.on_version_mismatch
        return f"ModelRegistry(root={self.root!r}, on_version_mismatch={mode!r})"

    @property
    def filesystem(self) -> pafs.FileSystem:
        return self._layout.filesystem

    @property
    def root(self) -> str:
        """The registry's root as a path in :attr:`filesystem`."""
        return self._layout.root or "/"

    # -- writing ---------------------------------------------------------------------

    def register(
        self,
        name: str,
        model: Any,
        *,
        input_contract: FeatureContract,
        output: Mapping[str, Any],
        metrics: Mapping[str, float] | None = None,
        params: Mapping[str, Any] | None = None,
        training_data: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
        runtimes: Mapping[str, Any] | None = None,
        aliases: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Store ``model`` as the model's next version and return its record.

        :param input_contract: the columns (and types) the model is scored on; if the model
            was fitted on a data frame, its ``feature_names_in_`` must be these names.
        :param output: how to read its scores, e.g. ``{"score": "default_probability",
            "threshold": 0.3, "positive": "decline", "entity_key": "customer_id"}``.
        :param training_data: where it was trained, e.g. ``{"table": …, "partitions": […]}``.
        :param runtimes: checks of faster runtimes against the model's own outputs, e.g.
            ``{"tl2cgen": {"verified": True, "max_abs_diff": 2e-16, …}}`` (see
            :func:`airflow_mlops.models.accelerate.registration_check`); records without the key
            read as ``{}``.
        :param aliases: aliases to point at the new version (e.g. ``["challenger"]``).
        """
        name = validate_name(name)
        alias_names = [validate_name(alias, "An alias name") for alias in as_list(aliases)]
        check_model(model, input_contract)
        record = _new_record(
            name,
            model,
            input_contract=input_contract,
            output=output,
            metrics=metrics,
            params=params,
            training_data=training_data,
            tags=tags,
            runtimes=runtimes,
        )
        payload = dump_model(model)
        record["sha256"] = hashlib.sha256(payload).hexdigest()
        record["size"] = len(payload)
        with self._locked(name):
            version = add_version(self._layout, name, payload, record)
            for alias in alias_names:
                move_alias(self._layout, name, alias, version)
        _log.info(
            "Registered model %r version %s (%s, %d bytes, sha256 %s)%s",
            name,
            version,
            record["model_class"],
            record["size"],
            record["sha256"],
            f", aliases {', '.join(alias_names)}" if alias_names else "",
        )
        return record

    def promote(self, name: str, alias: str, version: str) -> dict[str, Any]:
        """Point ``alias`` at ``version`` (which must exist); returns the alias' state.

        The version is appended to the alias' history (unless it is already current).
        """
        name, alias = validate_name(name), validate_name(alias, "An alias name")
        version = validate_version(version)
        with self._locked(name):
            remove_leftovers(self._layout, name)
            self.record(name, version)
            before = read_alias(self._layout, name, alias)
            state = move_alias(self._layout, name, alias, version)
        previous = before["version"] if before else None
        _log.info("Promoted model %r alias %r to %s (was %s)", name, alias, version, previous)
        return state

    def rollback(self, name: str, alias: str) -> dict[str, Any]:
        """Point ``alias`` back at the version before the current one; returns its state.

        The current version leaves the end of the alias' history, so repeated rollbacks
        walk further back.
        """
        name, alias = validate_name(name), validate_name(alias, "An alias name")
        with self._locked(name):
            remove_leftovers(self._layout, name)
            history = require_alias(self._layout, name, alias)["history"]
            if len(history) < 2:
                raise ModelNotFoundError(
                    f"Alias {alias!r} of model {name!r} has no earlier version to roll back "
                    f"to: it has only pointed at {format_names(history)}. Promote a version "
                    f"explicitly instead (versions: {format_names(self.list_versions(name))})."
                )
            current, target = history[-1], history[-2]
            self.record(name, target)
            write_alias(self._layout, name, alias, {"version": target, "history": history[:-1]})
        _log.info("Rolled back model %r alias %r from %s to %s", name, alias, current, target)
        return {"name": name, "alias": alias, "version": target, "history": history[:-1]}

    # -- reading ---------------------------------------------------------------------

    def load(
        self, name: str, *, version: str | None = None, alias: str | None = None
    ) -> LoadedModel:
        """The model at ``version`` or ``alias`` (default: alias ``"champion"``), verified.

        The artifact's SHA-256 and size are checked against the record before it is
        unpickled (:class:`ChecksumMismatchError`), the library versions it was saved with
        are compared with this process' (see ``on_version_mismatch``), and the loaded
        object must have ``predict_proba`` (:class:`ModelLoadError`).
        """
        name = validate_name(name)
        if version is not None and alias is not None:
            raise ArgumentError(
                f"Pass either version or alias to load model {name!r}, not both. "
                f"Got version={version!r} and alias={alias!r}."
            )
        if version is None:
            version = self.resolve(name, DEFAULT_ALIAS if alias is None else alias)
        record, payload = self._checked_artifact(name, version)
        path = self._layout.artifact_path(name, version)
        model = load_model(payload, what=f"Model {name!r} version {version} ({path})")
        if not callable(getattr(model, "predict_proba", None)):
            raise ModelLoadError(
                f"Model {name!r} version {version} loaded as a {type(model).__name__}, which "
                "has no predict_proba. Re-register a fitted classifier or pipeline."
            )
        return LoadedModel(name=name, version=version, model=model, record=record)

    def artifact_bytes(self, name: str, version: str) -> bytes:
        """The artifact's bytes, verified against the record's SHA-256 and size.

        For workers that unpickle the model in other processes (of this environment): the
        library versions are checked as in :meth:`load`, the bytes are the registered ones.
        """
        name, version = validate_name(name), validate_version(version)
        return self._checked_artifact(name, version)[1]

    def record(self, name: str, version: str) -> ModelRecord:
        """The record (``model.json``) of a version; :class:`ModelNotFoundError` if none."""
        name, version = validate_name(name), validate_version(version)
        path = self._layout.record_path(name, version)
        data = read_file(self._layout, path)
        if data is None:
            raise ModelNotFoundError(missing_version_message(self._layout, name, version))
        try:
            record: ModelRecord = json.loads(data.decode("utf-8"))
            if not (isinstance(record["sha256"], str) and isinstance(record["size"], int)):
                raise TypeError("sha256 must be a string and size an integer")
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelLoadError(
                f"The record {path} of model {name!r} version {version} is damaged "
                f"({exc!r}). Restore it, or re-register the model."
            ) from exc
        return record

    def resolve(self, name: str, alias: str) -> str:
        """The version ``alias`` points at."""
        name, alias = validate_name(name), validate_name(alias, "An alias name")
        return require_alias(self._layout, name, alias)["version"]

    def aliases(self, name: str) -> dict[str, str]:
        """``{alias: version}`` for every alias of the model."""
        return list_aliases(self._layout, validate_name(name))

    def list_models(self) -> list[str]:
        """Models with at least one registered version, sorted."""
        return list_models(self._layout)

    def list_versions(self, name: str) -> list[str]:
        """Registered versions (those with a record), oldest first."""
        return list_versions(self._layout, validate_name(name))

    # -- internals -------------------------------------------------------------------

    def _checked_artifact(self, name: str, version: str) -> tuple[ModelRecord, bytes]:
        """The record and the verified artifact bytes, after the library-version check."""
        record = self.record(name, version)
        # stacklevel: the caller of load / artifact_bytes
        check_libraries(name, version, record, mode=self.on_version_mismatch, stacklevel=4)
        return record, verified_bytes(self._layout, name, version, record)

    def _locked(self, name: str) -> AbstractContextManager[None]:
        """The model's writer lock (local filesystem only)."""
        return writer_lock(self._layout.lock_path(name), local=self._layout.local)


def _new_record(
    name: str,
    model: Any,
    *,
    input_contract: FeatureContract,
    output: Mapping[str, Any],
    metrics: Mapping[str, float] | None,
    params: Mapping[str, Any] | None,
    training_data: Mapping[str, Any] | None,
    tags: Mapping[str, str] | None,
    runtimes: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """A new version's record (:meth:`ModelRegistry.register`'s arguments, checked); its
    version, checksum, size and creation time are filled in as they become known."""
    return {
        "name": name,
        "version": None,
        "sha256": None,
        "size": None,
        "created_at": None,
        "model_class": qualified_class(final_estimator(model)),
        "libraries": library_versions(),
        "input_contract": json.loads(input_contract.to_json()),
        "output": as_mapping(output, "output"),
        "metrics": as_metrics(metrics),
        "params": as_mapping(params, "params"),
        "training_data": as_mapping(training_data, "training_data"),
        "tags": as_tags(tags),
        "runtimes": as_mapping(runtimes, "runtimes"),
    }
