"""The ``airflow-mlops`` command: the feature store and (``models``) the registry."""

from __future__ import annotations

from airflow_mlops.cli.main import main

__all__ = ["main"]
