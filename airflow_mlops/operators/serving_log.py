"""Serving log operators: publish a day of live traffic; compare champion and challenger on it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowSkipException

from airflow_mlops.checks import check_choice
from airflow_mlops.exceptions import ArgumentError, TableNameError
from airflow_mlops.hooks.feature_store import FeatureStoreHook, feature_table_asset
from airflow_mlops.operators.base import PartitionedOperator

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

#: which serving log: every answered row, or the champion/challenger comparisons
LOGS = ("requests", "shadow")


def serving_log_table(model_name: str, log: str = "requests") -> str:
    """The table a model's serving log is published to by default:
    ``<model>_serving_log`` (requests) or ``<model>_shadow_log`` (shadow)."""
    return f"{model_name}_serving_log" if log == "requests" else f"{model_name}_shadow_log"


def _table(owner: str, table: str) -> str:
    from airflow_mlops.store.layout import validate_table_name

    try:
        return validate_table_name(table)
    except TableNameError as exc:
        raise ArgumentError(f"{owner}: {exc}") from exc


class PublishServingLogOperator(PartitionedOperator):
    """Publishes one day of a model's serving log as a partition of a table.

    ``airflow-mlops serve`` appends what it answers (``--serving-log``, on by default) to the
    store's logs as Parquet segments, rotated every minute; this task publishes the run's
    partition (by default the day before the run's date, complete by then) as an ordinary,
    versioned partition — idempotent, so a rerun or a backfill republishes the day with
    every segment it has. A day without segments (no traffic, no shadow challenger) skips
    the task and its downstream checks.

    :param model_name: the served model's name.
    :param log: ``"requests"`` (every answered row: features, outputs, model version,
        latency) or ``"shadow"`` (champion vs challenger on the sampled rows).
    :param table: the table to publish to (default: :func:`serving_log_table`).
    :param feature_store_conn_id: the feature store connection (the servers' store).

    .. code-block:: python

        PublishServingLogOperator(task_id="publish_requests", model_name="credit_risk")
        PublishServingLogOperator(task_id="publish_shadow", model_name="credit_risk", log="shadow")
    """

    ui_color = "#e3f4e1"

    def __init__(
        self,
        *,
        model_name: str,
        log: str = "requests",
        table: str | None = None,
        feature_store_conn_id: str = FeatureStoreHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        owner = type(self).__name__
        self.log_kind = check_choice(log, "log", owner, LOGS)
        self.model_name = _table(owner, model_name)
        self.table = _table(owner, table or serving_log_table(model_name, log))
        super().__init__(**kwargs)
        self.feature_store_conn_id = feature_store_conn_id
        self.asset = feature_table_asset(self.table, feature_store_conn_id)
        self.add_outlets([self.asset])

    def execute_partition(self, context: Context, partition: str) -> dict[str, Any]:
        from airflow_mlops.serving.log import requests_log, shadow_log
        from airflow_mlops.serving.log_tables import publish_log_day

        store = FeatureStoreHook(self.feature_store_conn_id).get_store()
        name = (requests_log if self.log_kind == "requests" else shadow_log)(self.model_name)
        manifest = publish_log_day(
            store, name, self.table, partition, lineage=self.run_identity(context)
        )
        if manifest is None:
            flag = "--shadow-alias" if self.log_kind == "shadow" else "--serving-log"
            raise AirflowSkipException(
                f"No {self.log_kind} log of {self.model_name!r} for {partition} "
                f"({store.logs.day_dir(name, partition)} has no segment): no server ran with "
                f"serve {flag} that day, or its last segment has not been written yet."
            )
        summary = {
            "table": self.table,
            "partition": partition,
            "version": manifest["version"],
            "rows": manifest["row_count"],
            "segments": (manifest["lineage"] or {}).get("segments"),
        }
        self.log.info(
            "Published the %s log of %s for %s: %d rows from %d segment(s) into %s, version %s",
            self.log_kind,
            self.model_name,
            partition,
            summary["rows"],
            summary["segments"],
            self.table,
            summary["version"],
        )
        context["outlet_events"][self.asset].extra = {"partition": partition}
        return summary


class ShadowReportOperator(PartitionedOperator):
    """Compares champion and challenger over a published day of the shadow log.

    Mean and p95 ``|Δ|`` of the scores, decision agreement, the PSI of the challenger's
    scores against the champion's and latency p50/p95 per model
    (:func:`~airflow_mlops.serving.log_tables.shadow_report`), stored as
    ``shadow_report.json`` beside the partition, logged and returned (without the bins).

    :param table: the published shadow log (e.g. ``credit_risk_shadow_log``).
    :param feature_store_conn_id: the feature store connection.

    .. code-block:: python

        ShadowReportOperator(task_id="compare_shadow", table="credit_risk_shadow_log")
    """

    template_fields: Sequence[str] = ("table",)
    ui_color = "#fdecea"

    def __init__(
        self,
        *,
        table: str,
        feature_store_conn_id: str = FeatureStoreHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        self.table = _table(type(self).__name__, table)
        super().__init__(**kwargs)
        self.feature_store_conn_id = feature_store_conn_id

    def execute_partition(self, context: Context, partition: str) -> dict[str, Any]:
        import json

        from airflow_mlops.serving.log_tables import SHADOW_REPORT, shadow_report

        store = FeatureStoreHook(self.feature_store_conn_id).get_store()
        report = shadow_report(store, self.table, partition)
        payload = json.dumps(report, indent=2).encode()
        store.write_sidecar(self.table, SHADOW_REPORT, payload, partition=partition)
        summary = {key: value for key, value in report.items() if key != "bins"}
        self.log.info(
            "Shadow on %s ds=%s: %s rows, mean |delta| %s, p95 |delta| %s, agreement %s, "
            "latency %s; report %s",
            self.table,
            partition,
            report["rows_compared"],
            report["mean_abs_delta"],
            report["p95_abs_delta"],
            report["decision_agreement_rate"],
            report["latency"],
            store.sidecar_uri(self.table, SHADOW_REPORT, partition=partition),
        )
        return summary
