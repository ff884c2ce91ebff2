"""Property-based tests: the store's Parquet round trip, and the feature contract's checks.

Derandomized (hypothesis picks the examples from the test's code, not the clock), so CI
sees the same examples on every run; ``max_examples`` keeps the module under ~10 s.
"""

from __future__ import annotations

import shutil
import tempfile
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airflow_mlops.contract import FeatureContract, FeatureField, parse_arrow_type
from airflow_mlops.exceptions import ContractError
from airflow_mlops.io.parquet import stored_schema
from airflow_mlops.store.feature_store import FeatureStore

ROUND_TRIP_EXAMPLES = 80
CONTRACT_EXAMPLES = 200
FUZZ = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

INT_RANGES = {
    pa.int8(): (-(2**7), 2**7 - 1),
    pa.int16(): (-(2**15), 2**15 - 1),
    pa.int32(): (-(2**31), 2**31 - 1),
    pa.int64(): (-(2**63), 2**63 - 1),
    pa.uint8(): (0, 2**8 - 1),
    pa.uint16(): (0, 2**16 - 1),
    pa.uint32(): (0, 2**32 - 1),
    pa.uint64(): (0, 2**64 - 1),
}
#: Parquet has no seconds unit: timestamp[s] is stored as milliseconds, so seconds beyond
#: ±2**63/1000 cannot be written at all (pyarrow raises); the fuzzer stays inside that.
TIMESTAMP_LIMIT = {"s": 2**63 // 1000 - 1, "ms": 2**63 - 1, "us": 2**63 - 1, "ns": 2**63 - 1}
DECIMAL = pa.decimal128(12, 3)

names = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True).filter(lambda n: n != "ds")


def values_of(type_: pa.DataType, *, nullable: bool = True) -> st.SearchStrategy[Any]:
    """Python values of ``type_`` (extremes included), with nulls when ``nullable``."""
    if type_ in INT_RANGES:
        low, high = INT_RANGES[type_]
        base: st.SearchStrategy[Any] = st.integers(low, high)
    elif type_ == pa.float32():
        base = st.floats(width=32)
    elif type_ == pa.float64():
        base = st.floats()
    elif type_ in (pa.string(), pa.large_string()):
        base = st.text(max_size=20)
    elif type_ == pa.binary():
        base = st.binary(max_size=20)
    elif type_ == pa.bool_():
        base = st.booleans()
    elif type_ == pa.date32():
        base = st.integers(-(2**31), 2**31 - 1)
    elif pa.types.is_timestamp(type_):
        limit = TIMESTAMP_LIMIT[type_.unit]
        base = st.integers(-limit, limit)
    elif type_ == DECIMAL:
        base = st.decimals(min_value=-(10**9) + 1, max_value=10**9 - 1, places=3, allow_nan=False)
    elif pa.types.is_list(type_):
        base = st.lists(values_of(type_.value_type), max_size=4)
    else:
        raise AssertionError(type_)
    return st.none() | base if nullable else base


def to_array(values: list[Any], type_: pa.DataType) -> pa.Array:
    """``values`` as an Arrow array of ``type_`` (dates and timestamps given as integers)."""
    if type_ == pa.date32():
        return pa.array(values, pa.int32()).cast(type_)
    if pa.types.is_timestamp(type_):
        return pa.array(values, pa.int64()).cast(type_)
    return pa.array(values, type_)


ROUND_TRIP_TYPES = [
    *INT_RANGES,
    pa.float32(),
    pa.float64(),
    pa.string(),
    pa.large_string(),
    pa.binary(),
    pa.bool_(),
    pa.date32(),
    *(pa.timestamp(unit) for unit in ("s", "ms", "us", "ns")),
    pa.timestamp("us", tz="UTC"),
    pa.timestamp("ns", tz="Asia/Kolkata"),
    DECIMAL,
    pa.list_(pa.int64()),
    pa.list_(pa.string()),
]


@st.composite
def tables(draw: st.DrawFn) -> pa.Table:
    columns = draw(st.lists(names, min_size=1, max_size=6, unique=True))
    rows = draw(st.integers(0, 25))
    arrays = {}
    for name in columns:
        type_ = draw(st.sampled_from(ROUND_TRIP_TYPES))
        arrays[name] = to_array(
            draw(st.lists(values_of(type_), min_size=rows, max_size=rows)), type_
        )
    return pa.table(arrays)


def assert_same_values(left: pa.ChunkedArray, right: pa.ChunkedArray) -> None:
    """Equal values and nulls; NaN equals NaN (same position), -0.0 is kept."""
    left, right = left.combine_chunks(), right.combine_chunks()
    assert left.type == right.type
    if pa.types.is_floating(left.type):
        assert left.is_null().equals(right.is_null())
        a = left.fill_null(0).to_numpy(zero_copy_only=False)
        b = right.fill_null(0).to_numpy(zero_copy_only=False)
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(np.signbit(a), np.signbit(b))
    else:
        assert left.equals(right), (left, right)


