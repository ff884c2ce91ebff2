"""Bad data reaching PublishFeaturesOperator: schema changes, nulls, keys, timestamps, emptiness.

Every case publishes a good partition first, feeds the bad input to the operator's
``execute``, and checks the exact error and that the published partition is unchanged.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pytest
from structlog.testing import capture_logs

from airflow_mlops.contract import FeatureContract
from airflow_mlops.exceptions import ContractError, DuplicateKeyError, EmptyInputError
from airflow_mlops.operators import PublishFeaturesOperator
from tests.bad_inputs.support import PARTITION, expect_error, snapshot
from tests.operators.support import render_and_execute

if TYPE_CHECKING:
    from collections.abc import Callable

TABLE = "customer_features"
CONTRACT = FeatureContract.from_dict(
    {
        "customer_id": ("int64", False),
        "income": "float64",
        "visits": "int32",
        "region": "string",
        "signup": "date32",
        "seen_at": "timestamp[us, tz=UTC]",
        "local_day": "timestamp[us]",
    }
)
UTC = dt.UTC


def good() -> pa.Table:
    """Five customers that match CONTRACT exactly."""
    return pa.table(
        {
            "customer_id": pa.array([1, 2, 3, 4, 5], pa.int64()),
            "income": [10.5, 20.0, None, 40.0, 50.25],
            "visits": pa.array([1, 2, 3, 4, 5], pa.int32()),
            "region": ["north", "south", "east", "west", None],
            "signup": pa.array([dt.date(2025, 1, d) for d in range(1, 6)], pa.date32()),
            "seen_at": pa.array(
                [dt.datetime(2026, 1, 4, h, tzinfo=UTC) for h in range(5)],
                pa.timestamp("us", tz="UTC"),
            ),
            "local_day": pa.array(
                [dt.datetime(2026, 1, 4, h) for h in range(5)], pa.timestamp("us")
            ),
        }
    )


def replace(table: pa.Table, name: str, values: Any, type_: pa.DataType | None = None) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, pa.array(values, type=type_))


def publish(source: Any, **kwargs: Any) -> PublishFeaturesOperator:
    kwargs.setdefault("contract", CONTRACT)
    kwargs.setdefault("unique_key", "customer_id")
    return PublishFeaturesOperator(task_id="publish", table=TABLE, source=source, **kwargs)


@pytest.fixture
def published(feature_store, make_context, write_parquet) -> dict[str, Any]:
    """A good partition, published through the operator; its snapshot."""
    render_and_execute(publish(write_parquet("good", good())), make_context())
    return snapshot(feature_store, TABLE)


CASES = [
    # -- source schema changes
    pytest.param(
        lambda t: t.drop_columns(["income"]),
        {},
        ContractError,
        "missing 1 column(s): income",
        id="schema-missing-column",
    ),
    pytest.param(
        lambda t: t.append_column("bonus", pa.array([1.0] * 5)),
        {},
        ContractError,
        "unexpected 1 column(s): bonus",
        id="schema-extra-column",
    ),
    pytest.param(
        lambda t: t.rename_columns(["customer_id", "revenue", *t.column_names[2:]]),
        {},
        ContractError,
        "missing 1 column(s): income; unexpected 1 column(s): revenue",
        id="schema-renamed-column",
    ),
    pytest.param(
        lambda t: replace(t, "region", [1, 2, 3, 4, 5], pa.int64()),
        {},
        ContractError,
        "region is int64, declared string",
        id="schema-retyped-string-to-int",
    ),
    pytest.param(
        lambda t: replace(t, "income", ["10.5", "20", None, "40", "50.25"]),
        {},
        ContractError,
        "income is string, declared float64",
        id="schema-retyped-float-to-string",
    ),
    pytest.param(
        lambda t: replace(t, "signup", ["2025-01-01"] * 5),
        {},
        ContractError,
        "signup is string, declared date32",
        id="schema-date-as-string",
    ),
    pytest.param(
        lambda t: replace(t, "visits", [1, 2, 3, 4, 2**40], pa.int64()),
        {},
        ContractError,
        "values in column 'visits' (int64) that do not fit its declared type int32",
        id="schema-widened-int-overflows-declared",
    ),
    pytest.param(
        lambda t: t.append_column("ds", pa.array(["2026-01-04"] * 5)),
        {"contract": None},
        ContractError,
        "has a column named 'ds', which is the partition column",
        id="schema-reserved-ds-column",
    ),
    # -- all-null columns and nulls where the contract forbids them
    pytest.param(
        lambda t: replace(t, "customer_id", [None] * 5, pa.int64()),
        {},
        ContractError,
        "nulls in non-nullable column(s): customer_id",
        id="all-null-non-nullable",
    ),
    pytest.param(
        lambda t: replace(t, "customer_id", pa.nulls(5)),
        {},
        ContractError,
        "nulls in non-nullable column(s): customer_id",
        id="all-null-typed-null",
    ),
    pytest.param(
        lambda t: replace(t, "customer_id", [1, 2, None, 4, 5], pa.int64()),
        {},
        ContractError,
        "nulls in non-nullable column(s): customer_id",
        id="one-null-non-nullable",
    ),
    # -- timezone-naive vs aware timestamps
    pytest.param(
        lambda t: replace(t, "seen_at", [dt.datetime(2026, 1, 4)] * 5, pa.timestamp("us")),
        {},
        ContractError,
        "seen_at is timestamp[us], declared timestamp[us, tz=UTC]. Fix the query or transform, "
        "or update the declared contract. Timestamps seen_at differ only in being "
        "timezone-naive or aware",
        id="tz-naive-for-aware",
    ),
    pytest.param(
        lambda t: replace(
            t,
            "local_day",
            [dt.datetime(2026, 1, 4, tzinfo=UTC)] * 5,
            pa.timestamp("us", tz="Europe/Paris"),
        ),
        {},
        ContractError,
        "local_day is timestamp[us, tz=Europe/Paris], declared timestamp[us]",
        id="tz-aware-for-naive",
    ),
    # -- duplicate entity keys
    pytest.param(
        lambda t: replace(t, "customer_id", [1, 2, 2, 3, 3], pa.int64()),
        {},
        DuplicateKeyError,
        "has 2 duplicate value(s) of its key (customer_id): customer_id=2 (2 rows), "
        "customer_id=3 (2 rows)",
        id="duplicate-keys",
    ),
    pytest.param(
        lambda t: replace(t, "customer_id", [1, 2, 3, 4, 1], pa.int64()),
        {"batch_size": 2},
        DuplicateKeyError,
        "has 1 duplicate value(s) of its key (customer_id): customer_id=1 (2 rows)",
        id="duplicate-keys-across-batches",
    ),
    pytest.param(
        lambda t: replace(t, "region", ["north"] * 5).set_column(
            0, "customer_id", pa.array([1, 1, 2, 2, 3], pa.int64())
        ),
        {"unique_key": ["customer_id", "region"]},
        DuplicateKeyError,
        "duplicate value(s) of its key (customer_id, region): customer_id=1, region='north'",
        id="duplicate-compound-keys",
    ),
    pytest.param(
        lambda t: replace(t, "customer_id", [1, 2, None, 4, 5], pa.int64()),
        {"contract": None},
        DuplicateKeyError,
        "null values in key column(s) customer_id: a null key identifies no entity",
        id="null-key-without-contract",
    ),
    pytest.param(
        lambda t: t.drop_columns(["customer_id"]),
        {"contract": None},
        ContractError,
        "has no key column(s) customer_id",
        id="key-column-missing-without-contract",
    ),
    # -- empty input, refused
    pytest.param(
        lambda t: t.slice(0, 0),
        {"allow_empty": False},
        EmptyInputError,
        "has no rows to publish to table 'customer_features' partition 2026-01-04",
        id="empty-refused",
    ),
]


@pytest.mark.parametrize(("mutate", "kwargs", "error", "fragment"), CASES)
def test_bad_data_fails_and_leaves_the_partition_unchanged(
    feature_store,
    make_context,
    write_parquet,
    published,
    mutate: Callable[[pa.Table], pa.Table],
    kwargs: dict[str, Any],
    error: type[Exception],
    fragment: str,
):
    operator = publish(write_parquet("bad", mutate(good())), **kwargs)

    expect_error(lambda: render_and_execute(operator, make_context()), error, fragment)

    assert snapshot(feature_store, TABLE) == published


def test_duplicate_key_error_carries_the_facts(feature_store, make_context, write_parquet):
    bad = replace(good(), "customer_id", [7, 7, 7, 8, 9], pa.int64())

    error = expect_error(
        lambda: render_and_execute(publish(write_parquet("bad", bad)), make_context()),
        DuplicateKeyError,
        "customer_id=7 (3 rows)",
    )

    assert isinstance(error, ContractError)
    assert (error.key_columns, error.duplicate_count) == (["customer_id"], 1)
    assert error.examples == [{"customer_id": 7, "rows": 3}]
    assert feature_store.list_partitions(TABLE) == []


ACCEPTED = [
    pytest.param(
        lambda t: replace(t, "income", [None] * 5, pa.float64()), id="all-null-nullable-column"
    ),
    pytest.param(lambda t: replace(t, "income", pa.nulls(5)), id="all-null-typed-null-nullable"),
    pytest.param(lambda t: replace(t, "region", ["north"] * 5), id="constant-column"),
    pytest.param(
        lambda t: replace(t, "income", [float("nan"), float("inf"), float("-inf"), 1e308, -0.0]),
        id="nan-and-inf-in-a-float-feature",
    ),
    pytest.param(
        lambda t: replace(t, "region", ["x" * 5_000_000, "", "ünï©ødé", "\x00", "a\nb"]),
        id="oversized-and-odd-strings",
    ),
    pytest.param(
        lambda t: replace(t, "visits", [1, 2, 3, 4, 5], pa.int8()), id="narrower-int-widened"
    ),
    pytest.param(
        lambda t: replace(
            t,
            "seen_at",
            [dt.datetime(2026, 1, 4, 1, tzinfo=UTC)] * 5,
            pa.timestamp("ns", tz="America/New_York"),
        ),
        id="aware-timestamp-other-zone-and-unit",
    ),
]


@pytest.mark.parametrize("mutate", ACCEPTED)
def test_unusual_but_valid_data_is_published_as_given(
    feature_store, make_context, write_parquet, published, mutate
):
    data = mutate(good())

    result = render_and_execute(publish(write_parquet("odd", data)), make_context())

    stored = feature_store.read_partition(TABLE, PARTITION)
    expected = pa.Table.from_batches([CONTRACT.conform(b) for b in data.to_batches()])
    assert stored.equals(expected) or _equal_with_nan(stored, expected)
    assert result["previous_version"] == published["version"]


def _equal_with_nan(left: pa.Table, right: pa.Table) -> bool:
    def norm(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: "NaN" if v != v else v for k, v in row.items()} for row in rows]

    return left.schema == right.schema and norm(left.to_pylist()) == norm(right.to_pylist())


def test_empty_source_publishes_an_empty_partition_with_a_warning(
    feature_store, make_context, write_parquet, published
):
    empty = good().slice(0, 0)

    with capture_logs() as logs:  # operators log through structlog, not the stdlib
        result = render_and_execute(publish(write_parquet("empty", empty)), make_context())

    assert result["rows"] == 0
    assert result["previous_version"] == published["version"]
    stored = feature_store.read_partition(TABLE, PARTITION)
    assert stored.num_rows == 0
    assert stored.schema == CONTRACT.to_arrow_schema()
    assert warnings(logs) == [
        "Publishing an EMPTY partition 2026-01-04 of table 'customer_features': the source has "
        "no rows (allow_empty=True). Readers of this partition will get no rows."
    ]


def warnings(logs: list[dict[str, Any]]) -> list[str]:
    return [entry["event"] for entry in logs if entry["log_level"] == "warning"]


def test_engine_publish_with_the_key_check_aborts_and_keeps_the_partition(feature_store, published):
    from airflow_mlops.contract import check_unique_keys

    bad = replace(good(), "customer_id", [5, 4, 3, 2, 5], pa.int64())

    expect_error(
        lambda: feature_store.publish_partition(
            TABLE,
            PARTITION,
            check_unique_keys(bad.to_batches(max_chunksize=2), ["customer_id"]),
            contract=CONTRACT,
        ),
        DuplicateKeyError,
        "The data has 1 duplicate value(s) of its key (customer_id): customer_id=5 (2 rows)",
    )
    assert snapshot(feature_store, TABLE) == published
