"""Batch scoring: a model applied to Arrow batches on a worker pool, challenger shadow
scoring on a deterministic sample, and one scoring run of a feature partition
(:func:`score_partition`).
"""

from __future__ import annotations

from airflow_mlops.scoring.batches import check_model_inputs, score_batches, scores_schema
from airflow_mlops.scoring.job import score_partition
from airflow_mlops.scoring.request import (
    ScoringRequest,
    ScoringResult,
    ShadowRequest,
    ShadowResult,
    ShardRequest,
)
from airflow_mlops.scoring.shadow import ShadowComparison, ShadowScorer, shadow_mask

__all__ = [
    "ScoringRequest",
    "ScoringResult",
    "ShadowComparison",
    "ShadowRequest",
    "ShadowResult",
    "ShadowScorer",
    "ShardRequest",
    "check_model_inputs",
    "score_batches",
    "score_partition",
    "scores_schema",
    "shadow_mask",
]
