"""SqlSourceHook: an Airflow SQL connection → a streaming SqlSource; libpq URIs."""

from __future__ import annotations

import json
import re
import sqlite3
from types import SimpleNamespace

import pytest
from airflow.sdk import Connection
from psycopg.conninfo import conninfo_to_dict

from airflow_mlops.demo.environment import connection_json
from airflow_mlops.exceptions import ArgumentError
from airflow_mlops.hooks.sql_source import SqlSourceHook, postgres_uri
from airflow_mlops.sources.dbapi import DbApiSource, SqliteSource
from airflow_mlops.sources.postgres import PostgresSource


def postgres_connection(**fields) -> Connection:
    extra = fields.pop("extra", None)
    return Connection(
        conn_id="pg",
        conn_type="postgres",
        extra=json.dumps(extra) if extra is not None else None,
        **fields,
    )


@pytest.mark.parametrize(
    ("fields", "uri"),
    [
        pytest.param(
            {"host": "db.example", "schema": "warehouse"},
            "postgresql://db.example/warehouse",
            id="host-and-db",
        ),
        pytest.param(
            {"host": "db.example", "port": 5433, "login": "reader", "schema": "wh"},
            "postgresql://reader@db.example:5433/wh",
            id="login-and-port",
        ),
        pytest.param(
            {"host": "db", "login": "read er", "password": "p@ss:w/rd%?&", "schema": "wh"},
            "postgresql://read%20er:p%40ss%3Aw%2Frd%25%3F%26@db/wh",
            id="credentials-quoted",
        ),
        pytest.param({"schema": "wh"}, "postgresql://localhost/wh", id="no-host-is-localhost"),
        pytest.param(
            {
                "host": "db",
                "schema": "wh",
                "extra": {
                    "sslmode": "verify-full",
                    "sslrootcert": "/etc/ca.pem",
                    "application_name": "mlops",
                    "cursor": "named",
                    "iam": True,
                },
            },
            "postgresql://db/wh?application_name=mlops&sslmode=verify-full&sslrootcert=/etc/ca.pem",
            id="ssl-extras-kept-unknown-dropped",
        ),
    ],
)
def test_postgres_uri(fields, uri):
    assert postgres_uri(postgres_connection(**fields)) == uri


def test_postgres_uri_round_trips_through_libpq():
    password = "p@ss:w/rd%?&= '\"x"
    conn = postgres_connection(
        host="db.example",
        port=6432,
        login="feature reader",
        password=password,
        schema="ware house",
        extra={"sslmode": "require", "options": "-c search_path=features"},
    )

    assert conninfo_to_dict(postgres_uri(conn)) == {
        "host": "db.example",
        "port": "6432",
        "user": "feature reader",
        "password": password,
        "dbname": "ware house",
        "sslmode": "require",
        "options": "-c search_path=features",
    }


@pytest.fixture
def define_connection(monkeypatch):
    """Define Airflow connection ``src`` through ``AIRFLOW_CONN_SRC``."""

    def define(conn_type: str, **fields) -> None:
        monkeypatch.setenv("AIRFLOW_CONN_SRC", connection_json(conn_type, **fields))

    return define


@pytest.mark.parametrize("conn_type", ["postgres", "postgresql"])
def test_postgres_connection_gives_a_postgres_source(define_connection, conn_type):
    define_connection(
        conn_type, host="db.example", port=5433, login="reader", password="pw", schema="wh"
    )

    source = SqlSourceHook("src").get_source()

    assert isinstance(source, PostgresSource)
    assert source.describe() == "postgresql reader@db.example:5433/wh"


def test_sqlite_connection_gives_a_sqlite_source(define_connection, tmp_path):
    define_connection("sqlite", host=str(tmp_path / "w.db"))

    source = SqlSourceHook("src").get_conn()

    assert isinstance(source, SqliteSource)
    assert source.path == str(tmp_path / "w.db")


def test_sqlite_connection_without_path_is_refused(define_connection):
    define_connection("sqlite")

    with pytest.raises(
        ArgumentError, match=re.escape("SQLite connection 'src' has no database path in 'host'.")
    ):
        SqlSourceHook("src").get_source()


def test_other_connection_types_stream_through_their_dbapi_hook(
    define_connection, monkeypatch, tmp_path
):
    database = tmp_path / "other.db"
    with sqlite3.connect(database) as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS a UNION ALL SELECT 2")
    con.close()
    resolved = []

    def get_hook(self, *, hook_params=None):
        resolved.append(self.conn_type)
        return SimpleNamespace(get_conn=lambda: sqlite3.connect(database))

    monkeypatch.setattr(Connection, "get_hook", get_hook)
    define_connection("mysql", host="mysql.example")

    source = SqlSourceHook("src").get_source()

    assert type(source) is DbApiSource
    assert source.describe() == "dbapi src"
    assert resolved == ["mysql"]
    with source.stream("SELECT a FROM t ORDER BY a") as stream:
        assert [row["a"] for batch in stream for row in batch.to_pylist()] == [1, 2]
