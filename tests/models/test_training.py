from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression

from airflow_mlops.contract import FeatureContract
from airflow_mlops.exceptions import ArgumentError, ContractError, EmptyInputError
from airflow_mlops.models.registry import ModelRegistry
from airflow_mlops.models.training import TrainingRequest, sweep, train_and_register

if TYPE_CHECKING:
    from pathlib import Path


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


# -- train_and_register ---------------------------------------------------------------

GRID = [("tiny", {"C": 1e-5}), ("normal", {"C": 1.0}), ("loose", {"C": 100.0})]
CONTRACT = FeatureContract.from_dict({"a": ("float64", False), "b": ("float64", False)})
OUTPUT = {"score": "p", "threshold": 0.5, "entity_key": "id"}
LOG = logging.getLogger(__name__)


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(str(tmp_path / "registry"))


def features_and_labels(tmp_path: Path, labels: pa.Table | None = None) -> tuple[pa.Table, str]:
    """Features keyed by ``id`` and the path of their labels' Parquet file (ids in reverse)."""
    x, y = _data()
    ids = pa.array(np.arange(len(x)), pa.int64())
    features = pa.table({"id": ids, "a": x["a"], "b": x["b"]})
    if labels is None:
        labels = pa.table({"id": ids, "label": y}).take(np.arange(len(x))[::-1])
    path = tmp_path / "labels.parquet"
    pq.write_table(labels, path)
    return features, str(path)


def training(labels_path: str, **kwargs: Any) -> TrainingRequest:
    return TrainingRequest(
        **{
            "model_name": "m",
            "features_table": "features",
            "partition": "2026-01-04",
            "features_version": "v1",
            "labels_path": labels_path,
            "labels_lineage": {"sources": {"labels": {"rows": 600}}},
            "label_column": "label",
            "make_estimator": _make,
            "grid": GRID,
            "input_contract": CONTRACT,
            "output": OUTPUT,
            "trained_by": "dag.task",
            **kwargs,
        }
    )


def test_train_and_register_registers_the_best_candidates_under_their_aliases(
    tmp_path, registry, caplog
):
    features, path = features_and_labels(tmp_path)
    caplog.set_level(logging.INFO, logger=__name__)

    registered = train_and_register(
        registry, training(path), features, filesystem=pafs.LocalFileSystem(), log=LOG
    )

    records = [registry.record("m", v) for v in registry.list_versions("m")]
    sweep = records[0]["params"]["sweep"]
    assert [c["metrics"]["cv_roc_auc_mean"] for c in sweep] == sorted(
        (c["metrics"]["cv_roc_auc_mean"] for c in sweep), reverse=True
    )
    assert registry.aliases("m") == {"champion": "v0001", "challenger": "v0002"}
    assert registered == [
        {
            "alias": alias,
            "version": record["version"],
            "candidate": candidate["name"],
            "cv_roc_auc_mean": candidate["metrics"]["cv_roc_auc_mean"],
        }
        for alias, record, candidate in zip(
            ["champion", "challenger"], records, sweep, strict=False
        )
    ]
    for record in records:
        assert record["training_data"] == {
            "table": "features",
            "partitions": ["2026-01-04"],
            "version": "v1",
            "rows": features.num_rows,
            "labels": {"sources": {"labels": {"rows": 600}}},
        }
        assert record["tags"] == {"trained_by": "dag.task"}
        assert record["output"] == OUTPUT
        assert "tl2cgen" in record["runtimes"]
    assert caplog.messages[0] == (
        "Sweeping 3 candidates on features/ds=2026-01-04: 600 labelled rows, 3 folds"
    )
    assert caplog.messages[1].startswith(f"candidate {sweep[0]['name']}: ")


def test_train_and_register_can_skip_the_runtime_check(tmp_path, registry):
    features, path = features_and_labels(tmp_path)

    train_and_register(
        registry,
        training(path, aliases=["champion"], check_runtimes=False),
        features,
        filesystem=pafs.LocalFileSystem(),
        log=LOG,
    )

    assert registry.list_versions("m") == ["v0001"]
    assert registry.record("m", "v0001")["runtimes"] == {}


def test_train_and_register_refuses_labels_without_the_entity_key(tmp_path, registry):
    features, path = features_and_labels(tmp_path, pa.table({"key": [1, 2], "label": [0, 1]}))

    with pytest.raises(
        ContractError,
        match=re.escape("The training labels lack column(s) id; they have key, label"),
    ):
        train_and_register(
            registry, training(path), features, filesystem=pafs.LocalFileSystem(), log=LOG
        )

    assert registry.list_models() == []
