from __future__ import annotations

import datetime as dt
import re

import pytest

from airflow_mlops.exceptions import PartitionError
from airflow_mlops.partition import days_between, partition_for_run, validate_partition

T = dt.datetime(2026, 1, 5, 3, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        pytest.param(
            {"explicit": None, "logical_date": T, "run_after": T},
            "2026-01-04",
            id="scheduled-previous-day",
        ),
        pytest.param(
            {"explicit": "2026-01-01", "logical_date": T, "run_after": T},
            "2026-01-01",
            id="explicit-wins",
        ),
        pytest.param(
            {"explicit": None, "logical_date": None, "run_after": T},
            "2026-01-04",
            id="no-logical-date",
        ),
        pytest.param(
            {"explicit": "None", "logical_date": None, "run_after": T},
            "2026-01-04",
            id="rendered-none",
        ),
        pytest.param(
            {"explicit": None, "logical_date": T, "run_after": None, "lag_days": 0},
            "2026-01-05",
            id="lag-zero",
        ),
    ],
)
def test_partition_for_run(kwargs, expected):
    assert partition_for_run(**kwargs) == expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("2026-13-01", id="month-13"),
        pytest.param("2026-02-30", id="feb-30"),
        pytest.param("20260101", id="compact"),
        pytest.param("../2026-01-01", id="path"),
        pytest.param("", id="empty"),
        pytest.param(None, id="none"),
    ],
)
def test_malformed_partitions_are_refused(value):
    with pytest.raises(PartitionError, match=re.escape("Partition must be a date written")):
        validate_partition(value)


def test_no_anchor_at_all_is_refused():
    with pytest.raises(PartitionError, match="Trigger it with a partition date"):
        partition_for_run(explicit=None, logical_date=None, run_after=None)


def test_days_between():
    assert days_between("2026-01-30", "2026-02-01") == ["2026-01-30", "2026-01-31", "2026-02-01"]
    with pytest.raises(PartitionError, match="reversed"):
        days_between("2026-01-02", "2026-01-01")
