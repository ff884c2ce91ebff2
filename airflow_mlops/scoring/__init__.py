"""Batch scoring: a model applied to Arrow batches on a worker pool, and challenger shadow
scoring on a deterministic sample.
"""

from __future__ import annotations

from airflow_mlops.scoring.batches import check_model_inputs, score_batches, scores_schema
from airflow_mlops.scoring.shadow import ShadowComparison, ShadowScorer, shadow_mask

__all__ = [
    "ShadowComparison",
    "ShadowScorer",
    "check_model_inputs",
    "score_batches",
    "scores_schema",
    "shadow_mask",
]
