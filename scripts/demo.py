"""`make demo`: the daily_customer_features pipeline end to end, through Airflow, embedded.

Builds a deterministic synthetic SQLite warehouse (50,000 customers, 30 days of
transactions, drifting from 2026-01-30 on), a temporary Airflow home with a SQLite
metadata DB, and the connections; runs the DAG with `airflow dags test` for three
consecutive days, re-runs one of them, trains champion and challenger, scores a day with
shadow scoring, and prints the tables, the models, the scores and the drift reports (one
clean day, one drifted day); then serves the champion (`airflow-mlops serve`) and asks it
for one customer by REST and by gRPC, both equal to that customer's batch score.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from pathlib import Path

from airflow_mlops.demo.credit_model import MODEL_NAME
from airflow_mlops.demo.environment import REPO, airflow_cli, airflow_env, migrate
from airflow_mlops.demo.online import grpc_predict, live_traffic, rest_predict, serving
from airflow_mlops.demo.warehouse import WarehouseSpec, write_sqlite
from airflow_mlops.models.registry import ModelRegistry
from airflow_mlops.store.feature_store import FeatureStore

RUNS = ["2026-01-29T03:00:00+00:00", "2026-01-30T03:00:00+00:00", "2026-01-31T03:00:00+00:00"]
DAG_ID = "daily_customer_features"
TRAIN_ON = "2026-01-29"
#: the customer the online predictions are for (any scored customer would do)
ONLINE_CUSTOMER = 42
#: the customers the demo asks for online afterwards: live traffic for the serving log
LIVE_CUSTOMERS = 2_000
#: the warehouse's drift switch: customers transact 4x as often, for 2x the amount
DRIFT_FROM = dt.date(2026, 1, 30)
SCORE = "2026-01-30"


def run_dag(
    env: dict[str, str],
    workdir: Path,
    dag_id: str,
    logical_date: str | None = None,
    conf: dict[str, str] | None = None,
) -> None:
    """One run of ``dag_id`` through ``airflow dags test``; its log kept in ``workdir``."""
    args = ["dags", "test", dag_id, *([logical_date] if logical_date else [])]
    if conf:
        args += ["--conf", json.dumps(conf)]
    started = time.monotonic()
    result = airflow_cli(env, *args, check=False)
    label = logical_date[:10] if logical_date else "-".join(conf.values() if conf else [])
    log = workdir / f"run-{dag_id}-{label}.log"
    log.write_text(result.stdout + result.stderr)
    state = "success" if result.returncode == 0 else f"FAILED (exit {result.returncode})"
    what = f"logical_date={logical_date}" if logical_date else f"conf={conf}"
    print(f"run        {dag_id} {what}: {state} in {time.monotonic() - started:.1f}s, log {log}")
    if result.returncode:
        raise SystemExit(result.stdout[-3000:] + result.stderr[-3000:])


def serve_online(
    store: FeatureStore, registry: ModelRegistry, workdir: Path, env: dict[str, str]
) -> None:
    """``airflow-mlops serve`` on the demo's store and registry: one customer's prediction
    by REST and by gRPC, each checked against that customer's batch score; then live
    traffic, published and checked by ``daily_serving_log``."""
    scores = store.read_partition("customer_scores", SCORE).to_pandas().set_index("customer_id")
    batch = scores.loc[ONLINE_CUSTOMER]
    started = time.monotonic()
    with serving(store.root, registry.root, workdir, partition=SCORE) as served:
        print(
            f"\nserve   airflow-mlops serve {MODEL_NAME} (pid {served.pid}): REST "
            f"127.0.0.1:{served.http_port}, gRPC 127.0.0.1:{served.grpc_port}, token required"
        )
        answers = [rest_predict(served, ONLINE_CUSTOMER), grpc_predict(served, ONLINE_CUSTOMER)]
        traffic = live_traffic(served, scores.index[:LIVE_CUSTOMERS].tolist())
    for answer in answers:
        same = (
            answer.default_probability == batch["default_probability"]
            and answer.decision == batch["decision"]
        )
        print(
            f"        {answer.protocol:<4} customer_id={ONLINE_CUSTOMER}: {MODEL_NAME} "
            f"{answer.model_version}, default_probability {answer.default_probability:.6f}, "
            f"{answer.decision}; equals customer_scores ds={SCORE}: {same}"
        )
        if not same:
            raise SystemExit(f"online {answer} differs from the batch score {batch.to_dict()}")
    print(
        f"        live traffic: {traffic:,} customers asked by key; server stopped by PID "
        f"after {time.monotonic() - started:.1f}s (SIGTERM writes its serving log)"
    )
    serving_log_day(store, workdir, env)


def serving_log_day(store: FeatureStore, workdir: Path, env: dict[str, str]) -> None:
    """``daily_serving_log`` for today: the live traffic published, its drift against the
    training profile and the online shadow comparison."""
    today = dt.datetime.now(dt.UTC).date().isoformat()
    run_dag(env, workdir, "daily_serving_log", conf={"partition": today})
    table, shadow_table = f"{MODEL_NAME}_serving_log", f"{MODEL_NAME}_shadow_log"
    drift = json.loads(store.read_sidecar(table, "drift_report.json", partition=today))
    shifted = [c["name"] for c in drift["columns"] if c["status"] != "ok"]
    print(
        f"live    {table} ds={today}: {store.manifest(table, today)['row_count']:,} rows; "
        f"drift vs the training profile: {drift['status'].upper()} — "
        f"{', '.join(shifted) or 'no column shifted'}"
    )
    report = json.loads(store.read_sidecar(shadow_table, "shadow_report.json", partition=today))
    latency = report["latency"]
    print(
        f"        online shadow on {report['rows_compared']:,} customers: mean |delta| "
        f"{report['mean_abs_delta']:.4f}, decision agreement "
        f"{report['decision_agreement_rate']:.1%}, latency p95 champion "
        f"{latency['champion']['p95_ms']:.2f} ms / challenger "
        f"{latency['challenger']['p95_ms']:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path, default=REPO / "var" / "demo")
    parser.add_argument("--customers", type=int, default=50_000)
    args = parser.parse_args()

    workdir: Path = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    warehouse = workdir / "warehouse.db"
    store_root = workdir / "feature_store"
    spec = WarehouseSpec(customers=args.customers, drift_from=DRIFT_FROM)
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
        run_dag(env, workdir, DAG_ID, logical_date)
    run_dag(env, workdir, "train_credit_model", conf={"partition": TRAIN_ON})
    run_dag(env, workdir, "daily_customer_scoring", conf={"partition": SCORE})

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
    registry = ModelRegistry(str(workdir / "model_registry"))
    print(f"\nmodel registry  {registry.root}")
    for alias, version in sorted(registry.aliases(MODEL_NAME).items()):
        record = registry.record(MODEL_NAME, version)
        print(
            f"  {MODEL_NAME} {alias} -> {version}: {record['params']['candidate']}, "
            f"cv ROC AUC {record['metrics']['cv_roc_auc_mean']:.3f}, "
            f"sha256 {record['sha256'][:12]}…"
        )
    scores = store.read_partition("customer_scores", SCORE)
    declined = sum(d == "decline" for d in scores["decision"].to_pylist())
    print(
        f"\nscores  customer_scores ds={SCORE}: {scores.num_rows:,} customers, "
        f"{declined:,} declined ({declined / scores.num_rows:.1%})"
    )
    report = store.manifest("customer_scores_shadow", SCORE)["lineage"]["shadow_report"]
    print(
        f"shadow  challenger on {report['rows_compared']:,} customers: mean |delta| "
        f"{report['mean_abs_delta']:.4f}, p95 |delta| {report['p95_abs_delta']:.4f}, "
        f"decision agreement {report['decision_agreement_rate']:.1%}, PSI {report['psi']:.4f}"
    )
    print()
    for day in ("2026-01-29", "2026-01-30"):
        report = json.loads(
            store.read_sidecar("customer_features", "drift_report.json", partition=day)
        )
        shifted = [c["name"] for c in report["columns"] if c["status"] != "ok"]
        print(
            f"drift   customer_features ds={day} vs {report['reference']['partition']}: "
            f"{report['status'].upper()} — {', '.join(shifted) or 'no column shifted'}"
        )
        html = store.sidecar_uri("customer_features", "drift_report.html", partition=day)
        print(f"        report: {html}")
    serve_online(store, registry, workdir, env)
    print(f"\ninspect:  .venv/bin/airflow-mlops --root {store_root} partitions customer_features")
    print(f"          .venv/bin/airflow-mlops models --registry {registry.root} list")


if __name__ == "__main__":
    main()
