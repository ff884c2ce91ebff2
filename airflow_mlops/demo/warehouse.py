"""A deterministic synthetic warehouse of customers and their card transactions.

The demo domain of every pipeline in the package: customers with ``income``, ``debt``,
``age`` and ``history_score``, and their transactions over ``days`` days ending on
``end_day``. The same seed always gives the same rows, so pipelines' outputs can be
checked against SQL over the source.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

CATEGORIES = ("grocery", "travel", "fuel", "online", "restaurant", "utilities")
REGIONS = ("north", "south", "east", "west")


@dataclass(frozen=True)
class WarehouseSpec:
    """What to generate: sizes, the last day of transactions and the seed."""

    customers: int = 50_000
    days: int = 30
    end_day: dt.date = dt.date(2026, 1, 31)
    transactions_per_day: float = 0.5
    seed: int = 20260101
    #: the drift switch: from this day on customers transact 4× as often, for 2× the amount
    drift_from: dt.date | None = None

    @property
    def first_day(self) -> dt.date:
        return self.end_day - dt.timedelta(days=self.days - 1)


def generate(spec: WarehouseSpec) -> dict[str, pd.DataFrame]:
    """The ``customers``, ``transactions`` and ``outcomes`` tables for ``spec``."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(spec.seed)
    n = spec.customers
    income = np.round(rng.lognormal(mean=10.8, sigma=0.5, size=n), 2)
    debt = np.round(income * rng.beta(2, 5, size=n) * 1.5, 2)
    signup_offsets = rng.integers(0, 5 * 365, size=n)
    customers = pd.DataFrame(
        {
            "customer_id": np.arange(1, n + 1, dtype=np.int64),
            "income": income,
            "debt": debt,
            "age": rng.integers(18, 90, size=n).astype(np.int64),
            "history_score": np.round(rng.uniform(300, 850, size=n), 1),
            "region": np.asarray(REGIONS)[rng.integers(0, len(REGIONS), size=n)],
            "signup_date": [
                (spec.end_day - dt.timedelta(days=int(o))).isoformat() for o in signup_offsets
            ],
        }
    )
    days = [spec.first_day + dt.timedelta(days=i) for i in range(spec.days)]
    drifted = np.array([spec.drift_from is not None and d >= spec.drift_from for d in days])
    rates = np.where(drifted, 4.0, 1.0)[:, None] * spec.transactions_per_day
    per_day = rng.poisson(rates, size=(spec.days, n))
    day_index, customer_index = np.nonzero(per_day)
    counts = per_day[day_index, customer_index]
    day_index = np.repeat(day_index, counts)
    customer_index = np.repeat(customer_index, counts)
    rows = len(day_index)
    seconds = rng.integers(0, 86_400, size=rows)
    base = np.datetime64(spec.first_day.isoformat(), "s")
    stamps = base + day_index.astype("timedelta64[D]") + seconds.astype("timedelta64[s]")
    order = np.argsort(stamps, kind="stable")
    transactions = pd.DataFrame(
        {
            "transaction_id": np.arange(1, rows + 1, dtype=np.int64),
            "customer_id": (customer_index + 1).astype(np.int64)[order],
            "ts": np.datetime_as_string(stamps[order], unit="s"),
            "amount": np.round(
                rng.gamma(2.0, 30.0, size=rows) * np.where(drifted[day_index], 2.0, 1.0), 2
            )[order],
            "category": np.asarray(CATEGORIES)[rng.integers(0, len(CATEGORIES), size=rows)][order],
        }
    )
    transactions["ts"] = transactions["ts"].str.replace("T", " ", regex=False)
    return {
        "customers": customers,
        "transactions": transactions,
        "outcomes": _outcomes(customers, transactions, spec),
    }


