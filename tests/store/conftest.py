"""A fresh local feature store per test."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from airflow_mlops.store.feature_store import FeatureStore

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def store(root: Path) -> FeatureStore:
    return FeatureStore(str(root))
