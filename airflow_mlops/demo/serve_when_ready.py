"""``python -m airflow_mlops.demo.serve_when_ready [--poll S] -- <airflow-mlops args>``:
``airflow-mlops serve`` once the served alias exists.

A stack starts with an empty registry: ``airflow-mlops serve`` would fail to load and exit.
This waits (polling the registry every ``--poll`` seconds) until the alias the arguments
name resolves, then replaces itself with the CLI (same PID, so a stop by PID still
works). Used by the local stack (:mod:`airflow_mlops.demo.stack`) and the compose file's
``serving`` service.

.. code-block:: bash

    python -m airflow_mlops.demo.serve_when_ready --poll 10 -- --root /data/features \\
        serve credit_risk --registry /data/models --feature-table customer_features
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from airflow_mlops.cli.main import build_parser
from airflow_mlops.exceptions import ModelNotFoundError
from airflow_mlops.models.registry import ModelRegistry


def alias_exists(registry_root: str, model: str, alias: str) -> bool:
    """Whether ``alias`` of ``model`` resolves in the registry at ``registry_root``."""
    try:
        ModelRegistry(registry_root).resolve(model, alias)
    except ModelNotFoundError:
        return False
    return True


def main(argv: list[str] | None = None) -> None:
    """Wait for the alias the ``airflow-mlops serve`` arguments name, then exec the CLI.

    :raises SystemExit: the arguments are not a ``serve`` command with a registry root.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--poll", type=float, default=10.0, metavar="S")
    parser.add_argument("cli", nargs=argparse.REMAINDER, help="-- then airflow-mlops args")
    args = parser.parse_args(argv)
    cli = args.cli[1:] if args.cli[:1] == ["--"] else args.cli
    served = build_parser().parse_args(cli)
    if served.command != "serve" or not served.registry:
        parser.error("give an `airflow-mlops serve` command with a registry root after --")
    waiting = False
    while not alias_exists(served.registry, served.model, served.alias):
        if not waiting:
            print(
                f"waiting for {served.model}@{served.alias} in {served.registry} "
                f"(polling every {args.poll:g} s)",
                file=sys.stderr,
                flush=True,
            )
            waiting = True
        time.sleep(args.poll)
    os.execv(sys.executable, [sys.executable, "-m", "airflow_mlops", *cli])


if __name__ == "__main__":
    main()