def _outcomes(
    customers: pd.DataFrame, transactions: pd.DataFrame, spec: WarehouseSpec
) -> pd.DataFrame:
    """Whether each customer defaulted: the label the demo credit-risk model learns.

    A known logistic ground truth over debt-to-income, history score, age and recent
    spending relative to income, so a model has something real to find.
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(spec.seed + 1)
    spend = transactions.groupby("customer_id")["amount"].sum()
    monthly_spend = customers["customer_id"].map(spend).fillna(0.0).to_numpy() / spec.days * 30
    dti = customers["debt"].to_numpy() / customers["income"].to_numpy()
    logit = (
        -3.2
        + 3.5 * (dti - 0.35)
        - 0.009 * (customers["history_score"].to_numpy() - 575)
        + 0.03 * np.clip(30 - customers["age"].to_numpy(), 0, None)
        + 4.0 * monthly_spend / (customers["income"].to_numpy() / 12)
    )
    defaulted = rng.random(len(customers)) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame(
        {"customer_id": customers["customer_id"], "defaulted": defaulted.astype(np.int64)}
    )


_SQLITE_DDL = """
CREATE TABLE customers (
    customer_id INTEGER PRIMARY KEY, income REAL NOT NULL, debt REAL NOT NULL,
    age INTEGER NOT NULL, history_score REAL NOT NULL, region TEXT NOT NULL,
    signup_date TEXT NOT NULL
);
CREATE TABLE transactions (
    transaction_id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL,
    ts TEXT NOT NULL, amount REAL NOT NULL, category TEXT NOT NULL
);
CREATE INDEX transactions_ts ON transactions (ts);
CREATE TABLE outcomes (customer_id INTEGER PRIMARY KEY, defaulted INTEGER NOT NULL);
"""


def write_sqlite(path: str, spec: WarehouseSpec) -> dict[str, int]:
    """Create (or replace) the SQLite warehouse at ``path``; the row count of each table."""
    import os

    tables = generate(spec)
    tmp = f"{path}.tmp"
    if os.path.exists(tmp):
        os.remove(tmp)
    con = sqlite3.connect(tmp)
    try:
        con.executescript(_SQLITE_DDL)
        for table, frame in tables.items():
            marks = ", ".join("?" * len(frame.columns))
            con.executemany(
                f"INSERT INTO {table} VALUES ({marks})", frame.itertuples(index=False, name=None)
            )
        con.commit()
    finally:
        con.close()
    os.replace(tmp, path)
    return {table: len(frame) for table, frame in tables.items()}


_POSTGRES_DDL = """
DROP TABLE IF EXISTS {schema}.outcomes;
DROP TABLE IF EXISTS {schema}.transactions;
DROP TABLE IF EXISTS {schema}.customers;
CREATE TABLE {schema}.customers (
    customer_id BIGINT PRIMARY KEY, income DOUBLE PRECISION NOT NULL,
    debt DOUBLE PRECISION NOT NULL, age BIGINT NOT NULL,
    history_score DOUBLE PRECISION NOT NULL, region TEXT NOT NULL, signup_date TEXT NOT NULL
);
CREATE TABLE {schema}.transactions (
    transaction_id BIGINT PRIMARY KEY, customer_id BIGINT NOT NULL,
    ts TEXT NOT NULL, amount DOUBLE PRECISION NOT NULL, category TEXT NOT NULL
);
CREATE INDEX ON {schema}.transactions (ts);
CREATE TABLE {schema}.outcomes (customer_id BIGINT PRIMARY KEY, defaulted BIGINT NOT NULL);
"""


def write_postgres(uri: str, spec: WarehouseSpec, *, schema: str = "public") -> dict[str, int]:
    """Create (or replace) the warehouse tables in PostgreSQL ``schema`` with COPY."""
    import psycopg

    if not schema.isidentifier():
        raise ValueError(f"schema must be an identifier. Got {schema!r} instead.")
    tables = generate(spec)
    with psycopg.connect(uri) as con:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        con.execute(_POSTGRES_DDL.format(schema=schema))
        for table, frame in tables.items():
            columns = ", ".join(frame.columns)
            with con.cursor().copy(f"COPY {schema}.{table} ({columns}) FROM STDIN") as copy:
                for row in frame.itertuples(index=False, name=None):
                    copy.write_row(row)
    return {table: len(frame) for table, frame in tables.items()}
