"""Constants and helpers shared by the store tests (fixtures live in conftest.py)."""

from __future__ import annotations

import pyarrow as pa

DAY = "2026-01-05"


def make_batches(rows: int, *, per_batch: int = 4, start: int = 0) -> list[pa.RecordBatch]:
    ids = list(range(start, start + rows))
    return [
        pa.record_batch({"customer_id": chunk, "income": [i * 1.5 for i in chunk]})
        for chunk in (ids[i : i + per_batch] for i in range(0, rows, per_batch))
    ]
