"""The source contract shared by every driver (sources/base.py)."""

from __future__ import annotations

import datetime
import re
from typing import Any

import pytest

from airflow_mlops.sources.base import query_sha256


def test_query_sha256_is_stable_and_order_insensitive() -> None:
    first = query_sha256("SELECT 1", {"b": 2, "a": datetime.date(2026, 1, 4)})
    second = query_sha256("SELECT 1", {"a": datetime.date(2026, 1, 4), "b": 2})
    assert first == second
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    assert query_sha256("SELECT 1", (1, 2)) == query_sha256("SELECT 1", [1, 2])


@pytest.mark.parametrize(
    ("sql", "parameters"),
    [
        pytest.param("SELECT 2", {"b": 2, "a": datetime.date(2026, 1, 4)}, id="sql"),
        pytest.param("SELECT 1", {"b": 3, "a": datetime.date(2026, 1, 4)}, id="value"),
        pytest.param("SELECT 1", None, id="no-parameters"),
    ],
)
def test_query_sha256_changes_with_sql_or_parameters(sql: str, parameters: Any) -> None:
    assert query_sha256(sql, parameters) != query_sha256(
        "SELECT 1", {"b": 2, "a": datetime.date(2026, 1, 4)}
    )


# ---------------------------------------------------------------- SQLite / DB-API
