"""Schema evolution across days in a Delta feature table (store.delta_schema), read back by
every documented reader: this package, pyarrow's dataset through deltalake, DuckDB over that
dataset, Polars' scan_delta and pandas."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.fs as pafs
import pytest
from deltalake import DeltaTable

from airflow_mlops.exceptions import ContractError
from airflow_mlops.store.delta import DeltaFeatureTables
from airflow_mlops.store.delta_schema import evolve, widens
from airflow_mlops.store.layout import StoreLayout

if TYPE_CHECKING:
    from pathlib import Path

DAY1, DAY2 = "2026-01-05", "2026-01-06"


@pytest.fixture
def tables(tmp_path: Path) -> DeltaFeatureTables:
    root = tmp_path / "store"
    root.mkdir()
    return DeltaFeatureTables(StoreLayout(pafs.LocalFileSystem(), str(root), True))


def batch(**columns: pa.Array) -> list[pa.RecordBatch]:
    return [pa.record_batch(columns)]


def every_reader(tables: DeltaFeatureTables) -> dict[str, dict[str, list[Any]]]:
    """Both days, sorted by (ds, k), as each reader returns them (types normalised by
    to_pylist)."""
    uri = tables.uri("features")
    dataset = tables.dataset("features")
    tree = pafs.SubTreeFileSystem(uri, pafs.LocalFileSystem())
    ours = pa.concat_tables(
        pa.Table.from_batches(list(tables.read_batches("features", day))).append_column(
            "ds", pa.array([dt.date.fromisoformat(day)] * 2)
        )
        for day in (DAY1, DAY2)
    )
    found = {
        "airflow_mlops": ours,
        "pyarrow": dataset.to_table(),
        "duckdb": duckdb.sql("SELECT * FROM dataset").to_arrow_table(),
        "polars": pl.scan_delta(uri).collect().to_arrow(),
        "pandas": pa.Table.from_pandas(
            DeltaTable(uri).to_pyarrow_dataset(filesystem=tree).to_table().to_pandas(),
            preserve_index=False,
        ),
    }
    return {
        name: table.sort_by([("ds", "ascending"), ("k", "ascending")]).to_pydict()
        for name, table in found.items()
    }


def assert_every_reader_sees(tables: DeltaFeatureTables, expected: dict[str, list[Any]]) -> None:
    for reader, columns in every_reader(tables).items():
        assert {name: columns[name] for name in expected} == expected, reader
        assert set(columns) == set(expected), reader


def days(values1: list[Any], values2: list[Any]) -> dict[str, list[Any]]:
    dates = [dt.date.fromisoformat(DAY1)] * 2 + [dt.date.fromisoformat(DAY2)] * 2
    return {"k": [0, 1, 0, 1], "v": values1 + values2, "ds": dates}


def test_an_added_column_reads_as_null_on_earlier_days(tables: DeltaFeatureTables) -> None:
    tables.publish("features", DAY1, batch(k=pa.array([0, 1]), v=pa.array([1.0, 2.0])))
    added = pa.array(["a", "b"])
    tables.publish("features", DAY2, batch(k=pa.array([0, 1]), v=pa.array([3.0, 4.0]), new=added))

    expected = {**days([1.0, 2.0], [3.0, 4.0]), "new": [None, None, "a", "b"]}
    assert_every_reader_sees(tables, expected)


@pytest.mark.parametrize(
    ("old", "new", "values"),
    [
        pytest.param(pa.int32(), pa.int64(), [1, 2, 3, 4], id="int32-to-int64"),
        pytest.param(pa.float32(), pa.float64(), [0.5, 1.5, 2.5, 3.5], id="float32-to-float64"),
        pytest.param(pa.int64(), pa.int32(), [1, 2, 3, 4], id="int32-into-int64-table"),
        pytest.param(
            pa.dictionary(pa.int32(), pa.string()), pa.string(), ["a", "b", "c", "d"], id="dict"
        ),
    ],
)
def test_safe_type_changes_read_as_one_column_every_day(
    tables: DeltaFeatureTables, old: pa.DataType, new: pa.DataType, values: list[Any]
) -> None:
    tables.publish("features", DAY1, batch(k=pa.array([0, 1]), v=pa.array(values[:2]).cast(old)))
    tables.publish("features", DAY2, batch(k=pa.array([0, 1]), v=pa.array(values[2:]).cast(new)))

    assert_every_reader_sees(tables, days(values[:2], values[2:]))
    field = tables.dataset("features").schema.field("v")
    assert field.type == (new if widens(old, new) else old)


def test_a_type_change_no_reader_can_unify_is_refused(tables: DeltaFeatureTables) -> None:
    tables.publish("features", DAY1, batch(k=pa.array([0, 1]), v=pa.array([1.0, 2.0])))
    before = DeltaTable(tables.uri("features")).version()

    with pytest.raises(ContractError) as raised:
        tables.publish("features", DAY2, batch(k=pa.array([0, 1]), v=pa.array(["x", "y"])))

    assert str(raised.value).startswith(
        "Column 'v' of table 'features' is double in the table and string in this publish: "
        "no reader can read both as one column."
    )
    assert raised.value.mistyped_columns == {"v": ("double", "string")}
    assert DeltaTable(tables.uri("features")).version() == before
    assert tables.partitions("features") == [DAY1]


def test_a_dropped_nullable_column_reads_as_null_that_day(tables: DeltaFeatureTables) -> None:
    tables.publish("features", DAY1, batch(k=pa.array([0, 1]), v=pa.array([1.0, 2.0])))
    tables.publish("features", DAY2, batch(k=pa.array([0, 1])))

    assert_every_reader_sees(tables, days([1.0, 2.0], [None, None]))


def test_a_dropped_non_nullable_column_is_refused() -> None:
    table = pa.schema([pa.field("k", pa.int64()), pa.field("v", pa.float64(), nullable=False)])

    with pytest.raises(ContractError, match=r"Column 'v' \(double, non-nullable\) of table 't'"):
        evolve("t", table, pa.schema([pa.field("k", pa.int64())]))


def test_widening_rules() -> None:
    assert widens(pa.int8(), pa.int64())
    assert widens(pa.uint16(), pa.int32())
    assert not widens(pa.uint32(), pa.int32())
    assert not widens(pa.int64(), pa.uint64())
    assert not widens(pa.int64(), pa.float64())  # not every int64 is a double
    assert widens(pa.string(), pa.large_string())
    assert not widens(pa.large_string(), pa.string())
