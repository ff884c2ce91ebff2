"""Partition keys: which day a run writes.

A partition is a calendar day written ``YYYY-MM-DD``. A scheduled run of the daily
``0 3 * * *`` timetable (Airflow 3's ``CronTriggerTimetable``) fires at 03:00 with a
zero-length data interval; the day whose data is complete at that moment is the day
before, so by default a run's partition is ``(logical_date or run_after) - 1 day``.
A manual run may name its partition explicitly. ``now()`` is never consulted.
"""

from __future__ import annotations

import datetime as dt
import re

from airflow_mlops.exceptions import PartitionError, shown_value

_PARTITION = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def validate_partition(value: object) -> str:
    """``value`` as a canonical ``YYYY-MM-DD`` string, or :class:`PartitionError`."""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value).strip() if value is not None else ""
    if _PARTITION.match(text):
        try:
            return dt.date.fromisoformat(text).isoformat()
        except ValueError:
            pass
    raise PartitionError(
        f"Partition must be a date written YYYY-MM-DD. Got {shown_value(value)} instead. "
        "Pass a calendar day such as 2026-01-04 (the 'partition' argument or the trigger "
        "form's date)."
    )


def partition_for_run(
    *,
    explicit: object | None,
    logical_date: dt.datetime | None,
    run_after: dt.datetime | None,
    lag_days: int = 1,
) -> str:
    """The partition a run writes.

    ``explicit`` (a trigger-form param) wins; otherwise the run's ``logical_date`` or, for
    runs triggered without one, its ``run_after``, minus ``lag_days`` days.
    """
    if explicit not in (None, "", "None"):
        return validate_partition(explicit)
    anchor = logical_date or run_after
    if anchor is None:
        raise PartitionError(
            "Cannot choose a partition: the run has no logical_date, no run_after and no "
            "explicit 'partition' param. Trigger it with a partition date."
        )
    return (anchor.date() - dt.timedelta(days=lag_days)).isoformat()


def days_between(start: str, end: str) -> list[str]:
    """Every partition from ``start`` to ``end`` inclusive."""
    first, last = (
        dt.date.fromisoformat(validate_partition(start)),
        dt.date.fromisoformat(validate_partition(end)),
    )
    if last < first:
        raise PartitionError(f"Partition range is reversed: {start} > {end}.")
    return [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
