from __future__ import annotations

import datetime as dt
import sqlite3

from airflow_mlops.demo.warehouse import WarehouseSpec, generate, write_sqlite

SPEC = WarehouseSpec(customers=300, days=10, end_day=dt.date(2026, 1, 10), seed=3)


def test_generation_is_deterministic():
    a_customers, a_tx = generate(SPEC)
    b_customers, b_tx = generate(SPEC)
    assert a_customers.equals(b_customers)
    assert a_tx.equals(b_tx)


def test_transactions_stay_inside_the_declared_days():
    customers, tx = generate(SPEC)
    assert len(customers) == 300
    assert tx["ts"].min() >= "2026-01-01 00:00:00"
    assert tx["ts"].max() < "2026-01-11"
    assert set(tx["customer_id"]) <= set(customers["customer_id"])
    assert tx["transaction_id"].is_unique


def test_write_sqlite_replaces_the_file(tmp_path):
    path = tmp_path / "w.db"
    first = write_sqlite(str(path), SPEC)
    second = write_sqlite(str(path), SPEC)
    assert first == second
    with sqlite3.connect(path) as con:
        assert (
            con.execute("SELECT count(*) FROM transactions").fetchone()[0] == first["transactions"]
        )
