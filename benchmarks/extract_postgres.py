"""Benchmark: extract a PostgreSQL table (and a one-day slice) to Parquet.

Three methods, each in its own fresh subprocess so that peak RSS is that child's
``ru_maxrss``, run interleaved (ours, tutorial, floor, ours, …) and reported as medians
and paired ratios:

- ``ours``: ``PostgresSource.stream`` → ``io.parquet.write_batches`` (the operator's path);
- ``tutorial``: ``pandas.read_sql`` on a SQLAlchemy (psycopg2) engine + ``DataFrame.to_parquet``;
- ``floor``: psycopg 3 ``COPY (…) TO STDOUT (FORMAT binary)``, blocks read and discarded.

Timing starts after the child's imports and ends when the Parquet file is closed.

    .venv/bin/python benchmarks/extract_postgres.py                   # 5M rows, repeat 3
    .venv/bin/python benchmarks/extract_postgres.py --rows 20000 --repeat 1   # smoke
    .venv/bin/python benchmarks/extract_postgres.py --write-docs      # rewrite docs section
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import shlex
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from benchdocs import child_result, machine, publish

SECTION = "## Extract: PostgreSQL → Parquet"
DSN = os.environ.get("BENCH_POSTGRES_URI", "postgresql://postgres@127.0.0.1:5432/test")
METHODS = ("ours", "tutorial", "floor")
FIRST_DAY = datetime.date(2026, 1, 1)
DAYS = 30
SLICE_DAY = FIRST_DAY + datetime.timedelta(days=14)
BATCH_SIZE = 100_000
GOAL_SPEEDUP, GOAL_FLOOR_RATIO, GOAL_RSS_MIB = 10.0, 1.2, 512.0
#: Findings of the lever trials (2026-11-25, 2 CPUs, 5M rows), kept with the table.
ANALYSIS = """\
Why the floor goal is missed on 2 CPUs: wall times here are noisy (other jobs share the
two cores), so the trials compare client CPU seconds, which are stable. Ours spends ≈ 8.4
CPU-s (ADBC's COPY parse ≈ 4.5, Parquet encoding ≈ 3.5, imports ≈ 0.4) and the server
≈ 3.3 CPU-s producing the COPY stream; on two cores that is ≥ (8.4 + 3.3) / 2 ≈ 5.9 s, i.e.
≈ 1.5× the floor at best, however well read and write overlap. Levers tried, 2 paired
rounds each: reading ahead on a thread (`prefetch_batches=2`, now the default) overlaps
read and write (median 6.6 s vs 8.9 s without; same CPU); ADBC's
`adbc.postgresql.batch_size_hint_bytes` at 4 MiB or 64 MiB changes no CPU (64 MiB costs
+120 MiB RSS), so 16 MiB stays; reading without writing costs 5.0 CPU-s (≈ 1.1× the floor
on two cores); Parquet without dictionary encoding (`use_dictionary=False` in
`io.parquet`, not changed here) cuts CPU from 8.4 to 6.6 s and the file from 80 to 49 MiB
per 2M rows, which would bring the bound to ≈ 1.3×. The one-day slice is server-bound
(the day's rows are spread over every page: the server's own COPY takes ≈ 0.54 s) and
short, so per-run fixed costs (driver load, connect, prepare ≈ 0.3 s) weigh; the
tutorial is only ≈ 3× the floor there, so no reader can be 10× faster than it.
"""

CREATE_TABLE = """
CREATE TABLE {table} AS
SELECT
    g::bigint                                              AS id,
    (g % 100000)::int                                      AS customer_id,
    (g % 500)::smallint                                    AS store_id,
    (g % 17)::int                                          AS quantity,
    (g % 1000) / 7.0::float8                               AS price,
    ((g % 30) / 100.0)::real                               AS discount,
    ((g % 100000) / 100.0)::numeric(12, 2)                 AS amount,
    sin(g)::float8                                         AS score,
    'customer-' || g                                       AS name,
    'user' || (g % 100000) || '@example.com'               AS email,
    (ARRAY['grocery', 'electronics', 'toys', 'garden', 'books'])[g % 5 + 1] AS category,
    CASE WHEN g % 10 = 0 THEN NULL ELSE repeat('note ', (g % 12)::int) END AS note,
    g % 2 = 0                                              AS is_active,
    g % 97 = 0                                             AS is_fraud,
    DATE '{first_day}' + (g % {days})::int                 AS day,
    TIMESTAMPTZ '{first_day} 00:00+00' + g * INTERVAL '517 milliseconds' AS created_at,
    TIMESTAMPTZ '{first_day} 00:00+00' + g * INTERVAL '611 milliseconds' AS updated_at,
    (g::bigint * 7919 % 1000003)::bigint                          AS sequence_no
FROM generate_series(1, {rows}) AS g
"""


@dataclass(frozen=True)
class Case:
    """One extraction: a label, its SQL (psycopg style) and parameters, its row count."""

    label: str
    sql: str
    parameters: dict[str, Any] | None
    rows: int


# ---------------------------------------------------------------- children (one method each)


def child_main(method: str, case: dict[str, Any], out_dir: str) -> None:
    """Runs one method once; prints its seconds, rows, peak RSS and CPU time as JSON."""
    run = {"ours": run_ours, "tutorial": run_tutorial, "floor": run_floor}[method]
    seconds, rows = run(case["sql"], case["parameters"], os.path.join(out_dir, f"{method}.parquet"))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    peak_mib = usage.ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "rows": rows, "peak_rss_mib": peak_mib, "cpu_s": cpu}))


def run_ours(sql: str, parameters: dict[str, Any] | None, path: str) -> tuple[float, int]:
    import pyarrow.fs as pafs

    from airflow_mlops.io.parquet import write_batches
    from airflow_mlops.sources.postgres import PostgresSource

    start = time.perf_counter()
    with PostgresSource(DSN).stream(sql, parameters, batch_size=BATCH_SIZE) as batches:
        written = write_batches(batches, pafs.LocalFileSystem(), path, schema=batches.schema)
    return time.perf_counter() - start, written.rows


def run_tutorial(sql: str, parameters: dict[str, Any] | None, path: str) -> tuple[float, int]:
    import pandas as pd
    import sqlalchemy

    engine = sqlalchemy.create_engine(DSN.replace("postgresql://", "postgresql+psycopg2://", 1))
    start = time.perf_counter()
    frame = pd.read_sql(sql, engine, params=parameters)
    frame.to_parquet(path)
    seconds = time.perf_counter() - start
    engine.dispose()
    return seconds, len(frame)


def run_floor(sql: str, parameters: dict[str, Any] | None, path: str) -> tuple[float, int]:
    import psycopg

    start = time.perf_counter()
    with psycopg.connect(DSN) as conn, conn.cursor() as cursor:
        copy_sql = f"COPY ({sql}) TO STDOUT (FORMAT binary)"
        with cursor.copy(copy_sql, parameters) as copy:
            for _block in copy:
                pass
    return time.perf_counter() - start, -1


# ---------------------------------------------------------------- parent (orchestration)


def ensure_table(rows: int) -> str:
    """``bench_extract_<rows>`` in the test database, created server-side if absent."""
    import psycopg

    table = f"bench_extract_{rows}"
    with psycopg.connect(DSN, autocommit=True) as conn:
        exists = conn.execute("SELECT to_regclass(%s)", [table]).fetchone()
        if exists is None or exists[0] is None:
            print(f"creating {table} ({rows:,} rows)…", file=sys.stderr, flush=True)
            ddl = CREATE_TABLE.format(table=table, rows=rows, first_day=FIRST_DAY, days=DAYS)
            conn.execute(ddl)  # type: ignore[arg-type]  # our own constant template
            conn.execute(f"CREATE INDEX ON {table} (day)")  # type: ignore[arg-type]
            conn.execute(f"VACUUM ANALYZE {table}")  # type: ignore[arg-type]
    return table


def cases(table: str, rows: int) -> list[Case]:
    import psycopg

    day_sql = f"SELECT * FROM {table} WHERE day = %(day)s"
    with psycopg.connect(DSN) as conn:
        count = conn.execute(f"SELECT count(*) FROM {table} WHERE day = %s", [SLICE_DAY])  # type: ignore[arg-type]
        day_rows = count.fetchone()[0]  # type: ignore[index]
    return [
        Case("full table", f"SELECT * FROM {table}", None, rows),
        Case(f"one day ({SLICE_DAY})", day_sql, {"day": SLICE_DAY.isoformat()}, day_rows),
    ]


def run_child(method: str, case: Case) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench_extract_") as out_dir:
        payload = json.dumps({"sql": case.sql, "parameters": case.parameters})
        args = [method, "--case", payload, "--out", out_dir]
        result = child_result(__file__, args, f"{method} on {case.label}")
    if result["rows"] >= 0 and result["rows"] != case.rows:
        raise RuntimeError(f"{method} on {case.label} wrote {result['rows']} rows, not {case.rows}")
    print(
        f"  {case.label:>22} {method:>8}: {result['seconds']:7.2f} s, "
        f"{result['peak_rss_mib']:7.0f} MiB",
        file=sys.stderr,
        flush=True,
    )
    return result


def measure(case: Case, repeat: int, tutorial_repeat: int) -> dict[str, list[dict[str, Any]]]:
    """Interleaved rounds: ours, tutorial, floor, ours, … (tutorial only in its first rounds)."""
    results: dict[str, list[dict[str, Any]]] = {method: [] for method in METHODS}
    for round_ in range(repeat):
        for method in METHODS:
            if method == "tutorial" and round_ >= tutorial_repeat:
                continue
            results[method].append(run_child(method, case))
    return results


def summarise(case: Case, results: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Median seconds/RSS per method; ratios paired round by round, then their median."""
    rows = []
    for method in METHODS:
        runs = results[method]
        seconds = [r["seconds"] for r in runs]
        vs_floor = [s / f["seconds"] for s, f in zip(seconds, results["floor"], strict=False)]
        tutorial = [r["seconds"] for r in results["tutorial"]]
        speedup = [t / s for t, s in zip(tutorial, seconds, strict=False)]
        median_s = statistics.median(seconds)
        rows.append(
            {
                "case": case.label,
                "method": method,
                "runs": len(runs),
                "seconds": median_s,
                "rows_per_s": case.rows / median_s,
                "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
                "cpu_s": statistics.median(r["cpu_s"] for r in runs),
                "vs_floor": statistics.median(vs_floor),
                "speedup_vs_tutorial": statistics.median(speedup),
            }
        )
    return rows


def goals(summary: list[dict[str, Any]]) -> list[str]:
    lines = []
    for row in summary:
        if row["method"] != "ours":
            continue
        speedup, vs_floor, rss = row["speedup_vs_tutorial"], row["vs_floor"], row["peak_rss_mib"]
        checks = [
            (speedup >= GOAL_SPEEDUP, f"{speedup:.1f}× tutorial (goal ≥ {GOAL_SPEEDUP:.0f}×)"),
            (vs_floor <= GOAL_FLOOR_RATIO, f"{vs_floor:.2f}× floor (goal ≤ {GOAL_FLOOR_RATIO}×)"),
            (rss < GOAL_RSS_MIB, f"{rss:.0f} MiB peak (goal < {GOAL_RSS_MIB:.0f} MiB)"),
        ]
        verdicts = "; ".join(f"{'met' if ok else 'MISSED'}: {text}" for ok, text in checks)
        lines.append(f"- {row['case']}: {verdicts}")
    return lines


def machine_info() -> str:
    import adbc_driver_postgresql
    import pandas
    import psycopg
    import pyarrow

    with psycopg.connect(DSN) as conn:
        server = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    return machine(
        [
            f"pyarrow {pyarrow.__version__}",
            f"adbc-driver-postgresql {adbc_driver_postgresql.__version__}",
            f"psycopg {psycopg.__version__}",
            f"pandas {pandas.__version__}",
            f"PostgreSQL {server} on localhost",
        ]
    )


def render(summary: list[dict[str, Any]], args: argparse.Namespace, command: str) -> str:
    header = (
        "| case | method | runs | seconds (median) | rows/s | peak RSS MiB | "
        "× floor | speed-up vs tutorial | client CPU s |\n"
        "|---|---|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [
        f"| {r['case']} | {r['method']} | {r['runs']} | {r['seconds']:.2f} | "
        f"{r['rows_per_s']:,.0f} | {r['peak_rss_mib']:.0f} | {r['vs_floor']:.2f} | "
        f"{r['speedup_vs_tutorial']:.1f} | {r['cpu_s']:.1f} |"
        for r in summary
    ]
    return "\n".join(
        [
            SECTION,
            "",
            f"Table `bench_extract_{args.rows}`: {args.rows:,} rows × 18 columns (bigint, int, "
            "smallint, float8, real, numeric(12,2), text of varying length, bool, date `day` "
            f"over {DAYS} days, timestamptz), built server-side with `generate_series`, indexed "
            "on `day`. The one-day slice binds `day` as a parameter (`WHERE day = %(day)s`).",
            "",
            "- **ours**: `PostgresSource.stream(sql, params, batch_size="
            f"{BATCH_SIZE:_})` → `io.parquet.write_batches` (zstd), the extract operator's path.",
            "- **tutorial**: `pandas.read_sql(sql, SQLAlchemy engine on psycopg2)` + "
            "`DataFrame.to_parquet`.",
            "- **floor**: psycopg 3 `COPY (…) TO STDOUT (FORMAT binary)`, blocks read and "
            "discarded — what the server and the wire cost, with no parsing and no writing.",
            "",
            "Each run is a fresh subprocess (peak RSS = its `ru_maxrss`, interpreter and "
            "imports included); timing starts after imports and ends when the Parquet file is "
            "closed; client CPU is the whole child's user + system time, imports included "
            "(the server's is not counted). Runs are interleaved (ours, tutorial, floor, "
            "ours, …); seconds are medians, peak RSS the maximum over runs, and both "
            "ratios are paired within a round, then the median is taken. "
            f"Repeats: {args.repeat} for ours and floor, "
            f"{args.tutorial_repeat} for the tutorial on the full table and {args.repeat} on "
            "the slice.",
            "",
            header,
            *lines,
            "",
            "Goals (issue): ≥ 10× the tutorial's throughput, ≤ 1.2× the floor's time, "
            "peak RSS < 512 MiB.",
            "",
            *goals(summary),
            "",
            ANALYSIS,
            f"Machine: {machine_info()}.",
            "",
            f"Date: {datetime.date.today().isoformat()}. Command: `{command}`",
            "",
        ]
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000, help="table size (default 5M)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of ours and floor")
    parser.add_argument(
        "--tutorial-repeat", type=int, default=1, help="tutorial runs on the full table"
    )
    parser.add_argument("--write-docs", action="store_true", help="rewrite docs/benchmarks.md")
    parser.add_argument("--child", choices=METHODS, help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        child_main(args.child, json.loads(args.case), args.out)
        return 0
    args.tutorial_repeat = min(args.tutorial_repeat, args.repeat)
    table = ensure_table(args.rows)
    summary = []
    for case in cases(table, args.rows):
        tutorial_repeat = args.tutorial_repeat if case.parameters is None else args.repeat
        summary += summarise(case, measure(case, args.repeat, tutorial_repeat))
    command = shlex.join(
        [".venv/bin/python", "benchmarks/extract_postgres.py", *(argv or sys.argv[1:])]
    )
    section = render(summary, args, command)
    return publish(SECTION, section, args.write_docs)


if __name__ == "__main__":
    sys.exit(main())
