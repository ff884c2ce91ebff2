"""SqlSourceHook: any Airflow SQL connection → a streaming engine ``SqlSource``."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import quote

from airflow.sdk import BaseHook

from airflow_mlops.exceptions import ArgumentError

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from airflow_mlops.sources.base import SqlSource

_POSTGRES_TYPES = {"postgres", "postgresql"}


def postgres_uri(conn: Connection) -> str:
    """A libpq URI for an Airflow ``postgres`` connection (extras become query options)."""
    user = quote(conn.login or "", safe="")
    password = f":{quote(conn.password, safe='')}" if conn.password else ""
    auth = f"{user}{password}@" if user or password else ""
    port = f":{conn.port}" if conn.port else ""
    options = "&".join(
        f"{quote(str(k))}={quote(str(v))}"
        for k, v in sorted(conn.extra_dejson.items())
        if k in {"sslmode", "sslrootcert", "sslcert", "sslkey", "application_name", "options"}
    )
    query = f"?{options}" if options else ""
    return f"postgresql://{auth}{conn.host or 'localhost'}{port}/{quote(conn.schema or '')}{query}"


class SqlSourceHook(BaseHook):
    """Streams query results as Arrow batches from any Airflow SQL connection.

    PostgreSQL connections stream through COPY (ADBC); SQLite reads through ``sqlite3``;
    any other connection type falls back to its own DB-API hook with ``fetchmany``.

    :param sql_conn_id: an Airflow connection of a SQL type (``postgres``, ``sqlite``, …).
    """

    conn_name_attr = "sql_conn_id"
    default_conn_name = "warehouse_default"
    hook_name = "SQL source (Arrow streaming)"

    def __init__(self, sql_conn_id: str = default_conn_name) -> None:
        super().__init__()
        self.sql_conn_id = sql_conn_id

    def get_conn(self) -> SqlSource:
        return self.get_source()

    def get_source(self) -> SqlSource:
        from airflow_mlops.sources.dbapi import DbApiSource, SqliteSource
        from airflow_mlops.sources.postgres import PostgresSource

        conn = self.get_connection(self.sql_conn_id)
        if conn.conn_type in _POSTGRES_TYPES:
            return PostgresSource(postgres_uri(conn))
        if conn.conn_type == "sqlite":
            if not conn.host:
                raise ArgumentError(
                    f"SQLite connection {self.sql_conn_id!r} has no database path in 'host'."
                )
            return SqliteSource(conn.host)
        return DbApiSource(conn.get_hook().get_conn, name=self.sql_conn_id, secrets=[conn.password])
