"""A model's aliases (``champion``, ``challenger``…): which version each points at, and since when.

An alias file (``_aliases/<alias>.json``) is replaced in one atomic step (``os.replace``
locally, a single PUT on an object store). Its history lists every version the alias
pointed at, oldest first, so a rollback walks back through it. Writers hold the model's lock
(local filesystem only; on object stores concurrent moves are last-writer-wins).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, TypedDict

from airflow_mlops.exceptions import ModelNotFoundError, StoreCorruptionError, format_names
from airflow_mlops.io.durable import list_dir
from airflow_mlops.models.layout import read_file, replace_json
from airflow_mlops.models.records import NAME_PATTERN
from airflow_mlops.models.versions import list_versions, missing_model_message

if TYPE_CHECKING:
    from airflow_mlops.models.layout import RegistryLayout


class AliasState(TypedDict):
    """An alias file's content."""

    version: str
    """The version the alias points at (``v0002``)."""
    history: list[str]
    """Every version it pointed at, oldest first; the last is :attr:`version`."""


def read_alias(layout: RegistryLayout, name: str, alias: str) -> AliasState | None:
    """The alias' state, or ``None`` if the model has no such alias.

    :raises StoreCorruptionError: when the alias file cannot be parsed.
    """
    path = layout.alias_path(name, alias)
    data = read_file(layout, path)
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


def require_alias(layout: RegistryLayout, name: str, alias: str) -> AliasState:
    """The alias' state; :class:`ModelNotFoundError` naming the aliases and versions if none."""
    state = read_alias(layout, name, alias)
    if state is not None:
        return state
    versions = list_versions(layout, name)
    if not versions:
        raise ModelNotFoundError(missing_model_message(layout, name))
    known = ", ".join(f"{a}={v}" for a, v in list_aliases(layout, name).items()) or "none"
    raise ModelNotFoundError(
        f"Model {name!r} has no alias {alias!r}. Aliases: {known}; versions: "
        f"{format_names(versions)}. Promote a version to it or pass a version."
    )


def list_aliases(layout: RegistryLayout, name: str) -> dict[str, str]:
    """``{alias: version}`` for every alias of the model, sorted by alias."""
    import pyarrow.fs as pafs

    found = {}
    for info in list_dir(layout.filesystem, layout.aliases_dir(name)):
        alias = info.base_name.removesuffix(".json")
        if (
            info.type == pafs.FileType.File
            and info.base_name != alias
            and NAME_PATTERN.match(alias)
        ):
            state = read_alias(layout, name, alias)
            if state is not None:
                found[alias] = state["version"]
    return dict(sorted(found.items()))


def move_alias(layout: RegistryLayout, name: str, alias: str, version: str) -> dict[str, Any]:
    """Point ``alias`` at ``version``, appending it to history (unless already current).

    The caller holds the model's lock. Returns ``{"name", "alias", "version", "history"}``.
    """
    state = read_alias(layout, name, alias)
    if state is None or state["version"] != version:
        history = state["history"] if state else []
        state = {"version": version, "history": [*history, version]}
        write_alias(layout, name, alias, state)
    return {"name": name, "alias": alias, **state}


def write_alias(layout: RegistryLayout, name: str, alias: str, state: AliasState) -> None:
    """Replace the alias file with ``state`` (the caller holds the model's lock)."""
    replace_json(layout, layout.alias_path(name, alias), state)
