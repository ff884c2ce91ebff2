"""The warehouse password never reaches task logs, XCom, the metadata DB, the store or errors.

The example DAGs run through Airflow on a PostgreSQL warehouse whose connection carries a
recognisable password (with characters that URL-encoding changes): features, training and
scoring (with its drift check) succeed; then three features runs fail — a missing table
(SourceQueryError), an unknown database (SourceConfigurationError), a closed port
(SourceConnectionError, retried) — so error messages and tracebacks are covered. Every
output is then searched for the password, as written and URL-encoded.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import traceback
from pathlib import Path
from urllib.parse import quote, quote_plus

import psycopg
import pytest

from airflow_mlops.demo.environment import connection_json
from airflow_mlops.demo.warehouse import write_postgres

pytestmark = [pytest.mark.airflow, pytest.mark.postgres]

SECRET = "pw-9f3c1e7d-SECRET/+@: %"
FORMS = sorted({SECRET, quote(SECRET, safe=""), quote_plus(SECRET)})
DATABASE = "retry_secrets_wh"
SCHEMA = "retry_wh"
DAY = "2026-01-15"


def _admin(postgres_uri: str) -> psycopg.Connection:
    return psycopg.connect(postgres_uri, autocommit=True)


@pytest.fixture(scope="module")
def warehouse(postgres_uri, small_warehouse):
    """Database ``retry_secrets_wh`` seeded with the small warehouse; dropped afterwards."""
    with _admin(postgres_uri) as con:
        con.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        con.execute(f"CREATE DATABASE {DATABASE}")
    write_postgres(
        postgres_uri.rsplit("/", 1)[0] + f"/{DATABASE}", small_warehouse[1], schema=SCHEMA
    )
    yield
    with _admin(postgres_uri) as con:
        con.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


def _warehouse_connection(**changes: object) -> str:
    fields: dict[str, object] = {
        "host": "127.0.0.1",
        "port": 5432,
        "login": "postgres",
        "password": SECRET,
        "schema": DATABASE,
        "extra": {"options": f"-csearch_path={SCHEMA}"},
    }
    return connection_json("postgres", **{**fields, **changes})


def _found(data: bytes) -> list[str]:
    return [form for form in FORMS if form.encode() in data]


def _scan_files(root: Path) -> tuple[int, int, dict[str, list[str]]]:
    """Files and bytes under ``root``, and the files holding a form of the password."""
    files = total = 0
    leaks = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
        data = path.read_bytes()
        files, total = files + 1, total + len(data)
        if found := _found(data):
            leaks[str(path)] = found
    return files, total, leaks


def _xcoms(run_ids: list[str]) -> list[tuple[str, str, str]]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel).filter(XComModel.run_id.in_(run_ids)).all()
        return [
            (row.task_id, row.key, json.dumps(XComModel.deserialize_value(row), default=str))
            for row in rows
        ]


def test_the_search_finds_every_form_of_the_password(tmp_path):
    for form in FORMS:
        (tmp_path / f"{len(form)}.txt").write_text(f"postgresql://postgres:{form}@db/x")
    assert len(FORMS) == 3
    assert sorted(f for found in _scan_files(tmp_path)[2].values() for f in found) == FORMS


def test_password_never_leaks(
    warehouse, airflow_db, repo, tmp_path, monkeypatch, capfd, caplog, postgres_uri
):
    from airflow.dag_processing.dagbag import DagBag

    from airflow_mlops.hooks.sql_source import SqlSourceHook

    caplog.set_level(logging.INFO)
    store_root, registry_root = tmp_path / "store", tmp_path / "registry"
    monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", _warehouse_connection())
    monkeypatch.setenv(
        "AIRFLOW_CONN_FEATURE_STORE_DEFAULT",
        connection_json("feature_store", extra={"root": str(store_root)}),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_MODEL_REGISTRY_DEFAULT",
        connection_json("model_registry", extra={"root": str(registry_root)}),
    )
    bag = DagBag(dag_folder=str(repo / "dags"))
    features = bag.get_dag("daily_customer_features")
    at_day = dt.datetime.fromisoformat(f"{DAY}T00:00:00+00:00")
    runs = {}

    # the happy path: features, training, scoring with its drift check
    runs["features"] = features.test(logical_date=at_day + dt.timedelta(days=1, hours=3))
    runs["train"] = bag.get_dag("train_credit_model").test(
        logical_date=None, run_after=at_day + dt.timedelta(hours=12), run_conf={"partition": DAY}
    )
    runs["score"] = bag.get_dag("daily_customer_scoring").test(
        logical_date=None, run_after=at_day + dt.timedelta(hours=18), run_conf={"partition": DAY}
    )
    # failing runs, the password in the connection each time
    failures = {
        "missing_table": _warehouse_connection(extra={"options": "-csearch_path=retry_empty"}),
        "unknown_database": _warehouse_connection(schema="retry_secrets_no_such_db"),
        "closed_port": _warehouse_connection(port=1),
    }
    for task in features.tasks:  # one quick retry, so the retried path is logged too
        task.retries, task.retry_delay = 1, dt.timedelta(0)
    for number, (name, connection) in enumerate(failures.items()):
        monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", connection)
        runs[name] = features.test(logical_date=at_day + dt.timedelta(days=2 + number, hours=3))
    states = {name: run.state for name, run in runs.items()}
    assert states == {
        "features": "success",
        "train": "success",
        "score": "success",
        "missing_table": "failed",
        "unknown_database": "failed",
        "closed_port": "failed",
    }
    extract = {
        name: next(t for t in runs[name].get_task_instances() if t.task_id == "extract_customers")
        for name in failures
    }
    assert {name: ti.try_number for name, ti in extract.items()} == {
        "missing_table": 1,
        "unknown_database": 1,
        "closed_port": 2,
    }

    # exception texts and tracebacks straight from the engine, for each failure
    error_texts = []
    for connection in failures.values():
        monkeypatch.setenv("AIRFLOW_CONN_WAREHOUSE", connection)
        with pytest.raises(Exception) as info:  # noqa: PT011 - each failure has its own class
            SqlSourceHook("warehouse").get_source().stream("SELECT * FROM customers")
        error_texts.append("".join(traceback.format_exception(info.value)) + repr(info.value))

    # task logs and tracebacks: dag.test() runs tasks in this process, so they reach its
    # stdout/stderr or, once another test has routed Airflow's logging, its log records
    output = "".join(capfd.readouterr()) + caplog.text
    xcoms = _xcoms([run.run_id for run in runs.values()])
    home = Path(airflow_db["AIRFLOW_HOME"])
    scanned = {
        "airflow_home": _scan_files(
            home
        ),  # logs folder and the metadata DB (XCom, rendered fields)
        "feature_store": _scan_files(store_root),
        "model_registry": _scan_files(registry_root),
    }
    print(
        "secrets scan:",
        {name: f"{files} files, {size} bytes" for name, (files, size, _) in scanned.items()},
        f"task output {len(output)} chars, {len(xcoms)} XComs, {len(error_texts)} errors",
    )

    for error in ("SourceQueryError", "SourceConfigurationError", "SourceConnectionError"):
        assert f"{error}: " in output, error  # the failures' messages were searched too
    assert {name: leaks for name, (_, _, leaks) in scanned.items()} == {
        "airflow_home": {},
        "feature_store": {},
        "model_registry": {},
    }
    assert [line for line in output.splitlines() if _found(line.encode())] == []
    assert [x for x in xcoms if _found(x[2].encode())] == []
    assert [text for text in error_texts if _found(text.encode())] == []
    assert scanned["feature_store"][0] > 0
    assert scanned["model_registry"][0] > 0
    assert xcoms
