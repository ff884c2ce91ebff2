"""Drift check operators: build a reference profile; compare a partition with a reference."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink, BranchMixIn
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_mlops.checks import check_int
from airflow_mlops.exceptions import ArgumentError
from airflow_mlops.hooks.feature_store import FeatureStoreHook, feature_table_asset
from airflow_mlops.operators.base import PartitionedOperator

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    import pyarrow as pa
    from airflow.sdk import BaseOperator, Context
    from airflow.sdk.types import TaskInstanceKey

    from airflow_mlops.drift.compare import DriftReport
    from airflow_mlops.drift.profile import ReferenceProfile
    from airflow_mlops.store.feature_store import FeatureStore

MODES = ("fail", "soft_fail", "warn", "branch")
REFERENCES = ("previous", "partition", "profile")
REPORT_JSON = "drift_report.json"
REPORT_HTML = "drift_report.html"


def profile_name(name: str) -> str:
    """The sidecar file a named profile is stored in."""
    return f"profile-{name}.json"


class DriftReportLink(BaseOperatorLink):
    """The task instance's "Drift report" button: the HTML report beside the partition."""

    name = "Drift report"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        return str(getattr(operator, "drift_report_url", "") or "")


def _check_table_and_columns(
    operator: str, table: object, columns: object, exclude: object
) -> None:
    """Refuse a table name that is not an identifier, and a column list given as a string."""
    from airflow_mlops.store.feature_store import validate_table_name

    try:
        validate_table_name(table)
    except ValueError as exc:
        raise ArgumentError(f"{operator} table: {exc}") from exc
    for name, value in (("columns", columns), ("exclude", exclude)):
        if isinstance(value, str):
            raise ArgumentError(
                f"The {name!r} parameter of {operator} must be a list of column names. "
                f"Got the string {value!r} instead: write [{value!r}]."
            )


def _read(
    store: FeatureStore,
    table: str,
    partition: str,
    columns: Sequence[str] | None,
    exclude: Sequence[str],
    batch_size: int,
) -> Iterator[pa.RecordBatch]:
    """The checked columns of a partition, batch by batch (unknown columns are an error)."""
    wanted = [c for c in columns if c not in set(exclude)] if columns else None
    for batch in store.iter_partition_batches(
        table, partition, columns=wanted, batch_size=batch_size
    ):
        if wanted is None and exclude:
            batch = batch.select([n for n in batch.schema.names if n not in set(exclude)])
        yield batch


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
        _check_table_and_columns("BuildDriftProfileOperator", table, columns, exclude)
        self.table = table
        self.profile_name = profile_name
        self.columns = list(columns) if columns else None
        self.exclude = list(exclude)
        self.exact = exact
        self.batch_size = check_int(batch_size, "batch_size", type(self).__name__)
        self.feature_store_conn_id = feature_store_conn_id

    def execute_partition(self, context: Context, partition: str) -> dict[str, Any]:
        store = FeatureStoreHook(self.feature_store_conn_id).get_store()
        profile = build_profile(
            store,
            self.table,
            partition,
            self.columns,
            self.exclude,
            self.batch_size,
            exact=self.exact,
        )
        path = store.write_sidecar(
            self.table, profile_name(self.profile_name), profile.to_json().encode()
        )
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


