from __future__ import annotations

import datetime as dt
import sqlite3

import pytest

from airflow_mlops.demo.warehouse import WarehouseSpec, generate, write_sqlite

SPEC = WarehouseSpec(customers=300, days=10, end_day=dt.date(2026, 1, 10), seed=3)


def test_generation_is_deterministic():
    first, second = generate(SPEC), generate(SPEC)
    assert list(first) == ["customers", "transactions", "outcomes"]
    assert all(first[name].equals(second[name]) for name in first)


def test_transactions_stay_inside_the_declared_days():
    tables = generate(SPEC)
    customers, tx = tables["customers"], tables["transactions"]
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


def test_outcomes_label_every_customer_and_follow_the_risk_drivers():
    tables = generate(WarehouseSpec(customers=20_000, days=10, seed=5))
    customers, outcomes = tables["customers"], tables["outcomes"]
    assert outcomes["customer_id"].equals(customers["customer_id"])
    rate = outcomes["defaulted"].mean()
    assert 0.05 < rate < 0.5
    risky = (customers["debt"] / customers["income"]) > 0.6
    assert outcomes["defaulted"][risky].mean() > outcomes["defaulted"][~risky].mean()


def test_the_drift_switch_shifts_transactions_from_its_day_only():
    clean = generate(SPEC)["transactions"]
    drifted = generate(WarehouseSpec(**{**SPEC.__dict__, "drift_from": dt.date(2026, 1, 9)}))[
        "transactions"
    ]
    before, after = "2026-01-09", drifted["ts"] >= "2026-01-09"
    assert drifted[~after]["amount"].mean() == pytest.approx(
        clean[clean["ts"] < before]["amount"].mean(), rel=0.1
    )
    assert drifted[after]["amount"].mean() > 1.6 * clean[clean["ts"] >= before]["amount"].mean()
    assert after.sum() > 3 * (clean["ts"] >= before).sum()
