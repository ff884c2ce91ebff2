"""Drift check operators: build a reference profile; compare a partition with a reference."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink, BranchMixIn
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_mlops.checks import check_choice, check_int, check_names
from airflow_mlops.exceptions import ArgumentError
from airflow_mlops.hooks.feature_store import FeatureStoreHook, feature_table_asset
from airflow_mlops.operators.base import PartitionedOperator

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from airflow.sdk import BaseOperator, Context
    from airflow.sdk.types import TaskInstanceKey

    from airflow_mlops.drift.compare import DriftReport

MODES = ("fail", "soft_fail", "warn", "branch")


class DriftReportLink(BaseOperatorLink):
    """The task instance's "Drift report" button: the HTML report beside the partition."""

    name = "Drift report"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return str(getattr(operator, "drift_report_url", "") or "")


def _checked_columns(
    owner: str, table: object, columns: object, exclude: object
) -> tuple[list[str] | None, list[str]]:
    """``columns`` (``None``: all) and ``exclude`` as lists, once ``table`` is a table name."""
    _table_name(owner, "table", table)
    chosen = None if columns is None else check_names(columns, "columns", owner)
    return chosen or None, check_names(exclude, "exclude", owner)


def _table_name(owner: str, argument: str, value: object) -> str:
    """``value`` if it is a table name, else an ArgumentError naming ``argument``."""
    from airflow_mlops.store.layout import validate_table_name

    try:
        return validate_table_name(value)
    except ValueError as exc:
        raise ArgumentError(f"{owner} {argument}: {exc}") from exc


