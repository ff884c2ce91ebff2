"""``airflow-mlops serve``: answer online inference requests for a registry alias (the Open
Inference Protocol over REST, and over gRPC on a second port).

The served model is the alias (default ``champion``) of a model name, loaded
checksum-verified; with ``--feature-table`` a request may give only the entity key and the
features come from the table's latest published partition (or ``--partition``). It binds
127.0.0.1 unless told otherwise; with a token (``--token-file`` or
``$AIRFLOW_MLOPS_SERVE_TOKEN``) every route but ``/v2/health/live`` needs
``Authorization: Bearer <token>``, on both protocols. SIGTERM or SIGINT stops it cleanly.

.. code-block:: bash

    export AIRFLOW_MLOPS_STORE_ROOT=/data/features AIRFLOW_MLOPS_REGISTRY_ROOT=/data/models
    airflow-mlops serve credit_risk --feature-table customer_features
    airflow-mlops serve credit_risk --alias challenger --http-port 9080 --grpc-port 0 \\
        --host 0.0.0.0 --token-file /run/secrets/serve-token --workers 2
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_mlops.cli.models import REGISTRY_ENV
from airflow_mlops.exceptions import ArgumentError
from airflow_mlops.models.registry import DEFAULT_ALIAS

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from fastapi import FastAPI

    from airflow_mlops.serving.service import ModelServer

#: The bearer token, when no ``--token-file`` is given.
TOKEN_ENV = "AIRFLOW_MLOPS_SERVE_TOKEN"

log = logging.getLogger(__name__)


def add_serve_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``serve`` command to the top-level CLI's sub-commands."""
    help_ = "serve a registered model over the Open Inference Protocol (REST and gRPC)"
    serve = commands.add_parser("serve", help=help_, description=help_)
    serve.add_argument("model", metavar="MODEL", help="the registry's model name")
    serve.add_argument(
        "--registry",
        default=os.environ.get(REGISTRY_ENV),
        metavar="ROOT",
        help=f"model registry root, a path or URI (default: ${REGISTRY_ENV})",
    )
    serve.add_argument("--alias", default=DEFAULT_ALIAS, help="the alias to serve")
    serve.add_argument("--feature-table", metavar="T", help="look features up in this table")
    serve.add_argument("--key-column", metavar="C", help="its key (default: the model's)")
    serve.add_argument("--partition", metavar="DS", help="the partition (default: the latest)")
    serve.add_argument("--host", default="127.0.0.1", help="the address to bind")
    serve.add_argument("--http-port", type=int, default=8080, metavar="PORT")
    serve.add_argument("--grpc-port", type=int, default=8081, metavar="PORT", help="0: no gRPC")
    serve.add_argument(
        "--token-file", metavar="PATH", help=f"the bearer token's file (default: ${TOKEN_ENV})"
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="server processes, each loading its own copy (pays when the machine has cores "
        "to spare: see docs/benchmarks.md)",
    )
    serve.add_argument(
        "--follow-interval",
        type=float,
        default=1.0,
        metavar="S",
        help="poll the alias and the table every S seconds and hot-swap changes (0: off)",
    )
    serve.add_argument(
        "--batch-wait-ms",
        type=float,
        default=2.0,
        metavar="MS",
        help="micro-batching: a small request waits up to MS for others to share its model call "
        "(0: off)",
    )
    serve.add_argument(
        "--max-batch-rows", type=int, default=256, metavar="N", help="rows in one batched call"
    )
    serve.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="one line per request on the airflow_mlops.serving.access logger (no feature values)",
    )
    serve.add_argument(
        "--open-metrics", action="store_true", help="serve GET /metrics without the token"
    )
    _add_log_and_shadow_options(serve)


