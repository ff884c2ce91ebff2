"""PostgreSQL through COPY and ADBC (sources/postgres.py)."""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from airflow_mlops.exceptions import (
    ArgumentError,
    SourceConnectionError,
    SourceQueryError,
)
from airflow_mlops.io.parquet import write_batches
from airflow_mlops.sources.postgres import PostgresSource, bind_postgres_parameters

if TYPE_CHECKING:
    from collections.abc import Iterator


from tests.sources.support import collect

POSTGRES_URI = "postgresql://postgres@127.0.0.1:5432/test"
ROOT = Path(__file__).resolve().parents[2]


def test_bind_postgres_parameters_quotes_values_by_the_driver() -> None:
    bound = bind_postgres_parameters(
        "SELECT %(s)s, %(d)s, %(n)s, %(b)s",
        {"s": "it's", "d": datetime.date(2026, 1, 4), "n": None, "b": "a\\b"},
    )
    assert bound == "SELECT 'it''s', '2026-01-04'::date, NULL,  E'a\\\\b'"


def test_bind_postgres_parameters_leaves_unparameterised_sql_alone() -> None:
    assert bind_postgres_parameters("SELECT '100%'", None) == "SELECT '100%'"


@pytest.mark.parametrize(
    ("sql", "parameters"),
    [
        pytest.param("SELECT %(a)s", {"b": 1}, id="missing-name"),
        pytest.param("SELECT %s", [1, 2], id="too-many"),
        pytest.param("SELECT %s", [object()], id="unadaptable"),
    ],
)
def test_bind_postgres_parameters_rejects_mismatches(sql: str, parameters: Any) -> None:
    with pytest.raises(SourceQueryError, match="the parameters do not fit the query"):
        bind_postgres_parameters(sql, parameters)


def test_postgres_describe_never_shows_the_password() -> None:
    source = PostgresSource(
        "postgresql://reader:s3cr%40t@db.example:6543/warehouse?sslmode=require"
    )
    assert source.describe() == "postgresql reader@db.example:6543/warehouse"


def test_postgres_invalid_uri_is_an_argument_error() -> None:
    with pytest.raises(ArgumentError, match="Not a valid libpq URI"):
        PostgresSource("postgresql://u:pw@host/db?nonsense_option=1")


# ---------------------------------------------------------------- PostgreSQL server


@pytest.fixture
def pg_table() -> Iterator[str]:
    """A fresh table in the test database (fails, not skips, when the server is down)."""
    import psycopg

    name = f"t_sql_source_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_URI, autocommit=True) as conn:
        conn.execute(
            f"CREATE TABLE {name} AS SELECT g AS id, 'n' || g AS name, "  # type: ignore[arg-type]
            "DATE '2026-01-01' + g % 3 AS day, (g / 4.0)::numeric(8, 2) AS amount, "
            "TIMESTAMPTZ '2026-01-01 00:00+00' + g * INTERVAL '1 hour' AS at "
            "FROM generate_series(1, 30) AS g"
        )
    yield name
    with psycopg.connect(POSTGRES_URI, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {name}")  # type: ignore[arg-type]


@pytest.mark.postgres
def test_postgres_streams_typed_batches(pg_table: str) -> None:
    stream = PostgresSource(POSTGRES_URI).stream(
        f"SELECT * FROM {pg_table} ORDER BY id;", batch_size=7
    )
    with stream:
        batches = list(stream)
    assert [b.num_rows for b in batches] == [7, 7, 7, 7, 2]
    schema = stream.schema
    assert [schema.field(n).type for n in schema.names] == [
        pa.int32(), pa.string(), pa.date32(), pa.string(), pa.timestamp("us", tz="UTC"),
    ]  # fmt: skip
    assert pa.Table.from_batches(batches).column("amount")[0].as_py() == "0.25"


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("sql", "parameters"),
    [
        pytest.param(
            "SELECT id FROM {t} WHERE day = %(day)s ORDER BY id",
            {"day": datetime.date(2026, 1, 2)},
            id="named",
        ),  # fmt: skip
        pytest.param(
            "SELECT id FROM {t} WHERE day = %s ORDER BY id", ["2026-01-02"], id="positional"
        ),  # fmt: skip
    ],
)
def test_postgres_binds_parameters(pg_table: str, sql: str, parameters: Any) -> None:
    table = collect(PostgresSource(POSTGRES_URI).stream(sql.format(t=pg_table), parameters))
    assert table.column("id").to_pylist() == [1, 4, 7, 10, 13, 16, 19, 22, 25, 28]


