"""SqlTransformOperator and PythonTransformOperator: staged Parquet in, staged Parquet out."""

from __future__ import annotations

import hashlib
import inspect
import re

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_mlops.exceptions import ArgumentError
from airflow_mlops.operators import PythonTransformOperator, SqlTransformOperator
from tests.operators.support import DAG_ID, render_and_execute

CUSTOMERS = pa.table({"customer_id": [1, 2, 3], "income": [100.0, 200.0, 50.0]})
TRANSACTIONS = pa.table(
    {
        "customer_id": [1, 1, 2, 3],
        "day": ["2026-01-03", "2026-01-04", "2026-01-04", "2026-01-05"],
        "amount": [1.0, 2.0, 4.0, 8.0],
    }
)
SPEND_SQL = """
SELECT c.customer_id, coalesce(sum(t.amount), 0) AS spend
FROM customers c LEFT JOIN transactions t
  ON t.customer_id = c.customer_id AND t.day <= $day
GROUP BY ALL ORDER BY c.customer_id
"""
EXTRACT_LINEAGE = {
    "sources": {"transactions": {"source": "sqlite w.db", "query_sha256": "q1", "rows": 4}}
}


@pytest.fixture
def staged(write_parquet):
    """The inputs as a downstream task sees them: a plain path and an upstream XCom."""
    return {
        "customers": write_parquet("customers", CUSTOMERS),
        "transactions": {
            "path": write_parquet("transactions", TRANSACTIONS),
            "rows": TRANSACTIONS.num_rows,
            "sha256": "not-checked",
            "partition": "2026-01-04",
            "lineage": EXTRACT_LINEAGE,
        },
    }


def sql_transform(**kwargs) -> SqlTransformOperator:
    kwargs.setdefault("task_id", "customer_spend")
    kwargs.setdefault("sql", SPEND_SQL)
    kwargs.setdefault("parameters", {"day": "{{ partition }}"})
    return SqlTransformOperator(**kwargs)


def python_transform(**kwargs) -> PythonTransformOperator:
    kwargs.setdefault("task_id", "ratios")
    return PythonTransformOperator(**kwargs)


# -- SqlTransformOperator ---------------------------------------------------------------


def test_sql_transform_joins_an_xcom_input_and_a_path_input(feature_store, make_context, staged):
    operator = sql_transform(inputs=staged)

    result = render_and_execute(operator, make_context())

    assert operator.parameters == {"day": "2026-01-04"}
    assert result["path"].startswith(f"{feature_store.root}/_staging/{DAG_ID}/")
    assert pq.read_table(result["path"]).to_pylist() == [
        {"customer_id": 1, "spend": 3.0},
        {"customer_id": 2, "spend": 4.0},
        {"customer_id": 3, "spend": 0.0},
    ]
    assert result["rows"] == 3
    assert result["partition"] == "2026-01-04"


def test_sql_transform_merges_upstream_lineage(feature_store, make_context, staged):
    upstream = dict(staged["transactions"])
    upstream["lineage"] = {**EXTRACT_LINEAGE, "transforms": {"clean_tx": "c0ffee"}}

    operator = sql_transform(inputs={**staged, "transactions": upstream})

    result = render_and_execute(operator, make_context())

    assert result["lineage"] == {
        "sources": EXTRACT_LINEAGE["sources"],
        "transforms": {
            "clean_tx": "c0ffee",
            # the code hash is of the rendered query
            "customer_spend": hashlib.sha256(operator.sql.encode()).hexdigest(),
        },
    }


def test_sql_transform_renders_sql_and_name(feature_store, make_context, staged):
    operator = sql_transform(
        sql="SELECT count(*) AS n FROM transactions WHERE day = '{{ partition }}'",
        parameters=None,
        inputs={"transactions": staged["transactions"]},
        name="tx_count_{{ partition }}",
    )

    result = render_and_execute(operator, make_context(params={"partition": "2026-01-05"}))

    assert result["path"].endswith("/tx_count_2026-01-05.parquet")
    assert pq.read_table(result["path"]).to_pylist() == [{"n": 1}]


