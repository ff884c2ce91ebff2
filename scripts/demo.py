"""`make demo`: the daily_customer_features pipeline end to end, through Airflow, embedded.

Builds a deterministic synthetic SQLite warehouse (50,000 customers, 30 days of
transactions), a temporary Airflow home with a SQLite metadata DB, and the connections;
runs the DAG with `airflow dags test` for three consecutive days, re-runs one of them,
and prints where the feature table is and what it holds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

from airflow_mlops.demo.environment import REPO, airflow_cli, airflow_env, migrate
from airflow_mlops.demo.warehouse import WarehouseSpec, write_sqlite
from airflow_mlops.store import FeatureStore

RUNS = ["2026-01-29T03:00:00+00:00", "2026-01-30T03:00:00+00:00", "2026-01-31T03:00:00+00:00"]
DAG_ID = "daily_customer_features"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, default=REPO / "var" / "demo")
    parser.add_argument("--customers", type=int, default=50_000)
    args = parser.parse_args()

    workdir: Path = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    warehouse = workdir / "warehouse.db"
    store_root = workdir / "feature_store"
    spec = WarehouseSpec(customers=args.customers)
    counts = write_sqlite(str(warehouse), spec)
    print(
        f"warehouse  {warehouse}: {counts['customers']:,} customers, "
        f"{counts['transactions']:,} transactions {spec.first_day} .. {spec.end_day}"
    )

    env = airflow_env(
        workdir / "airflow_home",
        warehouse_db=warehouse,
        store_root=store_root,
        registry_root=workdir / "model_registry",
    )
    print(f"airflow    AIRFLOW_HOME={env['AIRFLOW_HOME']} (SQLite metadata DB)")
    migrate(env)

    for logical_date in [*RUNS, RUNS[1]]:
        started = time.monotonic()
        result = airflow_cli(env, "dags", "test", DAG_ID, logical_date, check=False)
        log = workdir / f"run-{logical_date[:10]}.log"
        log.write_text(result.stdout + result.stderr)
        state = "success" if result.returncode == 0 else f"FAILED (exit {result.returncode})"
        print(
            f"run        {DAG_ID} logical_date={logical_date}: {state} "
            f"in {time.monotonic() - started:.1f}s, log {log}"
        )
        if result.returncode:
            raise SystemExit(result.stdout[-3000:] + result.stderr[-3000:])

    store = FeatureStore(str(store_root))
    rerun = (dt.datetime.fromisoformat(RUNS[1]) - dt.timedelta(days=1)).date().isoformat()
    first, second = store.list_versions("customer_features", rerun)[-2:]
    same = (
        store.manifest("customer_features", rerun, version=first)["content_sha256"]
        == store.manifest("customer_features", rerun, version=second)["content_sha256"]
    )
    print(
        f"rerun      ds={rerun}: new version {second} replaced {first}; identical content: {same}"
    )
    print(f"\nfeature store  {store_root}")
    for table in store.list_tables():
        for partition in store.list_partitions(table):
            manifest = store.manifest(table, partition)
            versions = store.list_versions(table, partition)
            print(
                f"  {table} ds={partition}: {manifest['row_count']:,} rows, "
                f"{len(versions)} version(s), current {manifest['version']}, "
                f"content sha256 {manifest['content_sha256'][:12]}…"
            )
        latest = store.read_latest(table)
        print(
            f"  latest partition ({store.latest_partition(table)}) columns: "
            f"{', '.join(latest.column_names)}"
        )
        print(latest.slice(0, 3).to_pandas().to_string(index=False))
        print(f"  plain Parquet: {store.partition_path(table, store.latest_partition(table))}")
    print(
        f"\ninspect it:  .venv/bin/airflow-mlops --root {store_root} partitions customer_features"
    )


if __name__ == "__main__":
    main()
