"""The model registry: versioned scikit-learn pipelines, checked before they are unpickled.

Layout under ``<root>/<model>/``::

    v0001/model.joblib     the pipeline, ``joblib.dump``-ed
    v0001/model.json       its record (sha256, size, library versions, contract…), written last
    _aliases/<alias>.json  {"version": "v0002", "history": ["v0001", "v0002"]}
    .registry.lock         (local filesystem only)

A version exists once its record does: a register killed midway leaves a directory
without ``model.json`` that no reader lists and no new version reuses. An alias file is
replaced in one atomic step (``os.replace`` locally, a single PUT on an object store).
Locally, under the lock, every register, promote and rollback first deletes what killed
writers left: temp alias files, and (register, below the version it claims) directories
without a record.

An artifact is pickle underneath, and unpickling runs code. :meth:`ModelRegistry.load`
and :meth:`ModelRegistry.artifact_bytes` therefore compare the artifact's SHA-256 and size
with the record *before* anything is unpickled, and :meth:`ModelRegistry.load` checks the
scikit-learn, joblib and Python versions it was saved with.

On a local filesystem, registers and alias moves of one model are serialised with an
``flock``. Object stores have no lock: the next version number comes from a listing plus
an "is it still absent" check just before each write, so two concurrent registers of one
model can still collide (last writer wins; the loser's record then disagrees with the
artifact and loading it fails with :class:`ChecksumMismatchError`, never unpickles it),
and concurrent alias moves are last-writer-wins. Keep one writer per model there.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import os
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlops.exceptions import (
    ArgumentError,
    ChecksumMismatchError,
    ModelLoadError,
    ModelNotFoundError,
    ModelVersionMismatchError,
    StoreCorruptionError,
    StoreError,
    format_names,
)
from airflow_mlops.io import parquet
from airflow_mlops.models.artifacts import dump_model, load_model
from airflow_mlops.models.records import (
    NAME_PATTERN,
    VERSION_PATTERN,
    ModelRecord,
    as_list,
    as_mapping,
    as_metrics,
    as_tags,
    check_model,
    comparable,
    final_estimator,
    library_versions,
    qualified_class,
    validate_name,
    validate_version,
)
from airflow_mlops.store.feature_store import as_store_error
from airflow_mlops.store.refs import (
    fsync_dir,
    partition_lock,
    remove_temps,
    temp_name,
    write_json,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    import pyarrow.fs as pafs

    from airflow_mlops.contract import FeatureContract

_log = logging.getLogger(__name__)

ARTIFACT_FILE = "model.joblib"
RECORD_FILE = "model.json"
ALIASES_DIR = "_aliases"
DEFAULT_ALIAS = "champion"
MISMATCH_MODES = ("warn", "refuse", "ignore")
_LOCK_FILE = ".registry.lock"


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
        self._fs, self._root, self._local = parquet.open_root(root, filesystem)
        self.on_version_mismatch = on_version_mismatch

    def __repr__(self) -> str:
        mode = self.on_version_mismatch
        return f"ModelRegistry(root={self.root!r}, on_version_mismatch={mode!r})"

    @property
    def filesystem(self) -> pafs.FileSystem:
        return self._fs

    @property
    def root(self) -> str:
        """The registry's root as a path in :attr:`filesystem`."""
        return self._root or "/"

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
        record: dict[str, Any] = {
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
        payload = dump_model(model)
        record["sha256"] = hashlib.sha256(payload).hexdigest()
        record["size"] = len(payload)
        with self._locked(name):
            version = self._claim_version(name)
            self._remove_leftovers(name, below=version)
            record["version"] = version
            record["created_at"] = dt.datetime.now(dt.UTC).isoformat()
            self._write_version(name, version, payload, record)
            for alias in alias_names:
                self._move_alias(name, alias, version)
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
            self._remove_leftovers(name)
            self.record(name, version)
            before = self._read_alias(name, alias)
            state = self._move_alias(name, alias, version)
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
            self._remove_leftovers(name)
            state = self._require_alias(name, alias)
            history = state["history"]
            if len(history) < 2:
                raise ModelNotFoundError(
                    f"Alias {alias!r} of model {name!r} has no earlier version to roll back "
                    f"to: it has only pointed at {format_names(history)}. Promote a version "
                    f"explicitly instead (versions: {format_names(self.list_versions(name))})."
                )
            current, target = history[-1], history[-2]
            self.record(name, target)
            state = {"version": target, "history": history[:-1]}
            self._write_json(self._alias_path(name, alias), state)
        _log.info("Rolled back model %r alias %r from %s to %s", name, alias, current, target)
        return {"name": name, "alias": alias, **state}

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
        model = load_model(
            payload, what=f"Model {name!r} version {version} ({self._artifact_path(name, version)})"
        )
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
        path = f"{self._version_dir(name, version)}/{RECORD_FILE}"
        data = self._read(path)
        if data is None:
            raise ModelNotFoundError(self._missing_version_message(name, version))
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
        version: str = self._require_alias(name, alias)["version"]
        return version

    def aliases(self, name: str) -> dict[str, str]:
        """``{alias: version}`` for every alias of the model."""
        import pyarrow.fs as pafs

        name = validate_name(name)
        found = {}
        for info in self._list_dir(f"{self._model_dir(name)}/{ALIASES_DIR}"):
            alias = info.base_name.removesuffix(".json")
            if (
                info.type == pafs.FileType.File
                and info.base_name != alias
                and NAME_PATTERN.match(alias)
            ):
                state = self._read_alias(name, alias)
                if state is not None:
                    found[alias] = state["version"]
        return dict(sorted(found.items()))

    def list_models(self) -> list[str]:
        """Models with at least one registered version, sorted."""
        import pyarrow.fs as pafs

        return sorted(
            info.base_name
            for info in self._list_dir(self._root)
            if info.type == pafs.FileType.Directory
            and NAME_PATTERN.match(info.base_name)
            and self.list_versions(info.base_name)
        )

    def list_versions(self, name: str) -> list[str]:
        """Registered versions (those with a record), oldest first."""
        import pyarrow.fs as pafs

        name = validate_name(name)
        return [
            info.base_name
            for info in self._version_dirs(name)
            if self._fs.get_file_info(f"{info.path}/{RECORD_FILE}").type == pafs.FileType.File
        ]

    # -- internals -------------------------------------------------------------------

    def _model_dir(self, name: str) -> str:
        return f"{self._root}/{name}"

    def _version_dir(self, name: str, version: str) -> str:
        return f"{self._model_dir(name)}/{version}"

    def _artifact_path(self, name: str, version: str) -> str:
        return f"{self._version_dir(name, version)}/{ARTIFACT_FILE}"

    def _alias_path(self, name: str, alias: str) -> str:
        return f"{self._model_dir(name)}/{ALIASES_DIR}/{alias}.json"

    def _version_dirs(self, name: str) -> list[pafs.FileInfo]:
        """Every version directory, with or without a record, in version order."""
        import pyarrow.fs as pafs

        infos = [
            info
            for info in self._list_dir(self._model_dir(name))
            if info.type == pafs.FileType.Directory and VERSION_PATTERN.match(info.base_name)
        ]
        return sorted(infos, key=lambda info: int(info.base_name[1:]))

    def _claim_version(self, name: str) -> str:
        """The next free version number; its directory is created (locally) or checked free."""
        import pyarrow.fs as pafs

        dirs = self._version_dirs(name)
        number = int(dirs[-1].base_name[1:]) + 1 if dirs else 1
        with as_store_error(self._model_dir(name), "create a version in"):
            while True:
                version = f"v{number:04d}"
                directory = self._version_dir(name, version)
                if self._local:
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(directory)
                        fsync_dir(self._model_dir(name))
                        return version
                elif self._fs.get_file_info(directory).type == pafs.FileType.NotFound:
                    return version
                number += 1

    def _remove_leftovers(self, name: str, below: str | None = None) -> None:
        """Locally, under the lock: delete temp alias files and, with ``below``, version
        dirs under it without a record (killed registers). Failures only warn."""
        if not self._local:  # no lock: a temp or a dir may be a concurrent writer's
            return
        try:
            remove_temps(f"{self._model_dir(name)}/{ALIASES_DIR}")
            if below is None:
                return
            for info in self._version_dirs(name):
                record = f"{info.path}/{RECORD_FILE}"
                if int(info.base_name[1:]) < int(below[1:]) and not os.path.exists(record):
                    self._fs.delete_dir(info.path)
        except OSError as exc:
            _log.warning("Could not remove leftovers of killed writers of %r: %s", name, exc)

    def _write_version(
        self, name: str, version: str, payload: bytes, record: dict[str, Any]
    ) -> None:
        """Write the artifact (durably), then the record: the version exists from then on."""
        import pyarrow.fs as pafs

        artifact = self._artifact_path(name, version)
        record_path = f"{self._version_dir(name, version)}/{RECORD_FILE}"
        with as_store_error(artifact, "write"):
            if self._local:
                with open(artifact, "xb") as handle:
                    handle.write(payload)
                    handle.flush()
                    os.fsync(handle.fileno())
            else:
                self._fs.create_dir(self._version_dir(name, version), recursive=True)
                with self._fs.open_output_stream(artifact) as stream:
                    stream.write(payload)
                if self._fs.get_file_info(record_path).type != pafs.FileType.NotFound:
                    raise StoreError(
                        f"Another writer registered model {name!r} version {version} at the "
                        f"same time ({record_path} appeared). Register again; keep one writer "
                        "per model on object stores."
                    )
        self._write_json(record_path, record)

    def _move_alias(self, name: str, alias: str, version: str) -> dict[str, Any]:
        """Point ``alias`` at ``version``, appending it to history; the caller holds the lock."""
        state = self._read_alias(name, alias) or {"version": None, "history": []}
        if state["version"] != version:
            state = {"version": version, "history": [*state["history"], version]}
            self._write_json(self._alias_path(name, alias), state)
        return {"name": name, "alias": alias, **state}

    def _read_alias(self, name: str, alias: str) -> dict[str, Any] | None:
        path = self._alias_path(name, alias)
        data = self._read(path)
        if data is None:
            return None
        try:
            state = json.loads(data.decode("utf-8"))
            return {"version": str(state["version"]), "history": list(state["history"])}
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreCorruptionError(
                f"The alias file {path} is damaged ({exc!r}). Restore it, or promote a "
                "version to rewrite it."
            ) from exc

    def _require_alias(self, name: str, alias: str) -> dict[str, Any]:
        state = self._read_alias(name, alias)
        if state is not None:
            return state
        versions = self.list_versions(name)
        if not versions:
            raise ModelNotFoundError(self._missing_model_message(name))
        known = ", ".join(f"{a}={v}" for a, v in self.aliases(name).items()) or "none"
        raise ModelNotFoundError(
            f"Model {name!r} has no alias {alias!r}. Aliases: {known}; versions: "
            f"{format_names(versions)}. Promote a version to it or pass a version."
        )

    def _missing_version_message(self, name: str, version: str) -> str:
        versions = self.list_versions(name)
        if not versions:
            return self._missing_model_message(name)
        return (
            f"Model {name!r} has no version {version} in the registry at {self.root}. "
            f"Versions: {format_names(versions)}."
        )

    def _missing_model_message(self, name: str) -> str:
        models = format_names(self.list_models()) or "none"
        return f"No model {name!r} in the registry at {self.root}. Models: {models}."

    def _checked_artifact(self, name: str, version: str) -> tuple[ModelRecord, bytes]:
        """The record and the verified artifact bytes, after the library-version check."""
        record = self.record(name, version)
        self._check_libraries(name, version, record)
        return record, self._verified_bytes(name, version, record)

    def _verified_bytes(self, name: str, version: str, record: ModelRecord) -> bytes:
        path = self._artifact_path(name, version)
        payload = self._read(path)
        if payload is None:
            raise ModelNotFoundError(
                f"Model {name!r} version {version} has a record but its artifact {path} is "
                f"missing. Restore the artifact or re-register the model (registered "
                f"versions: {format_names(self.list_versions(name))})."
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

    def _check_libraries(self, name: str, version: str, record: ModelRecord) -> None:
        if self.on_version_mismatch == "ignore":
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
        if self.on_version_mismatch == "refuse":
            raise ModelVersionMismatchError(message)
        _log.warning("%s", message)
        # stacklevel: the caller of load / artifact_bytes
        warnings.warn(message, UserWarning, stacklevel=4)

    def _read(self, path: str) -> bytes | None:
        """The file's bytes, or ``None`` if there is no such file."""
        with as_store_error(path, "read"):
            try:
                with self._fs.open_input_stream(path) as stream:
                    data: bytes = stream.read()
            except FileNotFoundError:
                return None
        return data

    def _write_json(self, path: str, data: Any) -> None:
        """Replace ``path`` with ``data`` in one atomic step."""
        with as_store_error(path, "write"):
            if not self._local:
                write_json(self._fs, path, data, local=False)  # one PUT
                return
            directory, base = os.path.split(path)
            os.makedirs(directory, exist_ok=True)
            temp = os.path.join(directory, temp_name(base))
            write_json(self._fs, temp, data, local=True)
            os.replace(temp, path)
            fsync_dir(directory)

    def _list_dir(self, path: str) -> list[pafs.FileInfo]:
        import pyarrow.fs as pafs

        with as_store_error(path, "list"):
            return list(self._fs.get_file_info(pafs.FileSelector(path, allow_not_found=True)))

    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[None]:
        if not self._local:
            yield
            return
        path = f"{self._model_dir(name)}/{_LOCK_FILE}"
        with contextlib.ExitStack() as stack:
            with as_store_error(path, "lock"):
                stack.enter_context(partition_lock(path))
            yield