def test_sql_transform_with_empty_result_keeps_the_schema(feature_store, make_context, staged):
    operator = sql_transform(
        sql="SELECT customer_id, income FROM customers WHERE income < 0",
        parameters=None,
        inputs={"customers": staged["customers"]},
    )

    result = render_and_execute(operator, make_context())

    table = pq.read_table(result["path"])
    assert result["rows"] == table.num_rows == 0
    assert table.schema == pa.schema([("customer_id", pa.int64()), ("income", pa.float64())])


def test_sql_transform_with_bad_sql_fails_without_retry(feature_store, make_context, staged):
    operator = sql_transform(
        sql="SELECT no_such_column FROM customers",
        parameters=None,
        inputs={"customers": staged["customers"]},
    )

    with pytest.raises(
        AirflowFailException, match=re.escape("TransformError: The SQL transform failed")
    ) as excinfo:
        render_and_execute(operator, make_context())

    assert "SELECT no_such_column FROM customers" in str(excinfo.value)


@pytest.mark.parametrize(
    "ref",
    [
        pytest.param(None, id="none"),
        pytest.param("None", id="rendered-none"),
        pytest.param({"rows": 0}, id="xcom-without-path"),
    ],
)
def test_sql_transform_refuses_an_input_that_is_no_staged_output(feature_store, make_context, ref):
    operator = sql_transform(inputs={"transactions": ref})

    with pytest.raises(
        AirflowFailException,
        match=re.escape(
            "The \"inputs['transactions']\" parameter of SqlTransformOperator must be an "
            "upstream step's output"
        ),
    ):
        render_and_execute(operator, make_context())


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        pytest.param(
            {},
            "The 'inputs' parameter of SqlTransformOperator must be a non-empty mapping of "
            "view name to upstream output. Got {} instead.",
            id="empty",
        ),
        pytest.param(
            ["/s/a.parquet"],
            "The 'inputs' parameter of SqlTransformOperator must be a non-empty mapping of "
            "view name to upstream output. Got ['/s/a.parquet'] instead.",
            id="list",
        ),
        pytest.param(
            {"ok": "/s/a.parquet", "bad-name": "/s/b.parquet", "1st": "/s/c.parquet"},
            "SqlTransformOperator input names must be SQL identifiers. Got ['bad-name', '1st'].",
            id="not-identifiers",
        ),
    ],
)
def test_sql_transform_refuses_bad_inputs_mapping(inputs, message):
    with pytest.raises(ArgumentError, match=re.escape(message)):
        sql_transform(inputs=inputs)


def test_sql_transform_refuses_empty_sql_at_init():
    with pytest.raises(
        ArgumentError, match=re.escape("The 'sql' parameter of SqlTransformOperator")
    ):
        sql_transform(sql="", inputs={"t": "/s/t.parquet"})


# -- PythonTransformOperator ------------------------------------------------------------


def add_spend_ratio(batch: pa.RecordBatch) -> pa.RecordBatch:
    ratio = pc.divide(batch.column("amount"), pa.scalar(10.0))
    return batch.append_column("ratio", ratio)


def double_amount(df):
    return df.assign(amount=df["amount"] * 2)


def test_python_transform_applies_an_arrow_function(feature_store, make_context, staged):
    operator = python_transform(
        python_callable=add_spend_ratio, input=staged["transactions"], batch_size=3
    )

    result = render_and_execute(operator, make_context())

    table = pq.read_table(result["path"])
    assert result["rows"] == table.num_rows == 4
    assert table.column("ratio").to_pylist() == [0.1, 0.2, 0.4, 0.8]
    assert result["path"].endswith("/ratios.parquet")


