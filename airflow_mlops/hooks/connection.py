"""Reading a provider connection's form fields, whichever way Airflow stored them."""

from __future__ import annotations

from typing import Any


def extra_field(extra: dict[str, Any], conn_type: str, name: str) -> Any:
    """Field ``name`` of a ``conn_type`` connection: plain in extra, or UI-prefixed."""
    return extra.get(name, extra.get(f"extra__{conn_type}__{name}"))