def build_profile(
    store: FeatureStore,
    table: str,
    partition: str,
    columns: Sequence[str] | None,
    exclude: Sequence[str],
    batch_size: int,
    *,
    exact: bool = False,
) -> ReferenceProfile:
    """A reference profile of one partition, built batch by batch."""
    from airflow_mlops.drift.profile import ProfileBuilder

    builder = ProfileBuilder(exact=exact)
    for batch in _read(store, table, partition, columns, exclude, batch_size):
        builder.update(batch)
    return builder.finish()


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
        ok_branch: str | Sequence[str] | None = None,
        drift_branch: str | Sequence[str] | None = None,
        batch_size: int = 100_000,
        feature_store_conn_id: str = FeatureStoreHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        _check_table_and_columns("DriftCheckOperator", table, columns, exclude)
        self._check_choice("reference", reference, REFERENCES)
        self._check_choice("mode", mode, MODES)
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
        from airflow_mlops.drift.stats import check_thresholds

        for column, pair in {**(thresholds or {}), "(default)": default_thresholds}.items():
            check_thresholds(pair, what=f"DriftCheckOperator (column {column!r})")
        self.table = table
        self.reference = reference
        self.profile_name = profile_name
        self.reference_partition = reference_partition
        self.columns = list(columns) if columns else None
        self.exclude = list(exclude)
        self.thresholds = {k: tuple(v) for k, v in (thresholds or {}).items()}
        self.default_thresholds = tuple(default_thresholds)
        self.tests = dict(tests or {})
        self.mode = mode
        self.ok_branch = ok_branch
        self.drift_branch = drift_branch
        self.batch_size = check_int(batch_size, "batch_size", type(self).__name__)
        self.feature_store_conn_id = feature_store_conn_id
        self.drift_asset = feature_table_asset(f"{table}_drift", feature_store_conn_id)
        if self.drift_asset not in self.outlets:
            self.add_outlets([self.drift_asset])
        self.drift_report_url = ""

    def _check_choice(self, name: str, value: object, choices: Sequence[str]) -> None:
        if value not in choices:
            raise ArgumentError(
                f"The {name!r} parameter of DriftCheckOperator must be one of "
                f"{', '.join(map(repr, choices))}. Got {value!r} instead."
            )

    def execute_partition(self, context: Context, partition: str) -> Any:
        from airflow_mlops.drift.compare import compare

        store = FeatureStoreHook(self.feature_store_conn_id).get_store()
        profile, reference = self._reference(store, partition)
        report = compare(
            profile,
            _read(store, self.table, partition, self.columns, self.exclude, self.batch_size),
            thresholds=self.thresholds,
            default_thresholds=self.default_thresholds,
            tests=self.tests,
        )
        report = {
            **report,
            "table": self.table,
            "partition": partition,
            "reference": reference,
            "generated_by": self.run_identity(context),
            "created_at": dt.datetime.now(dt.UTC).isoformat(),
        }
        summary = self._publish(store, partition, report)
        context["outlet_events"][self.drift_asset].extra = {
            "partition": partition,
            "status": summary["status"],
            "summary": summary["summary"],
        }
        return self._decide(context, report, summary)

    def _reference(self, store: FeatureStore, partition: str) -> tuple[Any, dict[str, Any]]:
        from airflow_mlops.drift.profile import ReferenceProfile

        if self.reference == "profile":
            assert self.profile_name is not None
            text = store.read_sidecar(self.table, profile_name(self.profile_name))
            try:
                profile = ReferenceProfile.from_json(text.decode("utf-8", errors="replace"))
            except ArgumentError as exc:
                raise ArgumentError(
                    f"Drift profile {self.profile_name!r} of table {self.table!r}: {exc}"
                ) from exc
            return profile, {
                "kind": "profile",
                "name": self.profile_name,
            }
        if self.reference == "partition":
            day = str(self.reference_partition)
        else:
            earlier = [p for p in store.list_partitions(self.table) if p < partition]
            if not earlier:
                raise AirflowSkipException(
                    f"Table {self.table!r} has no partition before {partition} to compare "
                    "with: nothing to check yet (the first day of a table)."
                )
            day = earlier[-1]
        profile = build_profile(store, self.table, day, self.columns, self.exclude, self.batch_size)
        return profile, {"kind": "partition", "partition": day}

    def _publish(self, store: FeatureStore, partition: str, report: DriftReport) -> dict:
        from airflow_mlops.drift.report import render_html, render_json

        store.write_sidecar(
            self.table, REPORT_JSON, render_json(report).encode(), partition=partition
        )
        store.write_sidecar(
            self.table, REPORT_HTML, render_html(report).encode(), partition=partition
        )
        self.drift_report_url = store.sidecar_uri(self.table, REPORT_HTML, partition=partition)
        drifted = [c["name"] for c in report["columns"] if c["status"] != "ok"]
        self.log.info(
            "Drift %s for %s/ds=%s vs %s: %s; columns not ok: %s. Report: %s",
            report["status"],
            self.table,
            partition,
            report["reference"],
            report["summary"],
            ", ".join(drifted) or "none",
            self.drift_report_url,
        )
        return {
            "table": self.table,
            "partition": partition,
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

    def _decide(self, context: Context, report: DriftReport, summary: dict) -> Any:
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