def test_python_transform_applies_a_pandas_function(feature_store, make_context, write_parquet):
    numeric = TRANSACTIONS.drop_columns(["day"])
    operator = python_transform(
        python_callable=double_amount,
        input=write_parquet("numeric", numeric),
        batch_format="pandas",
    )

    result = render_and_execute(operator, make_context())

    assert pq.read_table(result["path"]).column("amount").to_pylist() == [2.0, 4.0, 8.0, 16.0]


def test_python_transform_pandas_keeps_string_columns(feature_store, make_context, staged):
    operator = python_transform(
        python_callable=double_amount, input=staged["transactions"], batch_format="pandas"
    )

    result = render_and_execute(operator, make_context())

    assert (
        pq.read_table(result["path"]).column("day").to_pylist()
        == TRANSACTIONS.column("day").to_pylist()
    )


def test_python_transform_accepts_a_table_result(feature_store, make_context, staged):
    operator = python_transform(
        python_callable=lambda batch: pa.Table.from_batches([batch]).select(["customer_id"]),
        input=staged["customers"],
    )

    result = render_and_execute(operator, make_context())

    assert pq.read_table(result["path"]).column_names == ["customer_id"]


def test_python_transform_merges_upstream_lineage(feature_store, make_context, staged):
    operator = python_transform(python_callable=add_spend_ratio, input=staged["transactions"])

    result = render_and_execute(operator, make_context())

    code_hash = hashlib.sha256(inspect.getsource(add_spend_ratio).encode()).hexdigest()
    assert result["lineage"] == {
        "sources": EXTRACT_LINEAGE["sources"],
        "transforms": {"ratios": code_hash},
    }


@pytest.mark.parametrize(
    ("function", "message"),
    [
        pytest.param(
            lambda batch: batch.to_pylist(),
            "TransformError: A transform function must return a pyarrow RecordBatch or Table "
            "or a pandas DataFrame. Got list instead.",
            id="wrong-return-type",
        ),
        pytest.param(
            lambda batch: None,
            "Got NoneType instead.",
            id="returns-none",
        ),
        pytest.param(
            lambda batch: batch.column("no_such_column"),
            "TransformError: The transform function",
            id="raises",
        ),
    ],
)
def test_python_transform_function_errors_fail_without_retry(
    feature_store, make_context, staged, function, message
):
    operator = python_transform(python_callable=function, input=staged["transactions"])

    with pytest.raises(AirflowFailException, match=re.escape(message)):
        render_and_execute(operator, make_context())


def test_python_transform_refuses_an_input_that_is_no_staged_output(feature_store, make_context):
    operator = python_transform(python_callable=add_spend_ratio, input=None)

    with pytest.raises(
        AirflowFailException,
        match=re.escape(
            "The 'input' parameter of PythonTransformOperator must be an upstream step's output"
        ),
    ):
        render_and_execute(operator, make_context())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(
            {"python_callable": "add_spend_ratio"},
            "The 'python_callable' parameter of PythonTransformOperator must be callable. "
            "Got 'add_spend_ratio' instead.",
            id="not-callable",
        ),
        pytest.param(
            {"batch_format": "polars"},
            "The 'batch_format' parameter of PythonTransformOperator must be 'arrow' or "
            "'pandas'. Got 'polars' instead.",
            id="unknown-batch-format",
        ),
        pytest.param(
            {"batch_size": 0},
            "The 'batch_size' parameter of PythonTransformOperator must be an int >= 1. "
            "Got 0 instead.",
            id="zero-batch",
        ),
    ],
)
def test_python_transform_refuses_bad_arguments(kwargs, message):
    kwargs = {"python_callable": add_spend_ratio, "input": "/s/t.parquet", **kwargs}

    with pytest.raises(ArgumentError, match=re.escape(message)):
        python_transform(**kwargs)


def test_sql_transform_refuses_zero_batch_size():
    with pytest.raises(
        ArgumentError,
        match=re.escape(
            "The 'batch_size' parameter of SqlTransformOperator must be an int >= 1. Got 0 instead."
        ),
    ):
        sql_transform(inputs={"t": "/s/t.parquet"}, batch_size=0)