class BuildDriftProfileOperator(PartitionedOperator):
    """Profiles the run's partition of a table once, for daily drift checks to reuse.

    The profile (bins from this partition's quantiles and vocabularies, null rates, a
    sample for Kolmogorov–Smirnov) is built batch by batch and stored beside the table
    under ``profile_name``; :class:`DriftCheckOperator` then never re-reads the reference.

    :param table: the feature (or scores) table.
    :param profile_name: the profile's name, e.g. the model version it was trained for.
    :param columns: columns to profile (default: all but ``exclude``).
    :param exclude: columns left out (entity keys, ids).
    :param exact: keep every reference value (exact KS and quantiles; memory grows with rows).
    """

    template_fields: Sequence[str] = ("profile_name",)
    ui_color = "#eef3e1"

    def __init__(
        self,
        *,
        table: str,
        profile_name: str,
        columns: Sequence[str] | None = None,
        exclude: Sequence[str] = (),
        exact: bool = False,
        batch_size: int = 100_000,
        feature_store_conn_id: str = FeatureStoreHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.columns, self.exclude = _checked_columns(type(self).__name__, table, columns, exclude)
        self.table = table
        self.profile_name = profile_name
        self.exact = exact
        self.batch_size = check_int(batch_size, "batch_size", type(self).__name__)
        self.feature_store_conn_id = feature_store_conn_id

    def execute_partition(self, context: Context, partition: str) -> dict[str, Any]:
        from airflow_mlops.drift.check import build_profile, save_profile

        store = FeatureStoreHook(self.feature_store_conn_id).get_store()
        profile = build_profile(
            store,
            self.table,
            partition,
            columns=self.columns,
            exclude=self.exclude,
            batch_size=self.batch_size,
            exact=self.exact,
        )
        path = save_profile(store, self.table, self.profile_name, profile)
        self.log.info(
            "Stored drift profile %r of %s/ds=%s (%d rows) at %s",
            self.profile_name,
            self.table,
            partition,
            profile.rows,
            path,
        )
        return {
            "table": self.table,
            "partition": partition,
            "profile": self.profile_name,
            "rows": profile.rows,
            "path": path,
        }


class DriftCheckOperator(PartitionedOperator, BranchMixIn):
    """Compares the run's partition of a table with a reference and reports the drift.

    The reference is a stored profile (``reference="profile"``), a chosen partition, or the
    previous published partition. Each column gets a test by its type (KS for numerics,
    chi-square for categoricals; p-values Benjamini–Hochberg-corrected across columns) and
    an effect size (PSI on the reference's bins) that decides its verdict against
    per-column ``(warn, fail)`` thresholds — on large samples p-values flag shifts nobody
    cares about, so they are reported, not used to gate.

    The JSON and a self-contained HTML report (histograms, PSI overview) are stored beside
    the partition; the task's "Drift report" link opens the HTML; a summary goes to the
    log and XCom, and the status to an asset event on ``<table>_drift``.

    On drift (any column at ``fail``), ``mode`` decides: ``fail`` the task (no retry),
    ``soft_fail`` (skip downstream), ``warn`` (log only), or ``branch`` (follow
    ``drift_branch`` instead of ``ok_branch``).

    :param table: the table to check.
    :param reference: ``"profile"``, ``"partition"`` or ``"previous"`` (the latest
        partition before the run's; with none yet, the check is skipped).
    :param profile_name: the stored profile (``reference="profile"``).
    :param profile_table: the table that profile is stored beside (default: ``table``; e.g.
        the training table, to check live serving inputs against training data).
    :param reference_partition: the reference day (``reference="partition"``). Templated.
    :param columns: columns to check (default: all but ``exclude``).
    :param exclude: columns not checked (entity keys, ids, model versions).
    :param thresholds: column → ``(warn, fail)`` PSI thresholds.
    :param default_thresholds: ``(warn, fail)`` for other columns.
    :param tests: column → test name, overriding the choice by type.
    :param mode: ``fail`` | ``soft_fail`` | ``warn`` | ``branch``.
    :param ok_branch: task id(s) to follow without drift (``mode="branch"``).
    :param drift_branch: task id(s) to follow on drift (``mode="branch"``).

    .. code-block:: python

        DriftCheckOperator(
            task_id="check_drift", table="customer_features", reference="previous",
            exclude=["customer_id"], thresholds={"income": (0.05, 0.1)}, mode="warn",
        )
    """

    template_fields: Sequence[str] = ("reference_partition", "profile_name")
    operator_extra_links = (DriftReportLink(),)
    inherits_from_skipmixin = True  # it may skip downstream tasks (soft_fail, branch)
    ui_color = "#fdecea"

    def __init__(
        self,
        *,
        table: str,
        reference: str = "previous",
        profile_name: str | None = None,
        reference_partition: str | None = None,
        columns: Sequence[str] | None = None,
        exclude: Sequence[str] = (),
        thresholds: Mapping[str, tuple[float, float]] | None = None,
        default_thresholds: tuple[float, float] = (0.1, 0.25),
        tests: Mapping[str, str] | None = None,
        mode: str = "fail",
        profile_table: str | None = None,
        ok_branch: str | Sequence[str] | None = None,
        drift_branch: str | Sequence[str] | None = None,
        batch_size: int = 100_000,
        feature_store_conn_id: str = FeatureStoreHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from airflow_mlops.drift.check import REFERENCES
        from airflow_mlops.drift.stats import check_thresholds

        owner = type(self).__name__
        self.columns, self.exclude = _checked_columns(owner, table, columns, exclude)
        self.reference = check_choice(reference, "reference", owner, REFERENCES)
        self.mode = check_choice(mode, "mode", owner, MODES)
        if reference == "profile" and not profile_name:
            raise ArgumentError("DriftCheckOperator(reference='profile') needs a profile_name.")
        if reference == "partition" and not reference_partition:
            raise ArgumentError(
                "DriftCheckOperator(reference='partition') needs a reference_partition."
            )
        if mode == "branch" and not (ok_branch and drift_branch):
            raise ArgumentError(
                "DriftCheckOperator(mode='branch') needs both ok_branch and drift_branch."
            )
        for column, pair in {**(thresholds or {}), "(default)": default_thresholds}.items():
            check_thresholds(pair, what=f"DriftCheckOperator (column {column!r})")
        self.table = table
        self.profile_name = profile_name
        self.profile_table = None
        if profile_table is not None:
            self.profile_table = _table_name(owner, "profile_table", profile_table)
        self.reference_partition = reference_partition
        self.thresholds = {k: tuple(v) for k, v in (thresholds or {}).items()}
        self.default_thresholds = tuple(default_thresholds)
        self.tests = dict(tests or {})
        self.ok_branch = ok_branch
        self.drift_branch = drift_branch
        self.batch_size = check_int(batch_size, "batch_size", owner)
        self.feature_store_conn_id = feature_store_conn_id
        self.drift_asset = feature_table_asset(f"{table}_drift", feature_store_conn_id)
        if self.drift_asset not in self.outlets:
            self.add_outlets([self.drift_asset])
        self.drift_report_url = ""

    def execute_partition(self, context: Context, partition: str) -> Any:
        from airflow_mlops.drift.check import DriftCheckRequest, check_partition, write_report

        store = FeatureStoreHook(self.feature_store_conn_id).get_store()
        request = DriftCheckRequest(
            table=self.table,
            partition=partition,
            reference=self.reference,
            profile_name=self.profile_name,
            profile_table=self.profile_table,
            reference_partition=self.reference_partition,
            columns=self.columns,
            exclude=self.exclude,
            thresholds=self.thresholds,
            default_thresholds=self.default_thresholds,
            tests=self.tests,
            batch_size=self.batch_size,
        )
        report = check_partition(store, request, generated_by=self.run_identity(context))
        if report is None:
            raise AirflowSkipException(
                f"Table {self.table!r} has no partition before {partition} to compare "
                "with: nothing to check yet (the first day of a table)."
            )
        self.drift_report_url = write_report(store, report)
        summary = self._summary(report)
        context["outlet_events"][self.drift_asset].extra = {
            "partition": partition,
            "status": summary["status"],
            "summary": summary["summary"],
        }
        return self._decide(context, report, summary)

    def _summary(self, report: DriftReport) -> dict[str, Any]:
        """The XCom summary (no histograms), logged."""
        drifted = [c["name"] for c in report["columns"] if c["status"] != "ok"]
        self.log.info(
            "Drift %s for %s/ds=%s vs %s: %s; columns not ok: %s. Report: %s",
            report["status"],
            self.table,
            report["partition"],
            report["reference"],
            report["summary"],
            ", ".join(drifted) or "none",
            self.drift_report_url,
        )
        return {
            "table": self.table,
            "partition": report["partition"],
            "status": report["status"],
            "summary": report["summary"],
            "reference": report["reference"],
            "report": self.drift_report_url,
            "columns": {
                c["name"]: {
                    "status": c["status"],
                    "psi": c["psi"],
                    "p_value_adjusted": c["p_value_adjusted"],
                }
                for c in report["columns"]
            },
        }

    def _decide(self, context: Context, report: DriftReport, summary: dict[str, Any]) -> Any:
        drifted = report["status"] == "fail"
        if self.mode == "branch":
            branch = self.drift_branch if drifted else self.ok_branch
            context["ti"].xcom_push(key="drift", value=summary)
            self.do_branch(context, branch)
            return branch
        if drifted and self.mode == "fail":
            raise AirflowFailException(
                f"Drift check failed for {self.table}/ds={summary['partition']}: "
                f"{summary['summary']}. Report: {self.drift_report_url}"
            )
        if drifted and self.mode == "soft_fail":
            context["ti"].xcom_push(key="drift", value=summary)
            raise AirflowSkipException(
                f"Drift in {self.table}/ds={summary['partition']}: downstream skipped. "
                f"Report: {self.drift_report_url}"
            )
        if report["status"] != "ok":
            self.log.warning("Drift %s in %s: %s", report["status"], self.table, summary["summary"])
        return summary
