"""Fixtures of the source tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path

    pass

from tests.sources.support import make_sqlite


@pytest.fixture
def events_db(tmp_path: Path) -> str:
    rows = [
        (i, f"name-{i}", i * 0.5, f"2026-01-{1 + i % 28:02d} 10:00:00", None if i < 7 else i)
        for i in range(25)
    ]
    ddl = "CREATE TABLE events (id INTEGER, name TEXT, score REAL, ts TEXT, late INTEGER)"
    return make_sqlite(tmp_path / "events.db", ddl, rows)


# ---------------------------------------------------------------- query_sha256
