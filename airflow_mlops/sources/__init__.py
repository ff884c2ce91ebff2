"""SQL sources: query results streamed as Arrow record batches, one module per driver.

``base`` holds the contract every source keeps (:class:`SqlSource`, :class:`BatchStream`,
secret redaction); ``dbapi`` reads any DB-API 2 connection (SQLite among them) and
``postgres`` streams PostgreSQL's ``COPY`` through ADBC.
"""

from __future__ import annotations

from airflow_mlops.sources.base import DEFAULT_BATCH_SIZE, BatchStream, SqlSource, query_sha256
from airflow_mlops.sources.dbapi import DbApiSource, SqliteSource
from airflow_mlops.sources.postgres import PostgresSource

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "BatchStream",
    "DbApiSource",
    "PostgresSource",
    "SqlSource",
    "SqliteSource",
    "query_sha256",
]