def _add_log_and_shadow_options(serve: argparse.ArgumentParser) -> None:
    """The serving log's and the shadow challenger's options."""
    serve.add_argument(
        "--serving-log",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="log answered rows (features, outputs, version, latency) as Parquet segments under "
        "the store's _logs/<model>_requests (shadow comparisons under _logs/<model>_shadow)",
    )
    serve.add_argument(
        "--log-rotate-seconds",
        type=float,
        default=60.0,
        metavar="S",
        help="write a log segment at least every S seconds (the most a crash loses)",
    )
    serve.add_argument(
        "--shadow-alias", metavar="ALIAS", help="shadow-score a sample with this challenger alias"
    )
    serve.add_argument(
        "--shadow-fraction",
        type=float,
        default=1.0,
        metavar="F",
        help="share of entity keys shadowed (batch shadow scoring's hash: use its fraction)",
    )
    serve.add_argument(
        "--shadow-seed", type=int, default=0, metavar="N", help="the sample hash's seed"
    )


def run_serve(parser: argparse.ArgumentParser, args: argparse.Namespace, root: str) -> None:
    """Load the model and serve until SIGTERM/SIGINT; errors of this package propagate.

    :raises ArgumentError: an empty token file, ``--workers`` or ``--max-batch-rows`` below 1,
        a negative ``--follow-interval``, ``--batch-wait-ms`` or ``--shadow-seed``,
        ``--log-rotate-seconds`` below 0.01 or ``--shadow-fraction`` outside ``[0, 1]``.
    """
    if not args.registry:
        parser.error(f"no registry root: pass serve --registry or set ${REGISTRY_ENV}")
    _check_numbers(args)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    config = _config(args, root)
    service = load_service(config)  # in the parent too: a bad model fails here, once
    token = read_token(args.token_file)
    version = ",".join(service.model_metadata(args.model).versions)
    grpc = f", gRPC {args.host}:{args.grpc_port}" if args.grpc_port else ""
    log.info(
        "Serving %s %s (alias %s) at http://%s:%d/v2 (OpenAPI /docs)%s%s, %d worker(s)",
        args.model,
        version,
        args.alias,
        args.host,
        args.http_port,
        grpc,
        ", token required" if token else "",
        args.workers,
    )
    import uvicorn

    if args.workers == 1:
        app = build_app(service, config, token)
        # access_log=False: the access log is ours (serving.metrics), not a second uvicorn line
        server = uvicorn.Config(app, host=args.host, port=args.http_port, access_log=False)
        uvicorn.Server(server).run()
        return
    from airflow_mlops.cli.workers import run_workers

    service.stop()  # each worker loads its own, and runs its own shadow and serving log
    del service
    run_workers(serve_worker, (config, args.host, args.http_port), args.workers)


def _check_numbers(args: argparse.Namespace) -> None:
    """:raises ArgumentError: a worker count, interval, wait or batch size out of range."""
    if args.workers < 1:
        raise ArgumentError(f"serve --workers must be an int >= 1. Got {args.workers} instead.")
    if not args.follow_interval >= 0:
        raise ArgumentError(
            f"serve --follow-interval must be a float >= 0. Got {args.follow_interval} instead."
        )
    if not args.batch_wait_ms >= 0:
        raise ArgumentError(
            f"serve --batch-wait-ms must be a float >= 0. Got {args.batch_wait_ms} instead."
        )
    if args.max_batch_rows < 1:
        raise ArgumentError(
            f"serve --max-batch-rows must be an int >= 1. Got {args.max_batch_rows} instead."
        )
    if not args.log_rotate_seconds >= 0.01:
        raise ArgumentError(
            "serve --log-rotate-seconds must be a float >= 0.01. "
            f"Got {args.log_rotate_seconds} instead."
        )
    if not 0 <= args.shadow_fraction <= 1 or args.shadow_seed < 0:
        raise ArgumentError(
            "serve --shadow-fraction must be in [0, 1] and --shadow-seed an int >= 0. "
            f"Got {args.shadow_fraction} and {args.shadow_seed} instead."
        )


def _config(args: argparse.Namespace, root: str) -> dict[str, Any]:
    """What a server process needs to load and serve (JSON: passed on to worker processes)."""
    return {
        "root": root,
        "table_format": args.table_format,
        "registry": args.registry,
        "model": args.model,
        "alias": args.alias,
        "feature_table": args.feature_table,
        "key_column": args.key_column,
        "partition": args.partition,
        "host": args.host,
        "grpc_port": args.grpc_port,
        "token_file": args.token_file,
        "follow_interval": args.follow_interval,
        "batch_wait_ms": args.batch_wait_ms,
        "max_batch_rows": args.max_batch_rows,
        "access_log": args.access_log,
        "open_metrics": args.open_metrics,
        "serving_log": args.serving_log,
        "log_rotate_seconds": args.log_rotate_seconds,
        "shadow_alias": args.shadow_alias,
        "shadow_fraction": args.shadow_fraction,
        "shadow_seed": args.shadow_seed,
    }


