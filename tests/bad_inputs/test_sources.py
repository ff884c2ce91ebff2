"""Bad SQL, bad parameters, unreachable databases, empty results and injection attempts.

The extract runs through ``SqlExtractOperator.execute`` on the tiny SQLite warehouse (and
PostgreSQL where marked); a good partition is published first from the same warehouse and
checked unchanged after every failure.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq
import pytest
from structlog.testing import capture_logs

from airflow_mlops.contract import FeatureContract
from airflow_mlops.demo.environment import connection_json
from airflow_mlops.exceptions import (
    ContractError,
    EmptyInputError,
    SourceConfigurationError,
    SourceConnectionError,
    SourceQueryError,
    TransformError,
)
from airflow_mlops.operators import (
    PublishFeaturesOperator,
    SqlExtractOperator,
    SqlTransformOperator,
)
from tests.bad_inputs.support import PARTITION, expect_error, snapshot
from tests.operators.support import WAREHOUSE_CONN_ID, render_and_execute

if TYPE_CHECKING:
    from pathlib import Path

TABLE = "customers"
CONTRACT = FeatureContract.from_dict({"customer_id": ("int64", False), "name": "string"})
INJECTION = "x' OR '1'='1'; DROP TABLE customers; --"
QUOTED = "o'brien\"; DELETE FROM customers; --"


def extract(**kwargs: Any) -> SqlExtractOperator:
    kwargs.setdefault("task_id", "extract")
    kwargs.setdefault("conn_id", WAREHOUSE_CONN_ID)
    kwargs.setdefault("sql", "SELECT customer_id, name FROM customers")
    return SqlExtractOperator(**kwargs)


def publish(source: Any, **kwargs: Any) -> PublishFeaturesOperator:
    kwargs.setdefault("contract", CONTRACT)
    return PublishFeaturesOperator(
        task_id="publish", table=TABLE, source=source, unique_key="customer_id", **kwargs
    )


def pipeline(make_context, **extract_kwargs: Any) -> dict[str, Any]:
    staged = render_and_execute(extract(**extract_kwargs), make_context())
    return render_and_execute(publish(staged), make_context())


@pytest.fixture
def published(warehouse, feature_store, make_context) -> dict[str, Any]:
    pipeline(make_context)
    return snapshot(feature_store, TABLE)


def missing_sqlite(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    missing = tmp_path / "no_such_dir" / "warehouse.db"
    monkeypatch.setenv("AIRFLOW_CONN_SQLITE_DOWN", connection_json("sqlite", host=str(missing)))
    return "sqlite_down"


def unreachable_postgres(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    monkeypatch.setenv(
        "AIRFLOW_CONN_PG_DOWN",
        connection_json("postgres", host="127.0.0.1", port=1, login="reader", schema="wh"),
    )
    return "pg_down"


CASES = [
    pytest.param(
        {"sql": "SELEC customer_id FROM customers"},
        SourceQueryError,
        'near "SELEC": syntax error',
        id="bad-sql-syntax",
    ),
    pytest.param(
        {"sql": "SELECT * FROM no_such_table"},
        SourceQueryError,
        "no such table: no_such_table). Fix the query or its parameters. Query: SELECT",
        id="bad-sql-missing-table",
    ),
    pytest.param(
        {"sql": "SELECT customer_id, name FROM customers WHERE name = :name"},
        SourceQueryError,
        "Incorrect number of bindings supplied. The current statement uses 1, and there are 0",
        id="bad-parameters-none",
    ),
    pytest.param(
        {
            "sql": "SELECT customer_id, name FROM customers WHERE name = :name",
            "parameters": {"nmae": "alice"},
        },
        SourceQueryError,
        "You did not supply a value for binding parameter :name",
        id="bad-parameter-misspelt",
    ),
    pytest.param(
        {
            "sql": "SELECT customer_id, name FROM customers WHERE name = :name",
            "parameters": {"name": ["alice", "bob"]},
        },
        SourceQueryError,
        "type 'list' is not supported",
        id="bad-parameter-type",
    ),
    pytest.param(
        {"sql": "SELECT customer_id, name FROM customers; DROP TABLE customers"},
        SourceQueryError,
        "You can only execute one statement at a time",
        id="injection-second-statement-refused",
    ),
    pytest.param(
        {"sql": "SELECT customer_id, name FROM customers WHERE 0", "allow_empty": False},
        EmptyInputError,
        "the input was empty. Check the query's filters and the partition, or allow empty",
        id="empty-extract-refused",
    ),
    pytest.param(
        {"conn_id": missing_sqlite},
        SourceConfigurationError,
        "does not exist. Point the connection's 'host' at an existing database file",
        id="missing-sqlite-file",
    ),
    pytest.param(
        {"conn_id": unreachable_postgres},
        SourceConnectionError,
        "127.0.0.1:1/wh",
        id="unreachable-postgres",
    ),
]


@pytest.mark.parametrize(("kwargs", "error", "fragment"), CASES)
def test_a_bad_extract_fails_with_the_right_error_and_publishes_nothing(
    warehouse,
    feature_store,
    make_context,
    published,
    monkeypatch,
    tmp_path,
    kwargs: dict[str, Any],
    error: type[Exception],
    fragment: str,
):
    if callable(kwargs.get("conn_id")):
        kwargs = {**kwargs, "conn_id": kwargs["conn_id"](monkeypatch, tmp_path)}

    expect_error(
        lambda: pipeline(make_context, **kwargs),
        error,
        fragment,
        retryable=error is SourceConnectionError,
    )

    assert snapshot(feature_store, TABLE) == published
    assert sqlite_rows(warehouse, "SELECT count(*) FROM customers") == 3


def sqlite_rows(path: Path, sql: str) -> int:
    with sqlite3.connect(path) as con:
        count = con.execute(sql).fetchone()[0]
    con.close()
    return int(count)


def test_a_renamed_source_column_fails_the_publish_naming_it(
    warehouse, feature_store, make_context, published
):
    expect_error(
        lambda: pipeline(make_context, sql="SELECT customer_id AS id, name FROM customers"),
        ContractError,
        "missing 1 column(s): customer_id; unexpected 1 column(s): id",
    )

    assert snapshot(feature_store, TABLE) == published


@pytest.mark.parametrize(
    ("value", "rows"),
    [
        pytest.param(INJECTION, 0, id="injection-or-true-drop-table"),
        pytest.param("alice' --", 0, id="injection-comment"),
        pytest.param(QUOTED, 1, id="quotes-are-data"),
    ],
)
def test_injection_through_parameters_is_bound_as_data(
    warehouse, feature_store, make_context, value: str, rows: int
):
    with sqlite3.connect(warehouse) as con:
        con.execute("INSERT INTO customers VALUES (4, ?)", (QUOTED,))
    con.close()

    result = render_and_execute(
        extract(
            sql="SELECT customer_id, name FROM customers WHERE name = :name",
            parameters={"name": value},
        ),
        make_context(),
    )

    assert result["rows"] == rows
    assert pq.read_table(result["path"]).column("name").to_pylist() == [value] * rows
    assert sqlite_rows(warehouse, "SELECT count(*) FROM customers") == 4


def test_injection_through_transform_parameters_is_bound_as_data(
    warehouse, feature_store, make_context
):
    staged = render_and_execute(extract(), make_context())
    transform = SqlTransformOperator(
        task_id="transform",
        sql="SELECT * FROM customers WHERE name = $name",
        inputs={"customers": staged},
        parameters={"name": "x' OR '1'='1"},
    )

    assert render_and_execute(transform, make_context())["rows"] == 0


def test_bad_transform_sql_fails_naming_the_sql(warehouse, feature_store, make_context, published):
    staged = render_and_execute(extract(), make_context())
    transform = SqlTransformOperator(
        task_id="transform", sql="SELECT nope FROM customers", inputs={"customers": staged}
    )

    expect_error(
        lambda: render_and_execute(publish(render_and_execute(transform, make_context())), {}),
        TransformError,
        "The SQL transform failed: Binder Error",
    )
    assert snapshot(feature_store, TABLE) == published


def test_an_empty_extract_publishes_an_empty_partition_with_warnings(
    warehouse, feature_store, make_context, published
):
    with capture_logs() as logs:
        result = pipeline(make_context, sql="SELECT customer_id, name FROM customers WHERE 0")

    assert (result["rows"], result["previous_version"]) == (0, published["version"])
    assert feature_store.read_partition(TABLE, PARTITION).num_rows == 0
    warned = [entry["event"] for entry in logs if entry["log_level"] == "warning"]
    assert [w.split(":")[0] for w in warned] == [
        "The query of 'extract' returned no rows for partition 2026-01-04",
        "Publishing an EMPTY partition 2026-01-04 of table 'customers'",
    ]


def test_an_empty_extract_is_refused_by_the_publish_when_asked(
    warehouse, feature_store, make_context, published
):
    staged = render_and_execute(
        extract(sql="SELECT customer_id, name FROM customers WHERE 0"), make_context()
    )

    expect_error(
        lambda: render_and_execute(publish(staged, allow_empty=False), make_context()),
        EmptyInputError,
        "Nothing was published and the current version stays",
    )
    assert snapshot(feature_store, TABLE) == published


@pytest.mark.postgres
def test_injection_through_postgres_parameters_is_bound_as_data(
    feature_store, make_context, monkeypatch
):
    import psycopg

    uri = "postgresql://postgres@127.0.0.1:5432/test"
    quoted = "o'brien\"; DROP TABLE badin_customers; --"
    with psycopg.connect(uri, autocommit=True) as con:
        con.execute("DROP TABLE IF EXISTS badin_customers")
        con.execute("CREATE TABLE badin_customers (customer_id bigint, name text)")
        con.execute(
            "INSERT INTO badin_customers VALUES (1, 'alice'), (2, %s)", (quoted,), prepare=False
        )
    monkeypatch.setenv(
        "AIRFLOW_CONN_BADIN_PG",
        connection_json("postgres", host="127.0.0.1", port=5432, login="postgres", schema="test"),
    )
    sql = "SELECT customer_id, name FROM badin_customers WHERE name = :name"
    try:
        rows = {
            value: render_and_execute(
                extract(conn_id="badin_pg", sql=sql, parameters={"name": value}), make_context()
            )["rows"]
            for value in ("x'); DROP TABLE badin_customers; --", "alice' OR '1'='1", quoted)
        }
        with psycopg.connect(uri) as con:
            survivors = con.execute("SELECT count(*) FROM badin_customers").fetchone()
    finally:
        with psycopg.connect(uri, autocommit=True) as con:
            con.execute("DROP TABLE IF EXISTS badin_customers")

    assert list(rows.values()) == [0, 0, 1]
    assert survivors == (2,)
