"""Models: the registry (versions, aliases, checksummed artifacts), training (sweeps and the
training run that registers the best candidates) and the compiled tree runtime.

``registry`` is the public :class:`ModelRegistry`, over ``layout`` (where its files go),
``versions``, ``aliases`` and ``verification`` (the checks before unpickling); ``records``
checks what a record holds; ``artifacts`` dumps and loads a model's bytes.
"""

from __future__ import annotations

from airflow_mlops.models.accelerate import CompiledTreeModel, compile_tree_model
from airflow_mlops.models.artifacts import dump_model, load_model
from airflow_mlops.models.records import ModelOutput, ModelRecord
from airflow_mlops.models.registry import DEFAULT_ALIAS, LoadedModel, ModelRegistry
from airflow_mlops.models.training import Candidate, TrainingRequest, sweep, train_and_register

__all__ = [
    "DEFAULT_ALIAS",
    "Candidate",
    "CompiledTreeModel",
    "LoadedModel",
    "ModelOutput",
    "ModelRecord",
    "ModelRegistry",
    "TrainingRequest",
    "compile_tree_model",
    "dump_model",
    "load_model",
    "sweep",
    "train_and_register",
]
