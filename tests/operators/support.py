"""Constants and helpers shared by the operator tests (fixtures live in conftest.py)."""

from __future__ import annotations

import datetime as dt
from typing import Any

DAG_ID = "unit_dag"
RUN_ID = "manual__2026-01-05T03:00:00+00:00"
WAREHOUSE_CONN_ID = "tiny_warehouse"
LOGICAL_DATE = dt.datetime(2026, 1, 5, 3, 0, tzinfo=dt.UTC)

#: The tiny warehouse: three customers, five transactions over three days.
CUSTOMERS = [(1, "alice"), (2, "bob"), (3, "carol")]
TRANSACTIONS = [
    (1, "2026-01-02", 10.0),
    (1, "2026-01-03", 5.0),
    (2, "2026-01-03", 7.5),
    (2, "2026-01-04", 2.5),
    (3, "2026-01-04", 1.0),
]


def render_and_execute(operator: Any, context: dict[str, Any]) -> Any:
    """What the task runner does: render templates (``partition`` joins the context), execute."""
    operator.render_template_fields(context)
    return operator.execute(context)
