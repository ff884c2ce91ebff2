"""``airflow-mlops score``: score a feature partition with a registered model from a shell.

The same run as ``BatchScoreOperator`` (:func:`airflow_mlops.scoring.score_partition`):
the artifact is verified and the features checked against the model's input contract
before any row is scored, and the scores are published atomically as the same partition of
the output table. Prints the run's summary as JSON; progress goes to stderr.

.. code-block:: bash

    export AIRFLOW_MLOPS_STORE_ROOT=/data/features AIRFLOW_MLOPS_REGISTRY_ROOT=/data/models
    airflow-mlops score customer_features 2026-01-04 credit_risk customer_scores
    airflow-mlops score customer_features 2026-01-04 credit_risk customer_scores \\
        --version v0003 --workers 4 --challenger challenger --shadow-fraction 0.5
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import uuid
from typing import TYPE_CHECKING

from airflow_mlops.cli.models import REGISTRY_ENV
from airflow_mlops.models.registry import DEFAULT_ALIAS, ModelRegistry
from airflow_mlops.scoring.job import score_partition
from airflow_mlops.scoring.request import RUNTIMES, ScoringRequest, ShadowRequest

if TYPE_CHECKING:
    import argparse

    from airflow_mlops.store.feature_store import FeatureStore

#: The staging directory of the command's runs (``_staging/<this>/<run id>/``).
STAGING_DAG = "airflow-mlops-score"


def add_score_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``score`` command to the top-level CLI's sub-commands."""
    help_ = "score a feature partition with a registered model and publish the scores"
    score = commands.add_parser("score", help=help_, description=help_)
    for name, meaning in (
        ("features_table", "the feature table to score"),
        ("ds", "the partition, YYYY-MM-DD"),
        ("model", "the registry's model name"),
        ("output_table", "the scores table (the same partition is written)"),
    ):
        score.add_argument(name, metavar=name.upper(), help=meaning)
    score.add_argument(
        "--registry",
        default=os.environ.get(REGISTRY_ENV),
        metavar="ROOT",
        help=f"model registry root, a path or URI (default: ${REGISTRY_ENV})",
    )
    which = score.add_mutually_exclusive_group()
    which.add_argument("--alias", default=DEFAULT_ALIAS, help="the alias to score with")
    which.add_argument("--version", dest="model_version", metavar="V", help="a pinned version")
    score.add_argument("--batch-size", type=int, default=100_000, metavar="ROWS")
    score.add_argument("--workers", type=int, default=2, metavar="N", help="scoring processes")
    score.add_argument("--runtime", choices=RUNTIMES, default="auto")
    score.add_argument("--threshold", type=float, help="default: the record's threshold")
    score.add_argument("--challenger", metavar="ALIAS", help="shadow-score with this alias")
    score.add_argument("--shadow-fraction", type=float, default=1.0, metavar="F")
    score.add_argument("--shadow-seed", type=int, default=0, metavar="S")
    score.add_argument(
        "--shadow-table", metavar="T", help="the challenger's table (default: OUTPUT_TABLE_shadow)"
    )


def run_score(
    parser: argparse.ArgumentParser, args: argparse.Namespace, store: FeatureStore
) -> None:
    """Run ``score`` on ``store``; errors of this package propagate to the caller."""
    if not args.registry:
        parser.error(f"no registry root: pass score --registry or set ${REGISTRY_ENV}")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    registry = ModelRegistry(args.registry)
    run_id = uuid.uuid4().hex
    shadow = None
    if args.challenger:
        shadow = ShadowRequest(
            args.challenger,
            args.shadow_table or f"{args.output_table}_shadow",
            store.staging_path(STAGING_DAG, run_id, "score-shadow.parquet"),
            fraction=args.shadow_fraction,
            seed=args.shadow_seed,
        )
    request = ScoringRequest(
        features_table=args.features_table,
        output_table=args.output_table,
        model_name=args.model,
        model_version=args.model_version or registry.resolve(args.model, args.alias),
        partition=args.ds,
        batch_size=args.batch_size,
        workers=args.workers,
        runtime=args.runtime,
        threshold=args.threshold,
        shadow=shadow,
    )
    lineage = {"command": "airflow-mlops score", "run_id": run_id}
    log = logging.getLogger(__name__)
    with contextlib.redirect_stdout(sys.stderr):  # stdout is the summary's: tl2cgen prints its log
        result = score_partition(store, registry, request, lineage=lineage, log=log)
    print(json.dumps(result.summary(), indent=2))
