"""``airflow-mlops``: inspect and operate a feature store from a shell.

.. code-block:: bash

    export AIRFLOW_MLOPS_STORE_ROOT=/data/features
    airflow-mlops partitions customer_features
    airflow-mlops versions customer_features 2026-01-04
    airflow-mlops rollback customer_features 2026-01-04        # to the previous version
    airflow-mlops verify customer_features 2026-01-04 --json
    airflow-mlops --table-format delta tables              # a store of Delta tables
    airflow-mlops migrate --to /data/features-delta        # parquet format → Delta
    airflow-mlops models --registry /data/models list      # the model registry (cli.models)
    airflow-mlops score --registry /data/models customer_features 2026-01-04 \
        credit_risk customer_scores                        # score a partition (cli.score)
    airflow-mlops serve --registry /data/models credit_risk \
        --feature-table customer_features                  # online inference (cli.serve)

Errors of this package print one line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from airflow_mlops import __version__
from airflow_mlops.cli.models import add_models_parser, run_models
from airflow_mlops.cli.score import add_score_parser, run_score
from airflow_mlops.cli.serve import add_serve_parser, run_serve
from airflow_mlops.exceptions import AirflowMlopsError
from airflow_mlops.store.feature_store import TABLE_FORMATS, FeatureStore

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

ROOT_ENV = "AIRFLOW_MLOPS_STORE_ROOT"
FORMAT_ENV = "AIRFLOW_MLOPS_TABLE_FORMAT"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="airflow-mlops", description="Inspect and operate an airflow-mlops feature store."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--root",
        default=os.environ.get(ROOT_ENV),
        help=f"feature store root, a path or URI (default: ${ROOT_ENV})",
    )
    parser.add_argument(
        "--table-format",
        choices=TABLE_FORMATS,
        default=os.environ.get(FORMAT_ENV, "parquet"),
        help=f"the store's table format (default: ${FORMAT_ENV}, else parquet; docs/delta.md)",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print machine-readable JSON")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_: str, *args: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_, description=help_, parents=[common])
        for arg in args:
            sub.add_argument(arg, metavar=arg.upper())
        return sub

    command("tables", "list the tables")
    command("partitions", "list a table's partitions and their current versions", "table")
    command("versions", "list a partition's kept versions, oldest first", "table", "ds")
    command("manifest", "print a version's manifest", "table", "ds").add_argument(
        "--version", dest="version_id", metavar="V", help="a kept version (default: current)"
    )
    command("rollback", "make an earlier version current", "table", "ds").add_argument(
        "--to", metavar="V", help="the version to restore (default: the previous one)"
    )
    command("verify", "recompute and check the files' SHA-256", "table", "ds")
    command(
        "migrate", "copy a parquet-format store into Delta tables under --to (docs/delta.md)"
    ).add_argument("--to", required=True, metavar="ROOT", help="the new (Delta) store's root")
    command(
        "clean-staging", "delete staged run files not written for --older-than-days days"
    ).add_argument("--older-than-days", type=float, default=7.0, metavar="DAYS")
    add_models_parser(commands)
    add_score_parser(commands)
    add_serve_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "models":
            run_models(parser, args)
        else:
            _run_store_command(parser, args)
    except AirflowMlopsError as exc:
        print(f"airflow-mlops: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _run_store_command(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not args.root:
        parser.error(f"no store root: pass --root or set ${ROOT_ENV}")
    if args.command == "serve":
        run_serve(parser, args, args.root)
        return
    store = FeatureStore(args.root, table_format=args.table_format)
    if args.command == "score":
        run_score(parser, args, store)
    else:
        _COMMANDS[args.command](store, args)


def _tables(store: FeatureStore, args: argparse.Namespace) -> None:
    rows = []
    for table in store.list_tables():
        partitions = store.list_partitions(table)
        rows.append({"table": table, "partitions": len(partitions), "latest": partitions[-1]})
    _emit(
        args, rows, lambda r: f"{r['table']}  {r['partitions']} partition(s), latest {r['latest']}"
    )


def _partitions(store: FeatureStore, args: argparse.Namespace) -> None:
    rows = [_summary(store.manifest(args.table, ds)) for ds in store.list_partitions(args.table)]
    if not rows and not args.json:
        print(f"No partitions in table {args.table!r}. Tables: {', '.join(store.list_tables())}")
    _emit(args, rows, lambda r: f"{r['partition']}  {_describe(r)}")


def _versions(store: FeatureStore, args: argparse.Namespace) -> None:
    current = store.manifest(args.table, args.ds)["version"]
    rows = []
    for version in store.list_versions(args.table, args.ds):
        row = _summary(store.manifest(args.table, args.ds, version=version))
        rows.append({**row, "current": version == current})
    _emit(args, rows, lambda r: f"{'*' if r['current'] else ' '} {_describe(r)}")


def _manifest(store: FeatureStore, args: argparse.Namespace) -> None:
    print(json.dumps(store.manifest(args.table, args.ds, version=args.version_id), indent=2))


def _rollback(store: FeatureStore, args: argparse.Namespace) -> None:
    row = _summary(store.rollback(args.table, args.ds, to_version=args.to))
    _emit(args, [row], lambda r: f"Rolled back {args.table} {args.ds} to {_describe(r)}", one=True)


def _verify(store: FeatureStore, args: argparse.Namespace) -> None:
    manifest = store.verify(args.table, args.ds)
    row = {**_summary(manifest), "ok": True, "files": len(manifest["files"])}
    row["content_sha256"] = manifest["content_sha256"]
    _emit(
        args,
        [row],
        lambda r: (
            f"OK {args.table} {args.ds}: {r['files']} file(s), "
            f"{_describe(r)}, content sha256 {r['content_sha256']}"
        ),
        one=True,
    )


def _migrate(store: FeatureStore, args: argparse.Namespace) -> None:
    from airflow_mlops.store.migrate import migrate_store

    target = FeatureStore(args.to, table_format="delta", keep_versions=store.keep_versions)
    rows = [
        {
            "table": m.table,
            "partition": m.partition,
            "committed": list(m.versions),
            "current": m.current,
        }
        for m in migrate_store(store, target)
    ]
    _emit(
        args,
        rows,
        lambda r: (
            f"{r['table']} {r['partition']}: {len(r['committed'])} version(s) committed, "
            f"current {r['current']}"
        ),
    )


def _clean_staging(store: FeatureStore, args: argparse.Namespace) -> None:
    removed = store.clean_staging(dt.timedelta(days=args.older_than_days))
    _emit(args, [{"removed": path} for path in removed], lambda r: f"removed {r['removed']}")
    if not removed and not args.json:
        print(f"Nothing staged is older than {args.older_than_days:g} day(s).")


def _summary(manifest: Mapping[str, Any]) -> dict[str, Any]:
    keys = ("table", "partition", "version", "row_count", "created_at")
    return {key: manifest[key] for key in keys}


def _describe(row: dict[str, Any]) -> str:
    return f"{row['version']}  {row['row_count']:,} rows  created {row['created_at']}"


def _emit(
    args: argparse.Namespace,
    rows: list[dict[str, Any]],
    line: Callable[[dict[str, Any]], str],
    *,
    one: bool = False,
) -> None:
    if args.json:
        print(json.dumps(rows[0] if one else rows, indent=2))
        return
    for row in rows:
        print(line(row))


_COMMANDS: dict[str, Callable[[FeatureStore, argparse.Namespace], None]] = {
    "tables": _tables,
    "partitions": _partitions,
    "versions": _versions,
    "manifest": _manifest,
    "rollback": _rollback,
    "verify": _verify,
    "migrate": _migrate,
    "clean-staging": _clean_staging,
}
