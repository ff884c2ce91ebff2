from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from airflow_mlops.exceptions import ArgumentError, TransformError
from airflow_mlops.transform import map_batches, sql_transform

LOCAL = pafs.LocalFileSystem()


@pytest.fixture
def staged(tmp_path):
    customers = tmp_path / "customers.parquet"
    tx = tmp_path / "tx.parquet"
    pq.write_table(pa.table({"customer_id": [1, 2, 3], "income": [10.0, 20.0, 0.0]}), customers)
    pq.write_table(
        pa.table(
            {
                "customer_id": [1, 1, 2, 3],
                "ts": [
                    "2026-01-01 10:00:00",
                    "2026-01-05 10:00:00",
                    "2026-01-05 23:59:59",
                    "2026-01-06 00:00:00",
                ],
                "amount": [1.0, 2.0, 4.0, 8.0],
            }
        ),
        tx,
    )
    return {"customers": str(customers), "transactions": str(tx)}


SQL = """
SELECT c.customer_id, count(t.ts) AS n, coalesce(sum(t.amount), 0) AS amount
FROM customers c LEFT JOIN transactions t
  ON t.customer_id = c.customer_id AND CAST(t.ts AS TIMESTAMP) < CAST($day AS DATE) + 1
GROUP BY ALL ORDER BY c.customer_id
"""


def test_sql_transform_joins_and_binds_parameters(staged):
    with sql_transform(SQL, staged, filesystem=LOCAL, parameters={"day": "2026-01-05"}) as reader:
        result = reader.read_all()
    assert result.to_pylist() == [
        {"customer_id": 1, "n": 2, "amount": 3.0},
        {"customer_id": 2, "n": 1, "amount": 4.0},
        {"customer_id": 3, "n": 0, "amount": 0.0},
    ]


def test_sql_transform_streams_in_batches(staged):
    sql = "SELECT range AS i FROM range(250000)"
    with sql_transform(sql, staged, filesystem=LOCAL, batch_size=100_000) as reader:
        sizes = [b.num_rows for b in reader]
    assert sum(sizes) == 250_000
    assert max(sizes) <= 100_000


def test_sql_errors_name_inputs_and_say_what_to_do(staged):
    with (
        pytest.raises(TransformError, match=re.escape("Inputs: customers, transactions")),
        sql_transform("SELECT nope FROM customers", staged, filesystem=LOCAL),
    ):
        pass


def test_input_names_must_be_identifiers(staged):
    with (
        pytest.raises(ArgumentError, match="SQL identifiers"),
        sql_transform("SELECT 1", {"a-b": staged["customers"]}, filesystem=LOCAL),
    ):
        pass


def test_map_batches_in_pandas_keeps_schema_for_empty_input():
    schema = pa.schema([("debt", pa.float64()), ("income", pa.float64())])
    out_schema, batches = map_batches(
        lambda df: df.assign(ratio=df.debt / df.income),
        iter([]),
        input_schema=schema,
        batch_format="pandas",
    )
    assert out_schema.names == ["debt", "income", "ratio"]
    assert list(batches) == []


def test_map_batches_wraps_function_errors():
    schema = pa.schema([("x", pa.int64())])

    def explode(batch):
        if batch.num_rows:
            raise KeyError("boom")
        return batch

    _, batches = map_batches(explode, iter([pa.record_batch({"x": [1]})]), input_schema=schema)
    with pytest.raises(TransformError, match="explode raised KeyError"):
        list(batches)


def test_map_batches_lets_io_errors_of_the_function_through_to_be_retried():
    schema = pa.schema([("x", pa.int64())])

    def lookup(batch):
        if batch.num_rows:
            raise TimeoutError("the enrichment service did not answer")
        return batch

    _, batches = map_batches(lookup, iter([pa.record_batch({"x": [1]})]), input_schema=schema)
    with pytest.raises(TimeoutError, match="did not answer"):
        list(batches)


def test_map_batches_refuses_unknown_format():
    with pytest.raises(ArgumentError, match="'arrow' or 'pandas'"):
        map_batches(lambda b: b, iter([]), input_schema=pa.schema([]), batch_format="polars")
