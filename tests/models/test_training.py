from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from airflow_mlops.exceptions import ArgumentError, EmptyInputError
from airflow_mlops.models.training import sweep


def _data(n: int = 600):
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n)})
    y = (x["a"] + 0.3 * rng.normal(size=n) > 0).astype(int).to_numpy()
    return x, y


def _make(params):
    return LogisticRegression(C=params["C"])


def test_sweep_ranks_candidates_by_cross_validated_auc_and_records_metrics():
    x, y = _data()
    candidates = sweep(_make, [("tiny", {"C": 1e-5}), ("normal", {"C": 1.0})], x, y, folds=3)
    aucs = [c.metrics["cv_roc_auc_mean"] for c in candidates]
    assert aucs == sorted(aucs, reverse=True)
    best = candidates[0]
    assert set(best.metrics) == {
        f"cv_{m}_{s}" for m in ("roc_auc", "log_loss", "brier") for s in ("mean", "std")
    }
    assert 0.5 < best.metrics["cv_roc_auc_mean"] <= 1.0
    assert best.estimator.predict_proba(x).shape == (len(x), 2)
    assert best.summary() == {"name": best.name, "params": best.params, "metrics": best.metrics}


def test_sweep_is_reproducible():
    x, y = _data()
    grid = [("normal", {"C": 1.0})]
    assert sweep(_make, grid, x, y)[0].metrics == sweep(_make, grid, x, y)[0].metrics


@pytest.mark.parametrize(
    ("rows", "labels", "error", "message"),
    [
        pytest.param(0, [], EmptyInputError, "No training rows", id="empty"),
        pytest.param(10, [0] * 10, ArgumentError, "both classes", id="one-class"),
    ],
)
def test_sweep_refuses_unusable_training_data(rows, labels, error, message):
    x = pd.DataFrame({"a": np.zeros(rows), "b": np.zeros(rows)})
    with pytest.raises(error, match=re.escape(message)):
        sweep(_make, [("c", {"C": 1.0})], x, labels)


def test_sweep_needs_a_grid():
    x, y = _data()
    with pytest.raises(ArgumentError, match="at least one"):
        sweep(_make, [], x, y)
