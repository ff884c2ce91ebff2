"""A fresh local feature store per test, in each table format (tests of one format's own
files ask for it: ``@pytest.mark.parametrize("store", ["parquet"], indirect=True)``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from airflow_mlops.store.feature_store import FeatureStore

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture(params=["parquet", "delta"])
def store(root: Path, request: pytest.FixtureRequest) -> FeatureStore:
    return FeatureStore(str(root), table_format=request.param)
