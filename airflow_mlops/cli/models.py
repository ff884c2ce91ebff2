"""``airflow-mlops models``: inspect and operate a model registry from a shell.

.. code-block:: bash

    export AIRFLOW_MLOPS_REGISTRY_ROOT=/data/models
    airflow-mlops models list
    airflow-mlops models register credit_default model.joblib --contract contract.json \\
        --output '{"score": "default_probability", "threshold": 0.3}' --alias challenger
    airflow-mlops models show credit_default --alias challenger
    airflow-mlops models promote credit_default champion v0003
    airflow-mlops models rollback credit_default champion
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_mlops.contract import FeatureContract
from airflow_mlops.exceptions import ArgumentError
from airflow_mlops.models.registry import DEFAULT_ALIAS, ModelRegistry

if TYPE_CHECKING:
    from collections.abc import Callable

REGISTRY_ENV = "AIRFLOW_MLOPS_REGISTRY_ROOT"


def add_models_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``models`` command group to the top-level CLI's sub-commands."""
    # --registry is accepted before or after the verb; given after, it wins
    registry = argparse.ArgumentParser(add_help=False)
    registry.add_argument("--registry", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    group = commands.add_parser(
        "models",
        help="inspect and operate a model registry",
        description="Inspect and operate a model registry.",
    )
    group.add_argument(
        "--registry",
        default=os.environ.get(REGISTRY_ENV),
        metavar="ROOT",
        help=f"model registry root, a path or URI (default: ${REGISTRY_ENV})",
    )
    verbs = group.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, help_: str, *args: str) -> argparse.ArgumentParser:
        sub = verbs.add_parser(name, help=help_, description=help_, parents=[registry])
        for arg in args:
            sub.add_argument(arg, metavar=arg.upper())
        return sub

    verb("list", "list the models with their versions and aliases").add_argument(
        "--json", action="store_true", help="print machine-readable JSON"
    )
    show = verb("show", f"print a version's record (default: alias {DEFAULT_ALIAS})", "name")
    which = show.add_mutually_exclusive_group()
    which.add_argument("--version", dest="model_version", metavar="V")
    which.add_argument("--alias", metavar="A")
    register = verb("register", "register a fitted pipeline saved with joblib", "name", "artifact")
    register.add_argument(
        "--contract", required=True, metavar="FILE", help="the input feature contract (JSON)"
    )
    for option in ("output", "metrics", "params", "training-data"):
        register.add_argument(f"--{option}", metavar="JSON", help="a JSON object or @file.json")
    register.add_argument(
        "--tag", action="append", default=[], metavar="K=V", help="a tag (repeatable)"
    )
    register.add_argument(
        "--alias", action="append", default=[], metavar="A", help="point an alias at it"
    )
    verb("promote", "point an alias at a version", "name", "alias", "version")
    verb("rollback", "point an alias back at its previous version", "name", "alias")


def run_models(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Run a ``models`` verb; errors of this package propagate to the caller."""
    if not args.registry:
        parser.error(f"no registry root: pass models --registry or set ${REGISTRY_ENV}")
    _VERBS[args.verb](ModelRegistry(args.registry), args)


def _list(registry: ModelRegistry, args: argparse.Namespace) -> None:
    rows: list[dict[str, Any]] = [
        {"name": n, "versions": registry.list_versions(n), "aliases": registry.aliases(n)}
        for n in registry.list_models()
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        print(f"No models in the registry at {registry.root}.")
    for row in rows:
        aliases = ", ".join(f"{a}={v}" for a, v in row["aliases"].items()) or "none"
        count, latest = len(row["versions"]), row["versions"][-1]
        print(f"{row['name']}  {count} version(s), latest {latest}; aliases: {aliases}")


def _show(registry: ModelRegistry, args: argparse.Namespace) -> None:
    alias = DEFAULT_ALIAS if args.alias is None else args.alias
    version = args.model_version or registry.resolve(args.name, alias)
    print(json.dumps(registry.record(args.name, version), indent=2))


def _register(registry: ModelRegistry, args: argparse.Namespace) -> None:
    record = registry.register(
        args.name,
        _load_user_artifact(args.artifact),
        input_contract=_read_contract(args.contract),
        output=_json_option(args.output, "--output") or {},
        metrics=_json_option(args.metrics, "--metrics"),
        params=_json_option(args.params, "--params"),
        training_data=_json_option(args.training_data, "--training-data"),
        tags=_parse_tags(args.tag),
        aliases=args.alias,
    )
    aliases = f" as {', '.join(args.alias)}" if args.alias else ""
    print(f"Registered {record['name']} {record['version']}{aliases}: sha256 {record['sha256']}")


def _promote(registry: ModelRegistry, args: argparse.Namespace) -> None:
    state = registry.promote(args.name, args.alias, args.version)
    print(f"{args.name} alias {args.alias} -> {state['version']} (history: {_history(state)})")


def _rollback(registry: ModelRegistry, args: argparse.Namespace) -> None:
    state = registry.rollback(args.name, args.alias)
    print(
        f"{args.name} alias {args.alias} rolled back to {state['version']} "
        f"(history: {_history(state)})"
    )


def _history(state: dict[str, Any]) -> str:
    return " ".join(state["history"])


def _load_user_artifact(path: str) -> Any:
    """Unpickle the user's own joblib file (it is theirs: no checksum to check it against)."""
    import joblib

    if not Path(path).is_file():
        raise ArgumentError(
            f"No model file at {path!r}. Save the fitted pipeline with joblib.dump."
        )
    try:
        return joblib.load(path)
    except Exception as exc:  # unpickling may raise anything
        raise ArgumentError(f"Could not load {path!r} with joblib: {exc!r}.") from exc


def _read_contract(path: str) -> FeatureContract:
    """A contract file: ``{"fields": [{"name", "type", "nullable"}…]}`` or ``{name: type}``."""
    text = _read_text(path, "--contract")
    try:
        data = json.loads(text)
        if isinstance(data.get("fields"), list):
            return FeatureContract.from_json(text)
        return FeatureContract.from_dict(data)
    except ArgumentError:
        raise
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
        raise ArgumentError(
            f"The contract file {path!r} is not a feature contract ({exc!r}). Write "
            '{"fields": [{"name": "income", "type": "float64", "nullable": true}, …]} or '
            '{"income": "float64", …}.'
        ) from exc


def _json_option(value: str | None, option: str) -> dict[str, Any] | None:
    if value is None:
        return None
    text = _read_text(value[1:], option) if value.startswith("@") else value
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ArgumentError(f"{option} must be a JSON object or @file.json ({exc}).") from exc
    if not isinstance(data, dict):
        raise ArgumentError(f"{option} must be a JSON object. Got {text!r} instead.")
    return data


def _parse_tags(pairs: list[str]) -> dict[str, str]:
    bad = [pair for pair in pairs if "=" not in pair or pair.startswith("=")]
    if bad:
        raise ArgumentError(f"--tag takes KEY=VALUE. Got {bad[0]!r} instead.")
    return dict(pair.split("=", 1) for pair in pairs)


def _read_text(path: str, option: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ArgumentError(f"Could not read the {option} file {path!r}: {reason}.") from exc


_VERBS: dict[str, Callable[[ModelRegistry, argparse.Namespace], None]] = {
    "list": _list,
    "show": _show,
    "register": _register,
    "promote": _promote,
    "rollback": _rollback,
}