@pytest.mark.postgres
def test_postgres_streams_in_batches_with_parameters() -> None:
    # ADBC buffers the whole result when the server binds parameters; ours binds client-side.
    source = PostgresSource(POSTGRES_URI, batch_size_hint_bytes=1 << 16, prefetch_batches=0)
    sql = "SELECT g, repeat('x', 100) AS pad FROM generate_series(1, %(n)s) AS g"
    with source.stream(sql, {"n": 20_000}, batch_size=1_000_000) as stream:
        sizes = [batch.num_rows for batch in stream]
    assert sum(sizes) == 20_000
    assert len(sizes) > 5


@pytest.mark.postgres
def test_postgres_injection_through_a_parameter_is_just_a_value(pg_table: str) -> None:
    attack = "x'); DROP TABLE " + pg_table + "; --"
    sql = f"SELECT name, %(v)s AS v FROM {pg_table} WHERE name = %(v)s OR id = 1"
    table = collect(PostgresSource(POSTGRES_URI).stream(sql, {"v": attack}))
    assert table.to_pylist() == [{"name": "n1", "v": attack}]
    count = collect(PostgresSource(POSTGRES_URI).stream(f"SELECT count(*) AS n FROM {pg_table}"))
    assert count.column("n").to_pylist() == [30]


@pytest.mark.postgres
def test_postgres_empty_result_has_a_schema(pg_table: str, tmp_path: Path) -> None:
    stream = PostgresSource(POSTGRES_URI).stream(f"SELECT id, day FROM {pg_table} WHERE false")
    out = str(tmp_path / "empty.parquet")
    written = write_batches(stream, pafs.LocalFileSystem(), out, schema=stream.schema)
    assert written.rows == 0
    assert pq.read_schema(out).types == [pa.int32(), pa.date32()]


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("sql", "parameters", "driver_message"),
    [
        pytest.param("SELEC 1", None, "syntax error", id="syntax"),
        pytest.param(
            "SELECT * FROM missing_table_xyz",
            None,
            'relation "missing_table_xyz" does not exist',
            id="missing-table",
        ),  # fmt: skip
        pytest.param(
            "SELECT %(a)s::int AS a",
            {"a": "not a number"},
            "invalid input syntax",
            id="bad-parameter",
        ),  # fmt: skip
        pytest.param(
            "SELECT 1 / (g - 500) FROM generate_series(1, 100000) AS g",
            None,
            "division by zero",
            id="mid-stream",
        ),  # fmt: skip
    ],
)
def test_postgres_query_errors(sql: str, parameters: Any, driver_message: str) -> None:
    source = PostgresSource("postgresql://postgres:hunter2-secret@127.0.0.1:5432/test")
    with pytest.raises(SourceQueryError) as info:  # noqa: PT012 - the error may come mid-stream
        with source.stream(sql, parameters, batch_size=1_000) as stream:
            list(stream)
    message = str(info.value)
    assert "postgresql postgres@127.0.0.1:5432/test" in message
    assert sql in message
    assert driver_message in message
    assert "hunter2-secret" not in message
    assert not info.value.retryable


@pytest.mark.postgres
def test_postgres_unreachable_is_retryable_and_hides_the_password() -> None:
    source = PostgresSource("postgresql://postgres:hunter2-secret@127.0.0.1:5499/test")
    with pytest.raises(SourceConnectionError) as info:
        source.stream("SELECT 1")
    assert info.value.retryable
    assert "127.0.0.1:5499" in str(info.value)
    chain = [info.value, info.value.__cause__, info.value.__context__]
    assert not any("hunter2-secret" in str(error) for error in chain if error is not None)