@settings(FUZZ, max_examples=ROUND_TRIP_EXAMPLES)
@given(table=tables(), max_rows_per_file=st.integers(1, 30))
def test_publish_then_read_returns_the_table(table: pa.Table, max_rows_per_file: int):
    root = tempfile.mkdtemp(prefix="badin_fuzz_")
    try:
        store = FeatureStore(root)
        manifest = store.publish_partition(
            "fuzz",
            "2026-01-04",
            table.to_batches(max_chunksize=7),
            schema=table.schema,
            max_rows_per_file=max_rows_per_file,
        )
        back = store.read_partition("fuzz", "2026-01-04")
        store.verify("fuzz", "2026-01-04")
    finally:
        shutil.rmtree(root)

    # Parquet has no seconds unit: timestamp[s] is stored, recorded and read as [ms]
    expected = table.cast(stored_schema(table.schema))
    assert manifest["row_count"] == table.num_rows == back.num_rows
    assert back.schema.equals(expected.schema, check_metadata=False)
    assert [f["type"] for f in manifest["schema"]] == [str(t) for t in expected.schema.types]
    for name in table.column_names:
        assert_same_values(expected.column(name), back.column(name))


# ---------------------------------------------------------------- the feature contract

CONTRACT_SPECS = [
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float32", "float64", "string", "large_string", "binary", "date32",
    "timestamp[ms]", "timestamp[us]", "timestamp[us, tz=UTC]", "timestamp[ns, tz=UTC]",
]  # fmt: skip


@st.composite
def contracts_and_tables(draw: st.DrawFn) -> tuple[FeatureContract, pa.Table]:
    columns = draw(st.lists(names, min_size=1, max_size=6, unique=True))
    fields = tuple(
        FeatureField(name, draw(st.sampled_from(CONTRACT_SPECS)), draw(st.booleans()))
        for name in columns
    )
    contract = FeatureContract(fields)
    rows = draw(st.integers(0, 12))
    arrays = {}
    for field in fields:
        type_ = parse_arrow_type(field.type)
        values = st.lists(values_of(type_, nullable=field.nullable), min_size=rows, max_size=rows)
        arrays[field.name] = to_array(draw(values), type_)
    return contract, pa.table(arrays)


def _incompatible(spec: str) -> pa.DataType:
    """A type the contract never casts to ``spec``."""
    return pa.int64() if spec in ("string", "large_string") else pa.string()


@settings(FUZZ, max_examples=CONTRACT_EXAMPLES)
@given(case=contracts_and_tables())
def test_a_table_matching_its_contract_passes_unchanged(case):
    contract, table = case

    for batch in table.to_batches() or [pa.RecordBatch.from_pylist([], schema=table.schema)]:
        conformed = contract.conform(batch)
        assert conformed.schema == contract.to_arrow_schema()
        for after, before in zip(conformed.columns, batch.columns, strict=True):
            assert_same_values(pa.chunked_array([after]), pa.chunked_array([before]))


@settings(FUZZ, max_examples=CONTRACT_EXAMPLES)
@given(case=contracts_and_tables(), data=st.data())
def test_any_single_mutation_fails_naming_the_column(case, data):
    contract, table = case
    nullable_targets = [f.name for f in contract.fields if not f.nullable and table.num_rows]
    kinds = ["drop", "add", "retype", *(["null"] if nullable_targets else [])]
    kind = data.draw(st.sampled_from(kinds), label="mutation")
    if kind == "add":
        name = data.draw(names.filter(lambda n: n not in contract.names), label="new column")
        table = table.append_column(name, pa.array([1] * table.num_rows, pa.int64()))
        attribute = "unexpected_columns"
    else:
        pool = nullable_targets if kind == "null" else contract.names
        name = data.draw(st.sampled_from(pool), label="column")
        index = table.schema.get_field_index(name)
        if kind == "drop":
            table = table.remove_column(index)
            attribute = "missing_columns"
        elif kind == "retype":
            spec = next(f.type for f in contract.fields if f.name == name)
            new_type = _incompatible(spec)
            fill = "x" if new_type == pa.string() else 1
            table = table.set_column(index, name, pa.array([fill] * table.num_rows, new_type))
            attribute = "mistyped_columns"
        else:
            row = data.draw(st.integers(0, table.num_rows - 1), label="row")
            column = table.column(name)
            hole = pa.array([i == row for i in range(table.num_rows)])
            nulled = pc.if_else(hole, pa.scalar(None, column.type), column)
            table = table.set_column(index, name, nulled)
            attribute = "null_columns"
    batch = table.combine_chunks().to_batches()
    batch = batch[0] if batch else pa.RecordBatch.from_pylist([], schema=table.schema)

    with pytest.raises(ContractError) as excinfo:
        contract.conform(batch)

    assert list(getattr(excinfo.value, attribute)) == [name]
    assert name in str(excinfo.value)
