"""Helpers the source tests share."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_mlops.sources.base import BatchStream


def make_sqlite(path: Path, ddl: str, rows: list[tuple[Any, ...]]) -> str:
    with sqlite3.connect(path) as conn:
        conn.execute(ddl)
        placeholders = ", ".join("?" * len(rows[0])) if rows else ""
        table = ddl.split()[2]
        conn.executemany(f"INSERT INTO {table} VALUES ({placeholders})", rows)
    conn.close()
    return str(path)


def collect(stream: BatchStream) -> pa.Table:
    with stream:
        return pa.Table.from_batches(list(stream), schema=stream.schema)