@pytest.mark.postgres
def test_postgres_connection_lost_mid_stream_is_retryable() -> None:
    import psycopg

    uri = POSTGRES_URI + "?application_name=sql_source_killed"
    source = PostgresSource(uri, batch_size_hint_bytes=1 << 14, prefetch_batches=0)
    sql = (
        "SELECT g, pg_sleep(CASE WHEN g % 1000 = 0 THEN 0.2 ELSE 0 END) "
        "FROM generate_series(1, 3000) AS g"
    )
    stream = source.stream(sql, batch_size=100)
    next(stream)
    with psycopg.connect(POSTGRES_URI, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'sql_source_killed'"
        )
    with pytest.raises(SourceConnectionError, match="terminating connection") as info:
        list(stream)
    assert info.value.retryable


@pytest.mark.postgres
def test_postgres_abandoned_stream_releases_its_connection() -> None:
    import psycopg

    def backends() -> int:
        with psycopg.connect(POSTGRES_URI) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'sql_source_test'"
            ).fetchone()
        return int(row[0]) if row else 0

    source = PostgresSource(POSTGRES_URI + "?application_name=sql_source_test")
    stream = source.stream("SELECT g FROM generate_series(1, 1000000) AS g", batch_size=1_000)
    next(stream)
    assert backends() == 1
    stream.close()
    deadline = time.monotonic() + 10  # the server ends the backend a moment after we close
    while backends() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert backends() == 0


MEMORY_PROBE = textwrap.dedent(
    """
    import json, sys
    import pyarrow as pa
    from airflow_mlops.sources.postgres import PostgresSource

    def peak_mib():
        # VmHWM belongs to this process's own address space; ru_maxrss would carry the
        # (large) pytest parent's high-water mark across fork + exec.
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM in /proc/self/status")

    mode, uri, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
    sql = (
        "SELECT g AS id, g * 1.5 AS x, 'customer-' || g AS name, "
        "repeat('x', 40 + g %% 40) AS pad FROM generate_series(1, %(rows)s) AS g"
    )
    source = PostgresSource(uri)
    with source.stream("SELECT 1 AS warm_up") as warm_up:
        list(warm_up)
    baseline = peak_mib()
    seen = result_bytes = 0
    with source.stream(sql, {"rows": rows}, batch_size=50_000) as stream:
        held = []
        for batch in stream:
            assert batch.num_rows <= 50_000
            seen += batch.num_rows
            result_bytes += batch.nbytes
            if mode == "buffered":
                held.append(batch)
    print(json.dumps({"rows": seen, "baseline_mib": baseline, "peak_mib": peak_mib(),
                      "result_mib": result_bytes / 2**20}))
    """
)


def memory_probe(mode: str, rows: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, mode, POSTGRES_URI, str(rows)],
        capture_output=True, text=True, check=True, cwd=ROOT,
    )  # fmt: skip
    result: dict[str, float] = json.loads(done.stdout)
    assert result["rows"] == rows
    return result


@pytest.mark.postgres
def test_postgres_memory_is_bounded_by_the_batch_not_the_result() -> None:
    streamed = memory_probe("streamed", 3_000_000)
    buffered = memory_probe("buffered", 3_000_000)
    growth = streamed["peak_mib"] - streamed["baseline_mib"]
    # Measured on 3M rows: ≈ 286 MiB of Arrow data. Holding it all grows RSS by ≈ 295 MiB,
    # streaming by ≈ 56 MiB: a few 16 MiB ADBC batches in flight (two prefetched, one being
    # read, one being consumed), whatever the result's size.
    assert buffered["peak_mib"] - buffered["baseline_mib"] > 0.8 * buffered["result_mib"]
    assert growth < 0.4 * streamed["result_mib"], (streamed, buffered)
    assert growth < 128, (streamed, buffered)
