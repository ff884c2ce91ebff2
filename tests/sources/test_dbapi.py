"""SQLite and any DB-API 2 driver (sources/dbapi.py)."""

from __future__ import annotations

import re
import sqlite3
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from airflow_mlops.exceptions import (
    ArgumentError,
    SourceConfigurationError,
    SourceConnectionError,
    SourceQueryError,
)
from airflow_mlops.io.parquet import write_batches
from airflow_mlops.sources.dbapi import DbApiSource, SqliteSource

if TYPE_CHECKING:
    from pathlib import Path

    pass

from tests.sources.support import collect, make_sqlite


def test_sqlite_streams_batches_of_at_most_batch_size(events_db: str) -> None:
    stream = SqliteSource(events_db).stream("SELECT * FROM events ORDER BY id", batch_size=10)
    with stream:
        sizes = [batch.num_rows for batch in stream]
    assert sizes == [10, 10, 5]


def test_sqlite_infers_types_and_keeps_timestamps_as_text(events_db: str) -> None:
    table = collect(SqliteSource(events_db).stream("SELECT * FROM events", batch_size=100))
    assert table.schema == pa.schema(
        [
            ("id", pa.int64()),
            ("name", pa.string()),
            ("score", pa.float64()),
            ("ts", pa.string()),
            ("late", pa.int64()),
        ]
    )
    assert table.num_rows == 25
    assert table.column("ts")[0].as_py() == "2026-01-01 10:00:00"


@pytest.mark.parametrize(
    ("sql", "parameters"),
    [
        pytest.param(
            "SELECT id FROM events WHERE id >= :low AND id < :high",
            {"low": 3, "high": 6},
            id="named",
        ),  # fmt: skip
        pytest.param("SELECT id FROM events WHERE id >= ? AND id < ?", (3, 6), id="qmark"),
    ],
)
def test_sqlite_binds_parameters_natively(events_db: str, sql: str, parameters: Any) -> None:
    table = collect(SqliteSource(events_db).stream(sql, parameters))
    assert table.column("id").to_pylist() == [3, 4, 5]


def test_sqlite_parameter_is_a_value_not_sql(events_db: str) -> None:
    attack = "x'); DROP TABLE events; --"
    table = collect(SqliteSource(events_db).stream("SELECT :v AS v", {"v": attack}))
    assert table.column("v").to_pylist() == [attack]
    assert collect(SqliteSource(events_db).stream("SELECT count(*) AS n FROM events")).column(
        "n"
    ).to_pylist() == [25]


def test_all_null_first_batch_is_typed_by_looking_ahead(events_db: str) -> None:
    # 'late' is NULL for ids 0-6: the first batch of 5 rows has no value to type it.
    stream = SqliteSource(events_db).stream("SELECT id, late FROM events ORDER BY id", batch_size=5)
    table = collect(stream)
    assert table.schema.field("late").type == pa.int64()
    assert table.column("late").to_pylist()[:8] == [None] * 7 + [7]


def test_column_still_null_after_lookahead_then_valued_fails_with_cast_advice(
    events_db: str,
) -> None:
    source = SqliteSource(events_db, lookahead_batches=0)
    stream = source.stream("SELECT id, late FROM events ORDER BY id", batch_size=5)
    assert stream.schema.field("late").type == pa.null()
    with pytest.raises(SourceQueryError, match=re.escape("column 'late' changes type")) as info:
        list(stream)
    assert "CAST(late AS" in str(info.value)
    assert "first 5 rows" in str(info.value)


def test_ints_then_floats_seen_while_looking_ahead_widen_to_float(tmp_path: Path) -> None:
    # Column 'a' is NULL in the first two one-row batches, so three batches are looked at.
    rows = [(None, 1), (None, 2.5), (3, 4)]
    path = make_sqlite(tmp_path / "n.db", "CREATE TABLE n (a INTEGER, v NUMERIC)", rows)
    table = collect(SqliteSource(path).stream("SELECT a, v FROM n", batch_size=1))
    assert table.schema.field("v").type == pa.float64()
    assert table.column("v").to_pylist() == [1.0, 2.5, 4.0]


def test_later_value_of_another_type_fails_naming_the_column(tmp_path: Path) -> None:
    path = make_sqlite(tmp_path / "m.db", "CREATE TABLE m (v)", [(1,), (2,), ("three",)])
    stream = SqliteSource(path).stream("SELECT v FROM m", batch_size=2)
    assert stream.schema.field("v").type == pa.int64()
    with pytest.raises(SourceQueryError, match=re.escape("column 'v' changes type")) as info:
        list(stream)
    assert "CAST(v AS" in str(info.value)


def test_mixed_types_within_one_batch_fail_naming_the_column(tmp_path: Path) -> None:
    path = make_sqlite(tmp_path / "m.db", "CREATE TABLE m (v)", [(1,), ("two",)])
    with pytest.raises(SourceQueryError, match=re.escape("column 'v' holds values of different")):
        SqliteSource(path).stream("SELECT v FROM m")


def test_empty_result_yields_no_batch_but_a_schema(events_db: str, tmp_path: Path) -> None:
    stream = SqliteSource(events_db).stream("SELECT id, name FROM events WHERE id < 0")
    assert stream.schema.names == ["id", "name"]
    out = str(tmp_path / "out" / "empty.parquet")
    written = write_batches(stream, pafs.LocalFileSystem(), out, schema=stream.schema)
    assert written.rows == 0
    assert pq.read_schema(out).names == ["id", "name"]


