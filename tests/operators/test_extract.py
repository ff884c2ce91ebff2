"""SqlExtractOperator: a templated query on an Airflow SQL connection → a staged Parquet file."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_mlops.demo.environment import connection_json
from airflow_mlops.exceptions import ArgumentError, SourceConnectionError
from airflow_mlops.operators import SqlExtractOperator
from airflow_mlops.sources.base import query_sha256
from tests.operators.support import DAG_ID, RUN_ID, WAREHOUSE_CONN_ID, render_and_execute

WINDOW_SQL = "SELECT customer_id, day, amount FROM transactions WHERE day BETWEEN :start AND :end"


def sqlite_count(path: Path, sql: str, parameters: dict[str, str] | None = None) -> int:
    with sqlite3.connect(path) as con:
        count = con.execute(f"SELECT count(*) FROM ({sql})", parameters or {}).fetchone()[0]
    con.close()
    return int(count)


def extract(**kwargs) -> SqlExtractOperator:
    kwargs.setdefault("task_id", "extract_transactions")
    kwargs.setdefault("conn_id", WAREHOUSE_CONN_ID)
    kwargs.setdefault("sql", "SELECT * FROM transactions")
    return SqlExtractOperator(**kwargs)


def test_stages_the_result_as_parquet_in_the_store(warehouse, feature_store, make_context):
    result = render_and_execute(extract(), make_context())

    assert result["path"].startswith(f"{feature_store.root}/_staging/{DAG_ID}/")
    assert result["path"].endswith("/extract_transactions.parquet")
    table = pq.read_table(result["path"])
    assert table.num_rows == result["rows"] == sqlite_count(warehouse, "SELECT * FROM transactions")
    assert table.column_names == ["customer_id", "day", "amount"]
    assert result["sha256"] == hashlib.sha256(Path(result["path"]).read_bytes()).hexdigest()
    assert result["partition"] == "2026-01-04"


def test_xcom_is_a_small_reference_not_the_data(warehouse, feature_store, make_context):
    result = render_and_execute(extract(), make_context())

    assert set(result) == {"path", "rows", "sha256", "partition", "lineage"}
    assert len(json.dumps(result)) < 1_000
    assert "alice" not in json.dumps(result)


def test_lineage_names_the_source_and_the_rendered_query(warehouse, feature_store, make_context):
    operator = extract(sql=WINDOW_SQL, parameters={"start": "{{ partition }}", "end": "2026-12-31"})

    result = render_and_execute(operator, make_context())

    assert result["lineage"] == {
        "sources": {
            "extract_transactions": {
                "source": f"sqlite {warehouse}",
                "query_sha256": query_sha256(
                    WINDOW_SQL, {"start": "2026-01-04", "end": "2026-12-31"}
                ),
                "rows": 2,
            }
        }
    }


def test_bind_parameters_are_rendered_from_templates(warehouse, feature_store, make_context):
    operator = extract(
        sql=WINDOW_SQL,
        parameters={"start": "{{ macros.ds_add(partition, -1) }}", "end": "{{ partition }}"},
    )

    result = render_and_execute(operator, make_context())

    rendered = {"start": "2026-01-03", "end": "2026-01-04"}
    assert operator.parameters == rendered
    assert result["rows"] == sqlite_count(warehouse, WINDOW_SQL, rendered) == 4


def test_sql_and_name_are_templated(warehouse, feature_store, make_context):
    operator = extract(
        sql="SELECT * FROM transactions WHERE day = '{{ partition }}'", name="tx_{{ partition }}"
    )

    result = render_and_execute(operator, make_context(params={"partition": "2026-01-03"}))

    assert result["rows"] == 2
    assert result["path"].endswith("/tx_2026-01-03.parquet")


def test_small_batches_stream_every_row(warehouse, feature_store, make_context):
    result = render_and_execute(extract(batch_size=2), make_context())

    assert result["rows"] == pq.read_table(result["path"]).num_rows == 5


def test_a_retry_restages_the_same_file(warehouse, feature_store, make_context):
    first = render_and_execute(extract(), make_context(try_number=1))
    second = render_and_execute(extract(), make_context(try_number=2))

    assert second["path"] == first["path"]
    assert second["rows"] == first["rows"]


def test_mapped_instances_stage_distinct_files(warehouse, feature_store, make_context):
    paths = set()
    for map_index in (0, 1):
        context = make_context()
        context["ti"].map_index = map_index
        paths.add(render_and_execute(extract(), context)["path"])

    assert len(paths) == 2


def test_empty_result_stages_an_empty_file_with_the_query_columns(
    warehouse, feature_store, make_context
):
    operator = extract(sql="SELECT customer_id, day, amount FROM transactions WHERE 0")

    result = render_and_execute(operator, make_context())

    table = pq.read_table(result["path"])
    assert result["rows"] == table.num_rows == 0
    assert table.column_names == ["customer_id", "day", "amount"]


def test_empty_result_fails_when_not_allowed(warehouse, feature_store, make_context):
    operator = extract(sql="SELECT * FROM transactions WHERE 0", allow_empty=False)

    with pytest.raises(AirflowFailException, match=re.escape("EmptyInputError: No rows to write")):
        render_and_execute(operator, make_context())


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param("SELECT * FROM no_such_table", id="missing-table"),
        pytest.param("SELEC customer_id FROM customers", id="syntax"),
    ],
)
def test_bad_sql_fails_without_retry_naming_the_query(warehouse, feature_store, make_context, sql):
    with pytest.raises(AirflowFailException, match=re.escape(f"Query: {sql}")) as excinfo:
        render_and_execute(extract(sql=sql), make_context())

    assert str(excinfo.value).startswith("SourceQueryError: ")


def test_unreachable_postgres_is_retryable_and_hides_the_password(
    feature_store, make_context, monkeypatch
):
    password = "s3cr3t-p@ss/w:rd"
    monkeypatch.setenv(
        "AIRFLOW_CONN_PG_DOWN",
        connection_json(
            "postgres", host="127.0.0.1", port=1, login="reader", password=password, schema="wh"
        ),
    )

    with pytest.raises(SourceConnectionError, match=re.escape("127.0.0.1:1/wh")) as excinfo:
        render_and_execute(extract(conn_id="pg_down", sql="SELECT 1"), make_context())

    chain = []
    error: BaseException | None = excinfo.value
    while error is not None:
        chain.append(str(error))
        error = error.__cause__ or error.__context__
    assert not isinstance(excinfo.value, AirflowFailException)
    assert not any("s3cr3t" in text for text in chain)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(
            {"sql": ""},
            "The 'sql' parameter of SqlExtractOperator must be a non-empty query or .sql file "
            "name. Got '' instead.",
            id="empty-sql",
        ),
        pytest.param(
            {"sql": "  \n"},
            "The 'sql' parameter of SqlExtractOperator must be a non-empty query or .sql file "
            "name. Got '  \\n' instead.",
            id="blank-sql",
        ),
        pytest.param(
            {"sql": None},
            "The 'sql' parameter of SqlExtractOperator must be a non-empty query or .sql file "
            "name. Got None instead.",
            id="none-sql",
        ),
        pytest.param(
            {"batch_size": 0},
            "The 'batch_size' parameter of SqlExtractOperator must be an int >= 1. Got 0 instead.",
            id="zero-batch",
        ),
        pytest.param(
            {"batch_size": "100"},
            "The 'batch_size' parameter of SqlExtractOperator must be an int >= 1. "
            "Got '100' instead.",
            id="string-batch",
        ),
        pytest.param(
            {"batch_size": True},
            "The 'batch_size' parameter of SqlExtractOperator must be an int >= 1. "
            "Got True instead.",
            id="bool-batch",
        ),
    ],
)
def test_bad_arguments_are_refused_at_init(kwargs, message):
    with pytest.raises(ArgumentError, match=re.escape(message)):
        extract(**kwargs)


def test_name_defaults_to_the_task_id():
    assert extract(task_id="extract_customers").name == "extract_customers"


def test_run_id_with_unsafe_characters_stays_under_staging(warehouse, feature_store, make_context):
    result = render_and_execute(extract(), make_context())

    staged = Path(result["path"])
    assert staged.is_file()
    assert staged.parent.parent == Path(feature_store.root) / "_staging" / DAG_ID
    assert str(staged) == feature_store.staging_path(DAG_ID, RUN_ID, "extract_transactions.parquet")
    assert ":" not in staged.parent.name
    assert "+" not in staged.parent.name
