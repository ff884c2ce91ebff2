"""Hyper-parameter sweeps with cross-validated metrics: every candidate's record kept.

Generic over the estimator: the caller gives a factory ``params -> unfitted estimator``
and a grid; each candidate is cross-validated (stratified folds, fixed seed) and the
candidates come back best first, each refitted on all rows. :func:`train_and_register`
is a whole training run: labels read and joined to a feature partition, the sweep, and
the best candidates registered under their aliases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from airflow_mlops.exceptions import ArgumentError, ContractError, EmptyInputError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    import pandas as pd
    import pyarrow as pa
    import pyarrow.fs as pafs

    from airflow_mlops.contract import FeatureContract
    from airflow_mlops.models.registry import ModelRegistry
    from airflow_mlops.progress import InfoLogger

#: metric name → scikit-learn scorer; the first is the one candidates are ranked by.
SCORERS = {"roc_auc": "roc_auc", "log_loss": "neg_log_loss", "brier": "neg_brier_score"}


@dataclass(frozen=True)
class Candidate:
    """One point of a sweep: its params, cross-validated metrics and the refitted model."""

    name: str
    params: Mapping[str, Any]
    metrics: Mapping[str, float]
    estimator: Any

    def summary(self) -> dict[str, Any]:
        """JSON-ready: name, params, metrics (no estimator)."""
        return {"name": self.name, "params": dict(self.params), "metrics": dict(self.metrics)}


def sweep(
    make_estimator: Callable[[Mapping[str, Any]], Any],
    grid: Sequence[tuple[str, Mapping[str, Any]]],
    features: pd.DataFrame,
    labels: Sequence[int],
    *,
    folds: int = 3,
    seed: int = 0,
) -> list[Candidate]:
    """Cross-validate every ``(name, params)`` of ``grid``; candidates best first.

    Metrics per candidate: mean and standard deviation over ``folds`` stratified folds of
    ROC AUC, log loss and Brier score (lower is better for the last two).
    """
    import numpy as np
    from sklearn.model_selection import StratifiedKFold, cross_validate

    if not grid:
        raise ArgumentError("sweep needs at least one (name, params) candidate. Got none.")
    y = np.asarray(labels)
    if len(features) == 0:
        raise EmptyInputError("No training rows: the features joined to labels are empty.")
    if len(np.unique(y)) < 2:
        raise ArgumentError(
            f"Training labels must contain both classes. Got only {np.unique(y).tolist()}."
        )
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    candidates = []
    for name, params in grid:
        scores = cross_validate(
            make_estimator(params), features, y, cv=splitter, scoring=dict(SCORERS)
        )
        metrics: dict[str, float] = {}
        for metric in SCORERS:
            values = scores[f"test_{metric}"]
            sign = 1.0 if metric == "roc_auc" else -1.0
            metrics[f"cv_{metric}_mean"] = float(sign * values.mean())
            metrics[f"cv_{metric}_std"] = float(values.std())
        estimator = make_estimator(params).fit(features, y)
        candidates.append(Candidate(name, dict(params), metrics, estimator))
    return sorted(candidates, key=lambda c: -c.metrics["cv_roc_auc_mean"])


def labelled_frame(
    features: pa.Table,
    labels: pa.Table,
    *,
    entity_key: str,
    label_column: str,
    feature_names: Sequence[str],
) -> tuple[pd.DataFrame, Any]:
    """Model inputs (``feature_names``, in order) and labels, joined on ``entity_key``.

    Rows are sorted by the key, so the same inputs always give the same training set.
    """

    missing = [c for c in (entity_key, label_column) if c not in labels.column_names]
    if missing:
        raise ContractError(
            f"The training labels lack column(s) {', '.join(missing)}; they have "
            f"{', '.join(labels.column_names)}. Select the entity key and the label.",
            missing_columns=missing,
        )
    # inner: a row without a label cannot be trained on (a left join would give NaN labels)
    joined = features.join(labels.select([entity_key, label_column]), entity_key, join_type="inner")
    joined = joined.sort_by(entity_key)
    return joined.select(list(feature_names)).to_pandas(), joined[label_column].to_numpy()


@dataclass(frozen=True)
class TrainingRequest:
    """A training run: a grid swept on one feature partition joined to labels.

    :param model_name: the registry's model name.
    :param features_table: the feature table trained on.
    :param partition: its partition trained on (``YYYY-MM-DD``).
    :param features_version: the partition's published version, for the record.
    :param labels_path: staged Parquet of labels, on the filesystem given to
        :func:`train_and_register`.
    :param labels_lineage: where the labels came from, for the record.
    :param label_column: the label's column in the labels (0/1).
    :param make_estimator: ``params -> unfitted scikit-learn estimator``.
    :param grid: ``[(candidate name, params), …]``.
    :param input_contract: the model's inputs (names, types, nullability).
    :param output: how to read scores; its ``entity_key`` joins features and labels, its
        ``threshold`` (if any) is the decision the runtime check compares.
    :param aliases: aliases given to the best candidates, best first.
    :param folds: cross-validation folds.
    :param check_runtimes: before registering each candidate, check the compiled runtime
        against scikit-learn's (:func:`~airflow_mlops.models.accelerate.registration_check`).
    :param trained_by: who trained, recorded as the ``trained_by`` tag.
    """

    model_name: str
    features_table: str
    partition: str
    features_version: str
    labels_path: str
    labels_lineage: Mapping[str, Any]
    label_column: str
    make_estimator: Callable[[Mapping[str, Any]], Any]
    grid: Sequence[tuple[str, Mapping[str, Any]]]
    input_contract: FeatureContract
    output: Mapping[str, Any]
    aliases: Sequence[str] = ("champion", "challenger")
    folds: int = 3
    check_runtimes: bool = True
    trained_by: str = ""


class Registered(TypedDict):
    """One registered candidate, as a training run reports it."""

    alias: str
    version: str
    candidate: str
    cv_roc_auc_mean: float


def train_and_register(
    registry: ModelRegistry,
    request: TrainingRequest,
    features: pa.Table,
    *,
    filesystem: pafs.FileSystem,
    log: InfoLogger,
) -> list[Registered]:
    """Sweep ``request.grid`` on ``features`` joined to the labels; register the best.

    The best ``len(request.aliases)`` candidates are registered in rank order, the first
    under ``aliases[0]``, the next under ``aliases[1]``; each record carries the whole
    sweep and the training data's lineage.

    :param features: the partition's entity key and model inputs.
    :param filesystem: where ``request.labels_path`` is (the feature store's).
    :param log: the run's logger (candidates' metrics, runtime checks).
    :raises ContractError: when the labels lack the entity key or the label column.
    :raises EmptyInputError: when no feature row has a label.
    :raises ArgumentError: when the labels hold one class only.
    """
    import pyarrow.parquet as pq

    with filesystem.open_input_file(request.labels_path) as handle:
        labels = pq.read_table(handle)
    x, y = labelled_frame(
        features,
        labels,
        entity_key=request.output["entity_key"],
        label_column=request.label_column,
        feature_names=request.input_contract.names,
    )
    log.info(
        "Sweeping %d candidates on %s/ds=%s: %d labelled rows, %d folds",
        len(request.grid),
        request.features_table,
        request.partition,
        len(x),
        request.folds,
    )
    candidates = sweep(request.make_estimator, request.grid, x, y, folds=request.folds)
    for candidate in candidates:
        log.info("candidate %(name)s: %(metrics)s", candidate.summary())
    return _register(registry, request, candidates, x, log)


def _register(
    registry: ModelRegistry,
    request: TrainingRequest,
    candidates: list[Candidate],
    x: pd.DataFrame,
    log: InfoLogger,
) -> list[Registered]:
    """The best ``len(request.aliases)`` candidates registered, one alias each, best first.

    :param x: the training frame (its first rows are the runtime check's).
    """
    summaries = [c.summary() for c in candidates]
    training_data = {
        "table": request.features_table,
        "partitions": [request.partition],
        "version": request.features_version,
        "rows": len(x),
        "labels": request.labels_lineage,
    }
    registered: list[Registered] = []
    for alias, candidate in zip(request.aliases, candidates, strict=False):
        record = registry.register(
            request.model_name,
            candidate.estimator,
            input_contract=request.input_contract,
            output=request.output,
            metrics=candidate.metrics,
            params={"candidate": candidate.name, **candidate.params, "sweep": summaries},
            training_data=training_data,
            tags={"trained_by": request.trained_by},
            runtimes=_runtime_checks(request, candidate, x, log) if request.check_runtimes else {},
            aliases=[alias],
        )
        registered.append(
            {
                "alias": alias,
                "version": record["version"],
                "candidate": candidate.name,
                "cv_roc_auc_mean": candidate.metrics["cv_roc_auc_mean"],
            }
        )
    return registered


def _runtime_checks(
    request: TrainingRequest, candidate: Candidate, x: pd.DataFrame, log: InfoLogger
) -> dict[str, Any]:
    """``record["runtimes"]`` for ``candidate``: checked on the first rows (sorted by key)."""
    from airflow_mlops.models.accelerate import CHECK_ROWS, COMPILED_RUNTIME, registration_check

    runtimes = registration_check(
        candidate.estimator,
        x.head(CHECK_ROWS),
        threshold=request.output.get("threshold"),
    )
    entry = runtimes[COMPILED_RUNTIME]
    log.info(
        "candidate %s: %s runtime %s (max |diff| %s on %d rows, tolerance %s): %s",
        candidate.name,
        COMPILED_RUNTIME,
        "verified" if entry["verified"] else "not verified",
        entry["max_abs_diff"],
        entry["rows_checked"],
        entry["tolerance"],
        entry["reason"],
    )
    return runtimes