def test_stream_writes_parquet_through_parquet_io(events_db: str, tmp_path: Path) -> None:
    stream = SqliteSource(events_db).stream("SELECT * FROM events", batch_size=7)
    out = str(tmp_path / "events.parquet")
    written = write_batches(stream, pafs.LocalFileSystem(), out, schema=stream.schema)
    assert written.rows == 25
    assert pq.read_table(out).column("name").to_pylist()[:2] == ["name-0", "name-1"]


@pytest.mark.parametrize(
    ("sql", "parameters", "driver_message"),
    [
        pytest.param("SELEC id FROM events", None, "syntax error", id="syntax"),
        pytest.param("SELECT * FROM missing_table", None, "no such table", id="missing-table"),
        pytest.param("SELECT :a AS a", {"b": 1}, "supply a value", id="bad-parameter"),
    ],
)
def test_sqlite_query_errors_name_source_sql_and_driver_message(
    events_db: str, sql: str, parameters: Any, driver_message: str
) -> None:
    source = SqliteSource(events_db)
    with pytest.raises(SourceQueryError) as info:
        source.stream(sql, parameters)
    message = str(info.value)
    assert source.describe() in message
    assert sql in message
    assert driver_message in message
    assert not info.value.retryable


def test_error_message_keeps_only_the_start_of_a_long_query(events_db: str) -> None:
    sql = "SELECT * FROM missing_table WHERE " + " OR ".join(f"x = {i}" for i in range(200))
    with pytest.raises(SourceQueryError) as info:
        SqliteSource(events_db).stream(sql)
    assert sql[:150] in str(info.value)
    assert sql not in str(info.value)


def test_missing_sqlite_file_is_a_configuration_error_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "absent.db"
    with pytest.raises(
        SourceConfigurationError, match=re.escape(f"The SQLite database {path} does not exist")
    ) as info:
        SqliteSource(str(path)).stream("SELECT 1")
    assert not info.value.retryable
    assert not path.exists()


def test_locked_sqlite_database_is_a_retryable_connection_error(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE t (x INTEGER)")
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN EXCLUSIVE")
    try:
        source = DbApiSource(lambda: sqlite3.connect(path, timeout=0), name="locked")
        with pytest.raises(SourceConnectionError, match="database is locked") as info:
            source.stream("SELECT * FROM t")
    finally:
        writer.close()
    assert info.value.retryable


def test_driver_errors_never_carry_the_password(tmp_path: Path) -> None:
    secret = "pw-9f3c1e7d-SECRET"

    def connect() -> sqlite3.Connection:
        raise sqlite3.OperationalError(f"cannot log in as user:{secret}@db")

    source = DbApiSource(connect, name="secretive", secrets=[secret])
    with pytest.raises(SourceConnectionError) as info:
        source.stream("SELECT 1")
    assert secret not in str(info.value)
    assert info.value.__cause__ is None


def test_statement_without_result_set_is_a_query_error(events_db: str) -> None:
    source = DbApiSource(lambda: sqlite3.connect(events_db), name="writable")
    with pytest.raises(SourceQueryError, match="returned no result set"):
        source.stream("UPDATE events SET id = id WHERE 0")


def test_sqlite_source_opens_the_file_read_only(events_db: str) -> None:
    with pytest.raises(SourceQueryError, match="readonly database"):
        SqliteSource(events_db).stream("DELETE FROM events RETURNING id")


@pytest.mark.parametrize("batch_size", [0, -1, True, 2.5])
def test_bad_batch_size_is_an_argument_error(events_db: str, batch_size: Any) -> None:
    with pytest.raises(ArgumentError, match="batch_size must be an int >= 1"):
        SqliteSource(events_db).stream("SELECT 1", batch_size=batch_size)


class RecordingConnection:
    """A DB-API connection around sqlite3 that records whether it was closed."""

    def __init__(self, path: str) -> None:
        self._conn = sqlite3.connect(path)
        self.closed = False

    def cursor(self) -> sqlite3.Cursor:
        return self._conn.cursor()

    def close(self) -> None:
        self.closed = True
        self._conn.close()


def test_dbapi_source_streams_any_driver_and_closes_its_connection(events_db: str) -> None:
    connections: list[RecordingConnection] = []

    def connect() -> RecordingConnection:
        connections.append(RecordingConnection(events_db))
        return connections[-1]

    source = DbApiSource(connect, name="warehouse")
    assert source.describe() == "dbapi warehouse"
    table = collect(source.stream("SELECT id FROM events WHERE id < ?", [3], batch_size=2))
    assert table.column("id").to_pylist() == [0, 1, 2]
    assert connections[0].closed


def test_dbapi_source_closes_its_connection_when_the_stream_is_abandoned(events_db: str) -> None:
    connection = RecordingConnection(events_db)
    stream = DbApiSource(lambda: connection, name="w").stream("SELECT id FROM events", batch_size=2)
    next(stream)
    stream.close()
    assert connection.closed


def test_dbapi_connect_failure_is_a_connection_error() -> None:
    def connect() -> Any:
        raise OSError("no route to host")

    with pytest.raises(SourceConnectionError, match=re.escape("Cannot connect to dbapi w")):
        DbApiSource(connect, name="w").stream("SELECT 1")


# ---------------------------------------------------------------- PostgreSQL parameter binding
