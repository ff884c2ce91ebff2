"""Bad references and bad values reaching DriftCheckOperator.

Two days are published (the reference day and the run's day) and a profile is built from
the first; every case checks that the run's partition and the stored profile are unchanged.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_mlops.drift.check import REPORT_JSON, profile_name
from airflow_mlops.exceptions import (
    ArgumentError,
    ContractError,
    EmptyInputError,
    PartitionError,
    PartitionNotFoundError,
)
from airflow_mlops.operators import BuildDriftProfileOperator, DriftCheckOperator
from tests.bad_inputs.support import PARTITION, expect_error, snapshot
from tests.operators.support import render_and_execute

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_mlops.store.feature_store import FeatureStore

TABLE = "customer_features"
REFERENCE_DAY = "2026-01-03"
ROWS = 500
NAN, INF = float("nan"), float("inf")


def day(seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "customer_id": pa.array(np.arange(ROWS), pa.int64()),
            "income": rng.normal(50_000, 10_000, ROWS),
            "plan": pa.array(["basic"] * ROWS),  # a constant column
            "region": pa.array(rng.choice(["north", "south"], ROWS).tolist()),
        }
    )


def publish(store: FeatureStore, table: pa.Table, partition: str = PARTITION) -> None:
    store.publish_partition(TABLE, partition, table.to_batches(), schema=table.schema)


def check(**kwargs: Any) -> DriftCheckOperator:
    kwargs.setdefault("reference", "profile")
    kwargs.setdefault("profile_name", "baseline")
    kwargs.setdefault("exclude", ["customer_id"])
    kwargs.setdefault("mode", "fail")
    return DriftCheckOperator(task_id="drift", table=TABLE, **kwargs)


@pytest.fixture
def days(feature_store, make_context) -> FeatureStore:
    publish(feature_store, day(1), REFERENCE_DAY)
    publish(feature_store, day(2))
    profile = BuildDriftProfileOperator(
        task_id="profile",
        table=TABLE,
        profile_name="baseline",
        exclude=["customer_id"],
        partition=REFERENCE_DAY,
    )
    render_and_execute(profile, make_context())
    return feature_store


def with_income(values: Callable[[int], Any]) -> Callable[[FeatureStore], None]:
    def mutate(store: FeatureStore) -> None:
        table = day(2)
        income = pa.array([values(i) for i in range(ROWS)], pa.float64())
        publish(store, table.set_column(1, "income", income))

    return mutate


def store_sidecar(name: str, payload: bytes) -> Callable[[FeatureStore], None]:
    return lambda store: store.write_sidecar(TABLE, profile_name(name), payload) and None


CASES = [
    pytest.param(
        lambda store: None,
        {"profile_name": "nope"},
        PartitionNotFoundError,
        "No 'profile-nope.json' is stored beside table 'customer_features'",
        id="profile-missing",
    ),
    pytest.param(
        lambda store: None,
        {"profile_name": "../../../etc/passwd"},
        ArgumentError,
        "A sidecar name must be letters, digits, '.', '_' or '-' (no path). "
        "Got 'profile-../../../etc/passwd.json' instead.",
        id="profile-name-traversal",
    ),
    pytest.param(
        store_sidecar("broken", b"{not json"),
        {"profile_name": "broken"},
        ArgumentError,
        "Drift profile 'broken' of table 'customer_features': The drift profile is damaged: "
        "it is not valid JSON",
        id="profile-damaged",
    ),
    pytest.param(
        store_sidecar("alien", json.dumps({"format": "other", "version": 1}).encode()),
        {"profile_name": "alien"},
        ArgumentError,
        "This is not a version-1 drift profile",
        id="profile-not-a-profile",
    ),
    pytest.param(
        lambda store: None,
        {"reference": "partition", "reference_partition": "2025-12-01"},
        PartitionNotFoundError,
        "Table 'customer_features' has no partition 2025-12-01",
        id="reference-partition-missing",
    ),
    pytest.param(
        lambda store: None,
        {"reference": "partition", "reference_partition": "2026-13-01"},
        PartitionError,
        "Got '2026-13-01' instead",
        id="reference-partition-malformed",
    ),
    pytest.param(
        lambda store: None,
        {"columns": ["income", "nope"]},
        ArgumentError,
        "Table 'customer_features' has no column(s) nope",
        id="unknown-column",
    ),
    pytest.param(
        lambda store: publish(store, day(2).set_column(1, "income", pa.array(["1"] * ROWS))),
        {},
        ContractError,
        "income is string, profiled as numeric",
        id="retyped-column",
    ),
    pytest.param(
        lambda store: publish(store, day(2).slice(0, 0)),
        {},
        EmptyInputError,
        "The current data has no rows to compare with the reference profile",
        id="empty-partition",
    ),
    pytest.param(
        with_income(lambda i: [NAN, INF, -INF][i % 3]),
        {},
        AirflowFailException,
        "Drift check failed for customer_features/ds=2026-01-04: {'ok': 2, 'warn': 0, 'fail': 1}",
        id="nan-and-inf-drift",
    ),
    pytest.param(
        with_income(lambda i: None),
        {},
        AirflowFailException,
        "Drift check failed for customer_features/ds=2026-01-04: {'ok': 2, 'warn': 0, 'fail': 1}",
        id="all-null-drift",
    ),
]


@pytest.mark.parametrize(("mutate", "kwargs", "error", "fragment"), CASES)
def test_a_bad_reference_or_partition_fails_and_changes_no_data(
    days: FeatureStore,
    make_context,
    mutate: Callable[[FeatureStore], None],
    kwargs: dict[str, Any],
    error: type[BaseException],
    fragment: str,
):
    mutate(days)
    before = snapshot(days, TABLE), days.read_sidecar(TABLE, profile_name("baseline"))

    expect_error(lambda: render_and_execute(check(**kwargs), make_context()), error, fragment)

    assert (snapshot(days, TABLE), days.read_sidecar(TABLE, profile_name("baseline"))) == before


def test_nan_and_inf_count_as_missing_and_the_report_stays_strict_json(days, make_context):
    with_income(lambda i: [NAN, INF, -INF, 1.0][i % 4])(days)

    summary = render_and_execute(check(mode="warn"), make_context())

    report = json.loads(
        days.read_sidecar(TABLE, REPORT_JSON, partition=PARTITION),
        parse_constant=lambda name: pytest.fail(f"{name} in the report"),
    )
    statuses = {c["name"]: c["status"] for c in report["columns"]}
    assert statuses == {"income": "fail", "plan": "ok", "region": "ok"}
    assert summary["columns"]["plan"]["psi"] == 0.0


def test_a_profile_of_nan_and_constant_columns_is_built(days, make_context):
    with_income(lambda i: NAN)(days)
    profile = BuildDriftProfileOperator(
        task_id="profile", table=TABLE, profile_name="odd", exclude=["customer_id"]
    )

    result = render_and_execute(profile, make_context())

    assert result["rows"] == ROWS
    stored = json.loads(days.read_sidecar(TABLE, profile_name("odd")))
    assert stored["columns"]["income"]["count"] == 0
    assert stored["columns"]["income"]["nulls"] == ROWS