def serve_worker(config: dict[str, Any], host: str, port: int) -> None:
    """One ``--workers`` process: load, then serve on its own ``SO_REUSEPORT`` socket
    (:mod:`airflow_mlops.cli.workers`) until SIGTERM."""
    import uvicorn

    from airflow_mlops.cli.workers import listening_socket

    # a fresh interpreter: its own handler, or the worker's loads, swaps and refusals go unlogged
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    app = build_app(load_service(config), config, read_token(config["token_file"]))
    sock = listening_socket(host, port)
    uvicorn.Server(uvicorn.Config(app, access_log=False)).run(sockets=[sock])


def load_service(config: dict[str, Any]) -> ModelServer:
    """The loaded, verified :class:`ModelServer` the settings name."""
    from airflow_mlops.models.registry import ModelRegistry
    from airflow_mlops.serving.log import SegmentWriter
    from airflow_mlops.serving.service import ModelServer
    from airflow_mlops.store.feature_store import FeatureStore

    store = FeatureStore(config["root"], table_format=config.get("table_format", "parquet"))
    log = None
    if config.get("serving_log"):
        log = SegmentWriter(store.logs, max_seconds=config.get("log_rotate_seconds", 60.0))
    service = ModelServer(
        store,
        ModelRegistry(config["registry"]),
        config["model"],
        alias=config["alias"],
        feature_table=config["feature_table"],
        key_column=config["key_column"],
        partition=config["partition"],
        batch_wait=config.get("batch_wait_ms", 0.0) / 1000,
        max_batch_rows=config.get("max_batch_rows", 256),
        serving_log=log,
        shadow_alias=config.get("shadow_alias"),
        shadow_fraction=config.get("shadow_fraction", 1.0),
        shadow_seed=config.get("shadow_seed", 0),
    )
    service.load()
    return service


def read_token(token_file: str | None) -> str | None:
    """The bearer token: ``token_file``'s text, else ``$AIRFLOW_MLOPS_SERVE_TOKEN``, else none.

    :raises ArgumentError: the file is empty.
    """
    if token_file is None:
        return os.environ.get(TOKEN_ENV) or None
    token = Path(token_file).read_text(encoding="utf-8").strip()
    if not token:
        raise ArgumentError(
            f"serve --token-file {token_file!r} is empty. Put the bearer token in it."
        )
    return token


def build_app(service: ModelServer, config: dict[str, Any], token: str | None) -> FastAPI:
    """The REST app, the service following its alias and table unless ``follow_interval`` is 0;
    with a gRPC port, it starts the gRPC server at startup and stops it at shutdown (in each
    worker process: gRPC binds its port with SO_REUSEPORT); at shutdown the service's shadow
    and serving log stop (what the log holds is written). Both protocols share one
    :class:`~airflow_mlops.serving.metrics.ServingMetrics` (``GET /metrics``)."""
    from airflow_mlops.serving.metrics import ServingMetrics
    from airflow_mlops.serving.rest import create_app

    if config.get("follow_interval"):
        service.start_following(config["follow_interval"])
    metrics = ServingMetrics(service.describe, access_log=config.get("access_log", True))
    open_metrics = bool(config.get("open_metrics", False))
    app = create_app(service, token=token, metrics=metrics, open_metrics=open_metrics)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from airflow_mlops.serving.grpc import serve

        grpc_port = config["grpc_port"]
        server = None
        if grpc_port:
            server = serve(service, config["host"], grpc_port, token=token, metrics=metrics)
        try:
            yield
        finally:
            if server is not None:
                server.stop(grace=5).wait()
            service.stop()  # the shadow and the serving log (flushed)

    app.router.lifespan_context = lifespan
    return app
