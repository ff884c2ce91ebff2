"""A day of the serving log, published as a table partition, and the live shadow comparison.

The serving log's segments (:mod:`airflow_mlops.serving.log`) are append-only files under
the store's ``_logs``; :func:`publish_log_day` publishes one day of a log as a partition of
an ordinary feature table (versioned, atomic, readable by pyarrow, DuckDB or pandas), so
drift checks and any SQL engine can read live traffic as they read the feature tables.
:func:`shadow_report` compares champion and challenger over a published day of the shadow
log: mean and p95 ``|Δ|`` of the scores, decision agreement, score PSI and latency
p50/p95 per model.

.. code-block:: python

    manifest = publish_log_day(store, requests_log("credit_risk"), "credit_risk_serving_log",
                               "2026-03-01", lineage={"by": "notebook"})
    publish_log_day(store, shadow_log("credit_risk"), "credit_risk_shadow_log", "2026-03-01")
    report = shadow_report(store, "credit_risk_shadow_log", "2026-03-01")
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_mlops.store.feature_store import FeatureStore
    from airflow_mlops.store.publish import Manifest

#: the sidecar the shadow comparison of a day is stored in, beside its partition
SHADOW_REPORT = "shadow_report.json"


def publish_log_day(
    store: FeatureStore,
    log: str,
    table: str,
    day: str,
    *,
    lineage: Mapping[str, Any] | None = None,
) -> Manifest | None:
    """Publish ``day``'s segments of ``log`` as partition ``day`` of ``table``.

    A rerun publishes a new version with the segments the day has by then (a late segment
    is included), so the job is idempotent and safe to rerun or backfill. Segments are read
    one at a time.

    :returns: the manifest, or ``None`` when the day has no segment (no traffic, or no
        server logging).
    :raises ContractError: when the day's segments' column types do not unify.
    :raises TableNameError, PartitionError: for a bad table name or day.
    """
    segments = store.logs.segments(log, day)
    if not segments:
        return None
    facts = {**(lineage or {}), "log": log, "segments": len(segments)}
    return store.publish_partition(table, day, store.logs.iter_batches(log, day), lineage=facts)


def shadow_report(store: FeatureStore, table: str, day: str) -> dict[str, Any]:
    """The champion/challenger comparison of a published day of the shadow log.

    Scores are compared by :class:`~airflow_mlops.scoring.shadow.ShadowComparison`, as batch
    shadow scoring compares them (mean and p95 ``|Δ|``, decision agreement, PSI of the
    challenger's scores against the champion's); latencies are each model's milliseconds
    per request (the champion's whole request in the server core, the challenger's model
    call on the request's sampled rows), as p50/p95 over the day's rows.

    :raises PartitionNotFoundError: when ``day`` of ``table`` is not published.
    """
    import numpy as np
    import pyarrow.compute as pc

    from airflow_mlops.scoring.shadow import ShadowComparison

    comparison = ShadowComparison()
    latencies: dict[str, list[Any]] = {"champion": [], "challenger": []}
    versions: dict[str, set[str]] = {"champion": set(), "challenger": set()}
    for batch in store.iter_partition_batches(table, day):
        comparison.update(
            batch.column("champion_score"),
            batch.column("challenger_score"),
            batch.column("champion_decision"),
            batch.column("challenger_decision"),
        )
        for model in latencies:
            latencies[model].append(batch.column(f"{model}_latency_ms").to_numpy())
            versions[model].update(pc.unique(batch.column(f"{model}_version")).to_pylist())
    latency = {}
    for model, parts in latencies.items():
        values = np.concatenate(parts) if parts else np.empty(0)
        latency[model] = {
            "rows": int(values.size),
            "p50_ms": float(np.percentile(values, 50)) if values.size else None,
            "p95_ms": float(np.percentile(values, 95)) if values.size else None,
        }
    report = comparison.report()
    report["latency"] = latency
    return {
        "table": table,
        "partition": day,
        "versions": {model: sorted(seen) for model, seen in versions.items()},
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        **report,
    }
