"""The staging area: scratch paths, their clean-up, and the references steps pass on."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from airflow_mlops.exceptions import ArgumentError
from airflow_mlops.store.staging import staged_lineage, staged_path

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_mlops.store.feature_store import FeatureStore


@pytest.mark.parametrize(
    ("parts", "expected"),
    [
        pytest.param(("extract", "orders.parquet"), "extract/orders.parquet", id="plain"),
        pytest.param(("ds=2026-01-05",), "ds=2026-01-05", id="hive"),
        pytest.param(
            ("manual__2026-01-05T03:00:00+00:00",),
            "manual__2026-01-05T03_00_00_00_00-",
            id="run-id",
        ),
    ],
)
def test_staging_path(
    store: FeatureStore, root: Path, parts: tuple[str, ...], expected: str
) -> None:
    path = store.staging_path(*parts)

    assert path.startswith(f"{root}/_staging/{expected}")
    assert store.staging_path(*parts) == path


def test_staging_path_keeps_run_ids_apart(store: FeatureStore) -> None:
    assert store.staging_path("a:b") != store.staging_path("a+b")


@pytest.mark.parametrize(
    "part",
    [
        pytest.param("../x", id="parent-path"),
        pytest.param("..", id="parent"),
        pytest.param("/abs", id="absolute"),
        pytest.param("", id="empty"),
        pytest.param("a\\b", id="backslash"),
    ],
)
def test_staging_path_rejects_unsafe_parts(store: FeatureStore, part: str) -> None:
    with pytest.raises(ArgumentError, match=re.escape(f"Got {part!r} instead.")):
        store.staging_path("extract", part)


def test_clean_staging_removes_only_runs_not_written_lately(store: FeatureStore) -> None:
    import datetime as dt
    import os

    old = store.staging_path("dag", "old_run", "extract.parquet")
    fresh = store.staging_path("dag", "fresh_run", "extract.parquet")
    for path in (old, fresh):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(b"x")
    ten_days_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(days=10)).timestamp()
    os.utime(old, (ten_days_ago, ten_days_ago))

    removed = store.clean_staging(dt.timedelta(days=7))

    assert removed == [os.path.dirname(old)]
    assert not os.path.exists(old)
    assert os.path.exists(fresh)
    assert store.clean_staging(dt.timedelta(days=7)) == []
    with pytest.raises(ArgumentError, match="older_than >= 0"):
        store.clean_staging(dt.timedelta(days=-1))


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        pytest.param({"path": "/s/a.parquet", "rows": 3}, "/s/a.parquet", id="xcom-dict"),
        pytest.param("/s/a.parquet", "/s/a.parquet", id="plain-path"),
    ],
)
def test_staged_path_accepts_an_upstream_output_or_a_path(ref, expected):
    assert staged_path(ref, argument="input", operator="Op") == expected


@pytest.mark.parametrize(
    "ref",
    [
        pytest.param(None, id="none"),
        pytest.param("None", id="rendered-none"),
        pytest.param("", id="empty"),
        pytest.param({"rows": 3}, id="dict-without-path"),
        pytest.param(["/s/a.parquet"], id="list"),
    ],
)
def test_staged_path_refuses_anything_else(ref):
    with pytest.raises(
        ArgumentError,
        match=re.escape("The 'input' parameter of Op must be an upstream step's output"),
    ):
        staged_path(ref, argument="input", operator="Op")


def test_staged_lineage_is_empty_for_a_plain_path():
    assert staged_lineage("/s/a.parquet") == {}
    assert staged_lineage({"path": "/s/a", "lineage": {"sources": {"a": 1}}}) == {
        "sources": {"a": 1}
    }
