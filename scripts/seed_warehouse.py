"""Seed the demo warehouse in PostgreSQL: the `warehouse-seed` service of the compose stack.

Reads the ``warehouse`` connection from ``AIRFLOW_CONN_WAREHOUSE`` (the same JSON the
DAGs use), creates its database if it is missing (through the server's ``postgres``
maintenance database) and writes the synthetic demo warehouse with
``airflow_mlops.demo.warehouse.write_postgres``: 50,000 customers, 30 days of
transactions up to 2026-01-31, drifting from 2026-01-30 on, as ``make demo`` does.

Idempotent: when the ``customers`` table already exists the warehouse is left alone
(``--force`` rewrites it), so the one-shot service can run on every ``compose up``.

    python scripts/seed_warehouse.py [--customers N] [--force]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys

from airflow_mlops.demo.warehouse import WarehouseSpec, write_postgres

#: the demo's drift switch (scripts/demo.py): customers transact 4x as often, for 2x the amount
DRIFT_FROM = dt.date(2026, 1, 30)


def warehouse_uri(conn_json: str) -> str:
    """The libpq URI of a ``postgres`` connection in ``AIRFLOW_CONN_<ID>`` JSON form."""
    from airflow.sdk import Connection

    from airflow_mlops.hooks.sql_source import postgres_uri

    conn = Connection.from_json(conn_json, conn_id="warehouse")
    if conn.conn_type not in {"postgres", "postgresql"}:
        raise SystemExit(f"the warehouse connection must be postgres. Got {conn.conn_type!r}.")
    if not conn.schema:
        raise SystemExit("the warehouse connection names no database (its 'schema' field).")
    return postgres_uri(conn)


def ensure_database(uri: str) -> bool:
    """Create the database ``uri`` names unless it exists; whether it was created."""
    import psycopg
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    dbname = conninfo_to_dict(uri)["dbname"]
    with psycopg.connect(make_conninfo(uri, dbname="postgres"), autocommit=True) as con:
        if con.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone():
            return False
        con.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        return True


def is_seeded(uri: str) -> bool:
    """Whether the warehouse already has its ``customers`` table."""
    import psycopg

    with psycopg.connect(uri) as con:
        return con.execute("SELECT to_regclass('public.customers')").fetchone()[0] is not None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--force", action="store_true", help="rewrite an existing warehouse")
    args = parser.parse_args(argv)

    conn_json = os.environ.get("AIRFLOW_CONN_WAREHOUSE")
    if not conn_json:
        raise SystemExit("AIRFLOW_CONN_WAREHOUSE is not set")
    uri = warehouse_uri(conn_json)
    if ensure_database(uri):
        print("warehouse: created the database")
    if is_seeded(uri) and not args.force:
        print("warehouse: already seeded, left alone (--force rewrites it)")
        return 0
    spec = WarehouseSpec(customers=args.customers, days=args.days, drift_from=DRIFT_FROM)
    counts = write_postgres(uri, spec)
    print(
        f"warehouse: {counts['customers']:,} customers, {counts['transactions']:,} "
        f"transactions {spec.first_day} .. {spec.end_day}, {counts['outcomes']:,} outcomes"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
