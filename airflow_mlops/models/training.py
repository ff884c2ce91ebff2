"""Hyper-parameter sweeps with cross-validated metrics: every candidate's record kept.

Generic over the estimator: the caller gives a factory ``params -> unfitted estimator``
and a grid; each candidate is cross-validated (stratified folds, fixed seed) and the
candidates come back best first, each refitted on all rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlops.exceptions import ArgumentError, ContractError, EmptyInputError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    import pandas as pd
    import pyarrow as pa

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
