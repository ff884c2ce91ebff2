"""Models: the registry (versions, aliases, checksummed artifacts), training sweeps and the
compiled tree runtime.
"""

from __future__ import annotations

from airflow_mlops.models.accelerate import CompiledTreeModel, compile_tree_model
from airflow_mlops.models.artifacts import dump_model, load_model
from airflow_mlops.models.records import ModelOutput, ModelRecord
from airflow_mlops.models.registry import DEFAULT_ALIAS, LoadedModel, ModelRegistry
from airflow_mlops.models.training import Candidate, sweep

__all__ = [
    "DEFAULT_ALIAS",
    "Candidate",
    "CompiledTreeModel",
    "LoadedModel",
    "ModelOutput",
    "ModelRecord",
    "ModelRegistry",
    "compile_tree_model",
    "dump_model",
    "load_model",
    "sweep",
]
