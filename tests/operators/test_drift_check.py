"""DriftCheckOperator and BuildDriftProfileOperator on small real partitions of a feature table."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pytest
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
from structlog.testing import capture_logs

from airflow_mlops.drift.profile import ReferenceProfile
from airflow_mlops.exceptions import ArgumentError
from airflow_mlops.hooks.feature_store import feature_table_asset
from airflow_mlops.operators import BuildDriftProfileOperator, DriftCheckOperator
from airflow_mlops.operators.drift_check import DriftReportLink
from airflow_mlops.store.feature_store import FeatureStore
from tests.operators.support import DAG_ID, RUN_ID, render_and_execute

if TYPE_CHECKING:
    from collections.abc import Callable

TABLE = "customer_features"
BASELINE, STEADY, DRIFTED = "2026-01-02", "2026-01-03", "2026-01-04"  # DRIFTED: the run's day
ROWS = 2_000
CHECKED = ["income", "debt", "region"]


def day_of_features(seed: int, *, income_mean: float = 50_000.0) -> pa.Table:
    """One day of features; only ``income``'s distribution depends on the arguments."""
    rng = np.random.default_rng(seed)
    return pa.table(
        {
            "customer_id": pa.array(np.arange(ROWS), pa.int64()),
            "income": rng.normal(income_mean, 10_000, ROWS),
            "debt": rng.gamma(2.0, 10_000, ROWS),
            "region": pa.array(rng.choice(["north", "south", "east", "west"], ROWS).tolist()),
        }
    )


@pytest.fixture
def feature_days(feature_store: FeatureStore) -> FeatureStore:
    """Three published days: a baseline, a steady day like it, and a day where income drifts."""
    for day, table in (
        (BASELINE, day_of_features(1)),
        (STEADY, day_of_features(2)),
        (DRIFTED, day_of_features(3, income_mean=80_000.0)),
    ):
        feature_store.publish_partition(TABLE, day, table.to_batches())
    return feature_store


@pytest.fixture
def run_context(make_context) -> Callable[..., dict[str, Any]]:
    """``make_context`` whose task instance records ``xcom_push`` calls in ``ti.pushed``."""

    def make(**kwargs: Any) -> dict[str, Any]:
        context = make_context(**kwargs)
        ti = context["ti"]
        ti.pushed = []
        ti.xcom_push = lambda key, value: ti.pushed.append((key, value))
        return context

    return make


def check(**kwargs: Any) -> DriftCheckOperator:
    kwargs.setdefault("task_id", "check_drift")
    kwargs.setdefault("table", TABLE)
    kwargs.setdefault("exclude", ["customer_id"])
    return DriftCheckOperator(**kwargs)


def build_profile(**kwargs: Any) -> BuildDriftProfileOperator:
    kwargs.setdefault("task_id", "build_profile")
    kwargs.setdefault("table", TABLE)
    kwargs.setdefault("profile_name", "v1")
    kwargs.setdefault("exclude", ["customer_id"])
    return BuildDriftProfileOperator(**kwargs)


def report_of(store: FeatureStore, partition: str = DRIFTED) -> dict[str, Any]:
    return json.loads(store.read_sidecar(TABLE, "drift_report.json", partition=partition))


def statuses(summary: dict[str, Any]) -> dict[str, str]:
    return {name: column["status"] for name, column in summary["columns"].items()}


# -- references -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("partition", "reference", "status", "column_statuses"),
    [
        pytest.param(
            DRIFTED,
            STEADY,
            "fail",
            {"income": "fail", "debt": "ok", "region": "ok"},
            id="drifted-day-vs-the-day-before",
        ),
        pytest.param(
            STEADY,
            BASELINE,
            "ok",
            {"income": "ok", "debt": "ok", "region": "ok"},
            id="steady-day-vs-the-day-before",
        ),
    ],
)
def test_previous_reference_is_the_latest_earlier_partition(
    feature_days, run_context, partition, reference, status, column_statuses
):
    summary = render_and_execute(
        check(reference="previous", mode="warn"), run_context(params={"partition": partition})
    )

    assert summary["reference"] == {"kind": "partition", "partition": reference}
    assert summary["status"] == status
    assert statuses(summary) == column_statuses
    assert report_of(feature_days, partition)["reference_rows"] == ROWS


def test_previous_reference_on_the_first_day_skips(feature_days, run_context):
    with pytest.raises(
        AirflowSkipException,
        match=re.escape(
            f"Table {TABLE!r} has no partition before {BASELINE} to compare with: nothing to "
            "check yet (the first day of a table)."
        ),
    ):
        render_and_execute(check(), run_context(params={"partition": BASELINE}))


def test_partition_reference_is_rendered_from_params(feature_days, run_context):
    operator = check(
        reference="partition", reference_partition="{{ params.reference_day }}", mode="warn"
    )

    summary = render_and_execute(operator, run_context(params={"reference_day": BASELINE}))

    assert operator.reference_partition == BASELINE
    assert summary["partition"] == DRIFTED
    assert summary["reference"] == {"kind": "partition", "partition": BASELINE}
    assert statuses(summary) == {"income": "fail", "debt": "ok", "region": "ok"}


def test_a_missing_reference_partition_fails_without_retry(feature_days, run_context):
    with pytest.raises(
        AirflowFailException,
        match=re.escape(f"PartitionNotFoundError: Table {TABLE!r} has no partition 2025-12-31"),
    ):
        render_and_execute(
            check(reference="partition", reference_partition="2025-12-31"), run_context()
        )


# -- stored profiles ------------------------------------------------------------------


def test_build_profile_stores_the_named_profile_beside_the_table(feature_days, make_context):
    operator = build_profile(profile_name="{{ params.model_version }}")

    result = render_and_execute(
        operator, make_context(params={"partition": BASELINE, "model_version": "v7"})
    )

    path = Path(result["path"])
    assert result == {
        "table": TABLE,
        "partition": BASELINE,
        "profile": "v7",
        "rows": ROWS,
        "path": str(path),
    }
    assert path.name == "profile-v7.json"
    assert path.parent == Path(feature_days.root) / TABLE / "_sidecars"
    profile = ReferenceProfile.from_json(path.read_text())
    assert profile.rows == ROWS
    assert list(profile.columns) == CHECKED


def test_profile_reference_never_rereads_the_reference_partition(
    feature_days, make_context, run_context, monkeypatch
):
    render_and_execute(build_profile(), make_context(params={"partition": BASELINE}))
    read: list[str] = []
    iter_partition_batches = FeatureStore.iter_partition_batches

    def spy(self, table, partition, **kwargs):
        read.append(partition)
        return iter_partition_batches(self, table, partition, **kwargs)

    monkeypatch.setattr(FeatureStore, "iter_partition_batches", spy)

    summary = render_and_execute(
        check(reference="profile", profile_name="v1", mode="warn"), run_context()
    )

    assert read == [DRIFTED]
    assert summary["reference"] == {"kind": "profile", "name": "v1", "table": "customer_features"}
    assert statuses(summary) == {"income": "fail", "debt": "ok", "region": "ok"}
    assert report_of(feature_days)["reference_rows"] == ROWS


def test_profile_reference_is_kept_when_the_reference_partition_changes(
    feature_days, make_context, run_context
):
    render_and_execute(build_profile(), make_context(params={"partition": BASELINE}))
    # the reference day is republished with the drifted data: the stored profile still holds
    feature_days.publish_partition(
        TABLE, BASELINE, day_of_features(3, income_mean=80_000.0).to_batches()
    )

    summary = render_and_execute(
        check(reference="profile", profile_name="v1", mode="warn"),
        run_context(params={"partition": DRIFTED}),
    )

    assert summary["columns"]["income"]["status"] == "fail"


def test_a_missing_profile_fails_without_retry_naming_profile_and_table(feature_days, run_context):
    with pytest.raises(
        AirflowFailException,
        match=re.escape(
            f"PartitionNotFoundError: No 'profile-v9.json' is stored beside table {TABLE!r}"
        ),
    ):
        render_and_execute(check(reference="profile", profile_name="v9"), run_context())


# -- report, XCom, link, asset event --------------------------------------------------


def test_report_sidecars_are_written_beside_the_partition(feature_days, run_context):
    operator = check(mode="warn")

    summary = render_and_execute(operator, run_context())

    sidecars = Path(feature_days.root) / TABLE / "_sidecars" / f"ds={DRIFTED}"
    assert sorted(p.name for p in sidecars.iterdir()) == ["drift_report.html", "drift_report.json"]
    report = report_of(feature_days)
    assert report["table"] == TABLE
    assert report["partition"] == DRIFTED
    assert report["reference"] == {"kind": "partition", "partition": STEADY}
    assert report["generated_by"] == {
        "dag_id": DAG_ID,
        "run_id": RUN_ID,
        "task_id": "task",
        "try_number": 1,
    }
    assert report["status"] == summary["status"] == "fail"
    assert [c["name"] for c in report["columns"]] == CHECKED
    html = (sidecars / "drift_report.html").read_text(encoding="utf-8")
    assert html.lower().startswith("<!doctype html>")
    assert TABLE in html


def test_xcom_summary_is_small_and_names_the_report(feature_days, run_context):
    summary = render_and_execute(check(mode="warn"), run_context())

    html = Path(feature_days.root) / TABLE / "_sidecars" / f"ds={DRIFTED}" / "drift_report.html"
    assert summary["report"] == f"file://{html}"
    assert summary["table"] == TABLE
    assert summary["partition"] == DRIFTED
    assert summary["summary"] == {"ok": 2, "warn": 0, "fail": 1}
    report = {c["name"]: c for c in report_of(feature_days)["columns"]}
    assert summary["columns"] == {
        name: {
            "status": column["status"],
            "psi": column["psi"],
            "p_value_adjusted": column["p_value_adjusted"],
        }
        for name, column in report.items()
    }
    assert summary["columns"]["income"]["psi"] > 1
    assert summary["columns"]["income"]["p_value_adjusted"] < 1e-6
    assert len(json.dumps(summary)) < 1_500  # no histograms, no samples


def test_the_drift_report_link_opens_the_html_report(feature_days, run_context):
    operator = check(mode="warn")
    link = DriftReportLink()
    ti_key = SimpleNamespace(dag_id=DAG_ID, task_id="check_drift", run_id=RUN_ID, try_number=1)
    assert link.get_link(operator, ti_key=ti_key) == ""

    summary = render_and_execute(operator, run_context())

    assert operator.drift_report_url == summary["report"]
    assert link.get_link(operator, ti_key=ti_key) == summary["report"]
    assert [type(x) for x in operator.operator_extra_links] == [DriftReportLink]


def test_outlet_event_on_the_drift_asset_carries_the_status(feature_days, run_context):
    operator = check(mode="warn")
    context = run_context()

    render_and_execute(operator, context)

    asset = feature_table_asset(f"{TABLE}_drift")
    assert operator.outlets == [asset]
    assert context["outlet_events"][asset].extra == {
        "partition": DRIFTED,
        "status": "fail",
        "summary": {"ok": 2, "warn": 0, "fail": 1},
    }


# -- columns and thresholds -----------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "checked"),
    [
        pytest.param({"exclude": ["customer_id", "debt"]}, ["income", "region"], id="exclude"),
        pytest.param({"columns": ["region", "debt"]}, ["region", "debt"], id="columns"),
        pytest.param(
            {"columns": ["income", "debt", "region"], "exclude": ["income"]},
            ["debt", "region"],
            id="columns-minus-exclude",
        ),
    ],
)
def test_only_the_chosen_columns_are_checked(feature_days, run_context, kwargs, checked):
    summary = render_and_execute(check(mode="warn", **kwargs), run_context())

    assert list(summary["columns"]) == checked
    assert [c["name"] for c in report_of(feature_days)["columns"]] == checked


def test_thresholds_for_an_unchecked_column_fail_without_retry(feature_days, run_context):
    with pytest.raises(
        AirflowFailException,
        match=re.escape(
            "ArgumentError: The 'thresholds' parameter of compare names column(s) the profile "
            "lacks: customer_id. Profiled: income, debt, region."
        ),
    ):
        render_and_execute(check(thresholds={"customer_id": (0.1, 0.2)}), run_context())


def test_an_unknown_column_fails_without_retry_naming_it(feature_days, run_context):
    with pytest.raises(
        AirflowFailException,
        match=re.escape(f"ArgumentError: Table {TABLE!r} has no column(s) nope."),
    ):
        render_and_execute(check(columns=["income", "nope"]), run_context())


@pytest.mark.parametrize(
    ("thresholds", "column_statuses", "status"),
    [
        pytest.param(
            {"income": (50.0, 100.0)},
            {"income": "ok", "debt": "ok", "region": "ok"},
            "ok",
            id="tolerant-income",
        ),
        pytest.param(
            {"income": (0.1, 100.0)},
            {"income": "warn", "debt": "ok", "region": "ok"},
            "warn",
            id="income-warns",
        ),
        pytest.param(
            {"income": (50.0, 100.0), "debt": (0.0, 0.0)},
            {"income": "ok", "debt": "fail", "region": "ok"},
            "fail",
            id="strict-debt",
        ),
    ],
)
def test_per_column_thresholds_decide_the_verdict(
    feature_days, run_context, thresholds, column_statuses, status
):
    summary = render_and_execute(check(mode="warn", thresholds=thresholds), run_context())

    assert statuses(summary) == column_statuses
    assert summary["status"] == status
    assert report_of(feature_days)["columns"][0]["thresholds"] == list(
        thresholds.get("income", (0.1, 0.25))
    )


# -- modes ----------------------------------------------------------------------------


def test_fail_mode_fails_without_retry_and_names_the_report(feature_days, run_context):
    operator = check(mode="fail")

    with pytest.raises(AirflowFailException) as excinfo:
        render_and_execute(operator, run_context())

    assert str(excinfo.value) == (
        f"Drift check failed for {TABLE}/ds={DRIFTED}: {{'ok': 2, 'warn': 0, 'fail': 1}}. "
        f"Report: {operator.drift_report_url}"
    )
    assert operator.drift_report_url.startswith("file://")
    assert operator.drift_report_url.endswith(f"/ds={DRIFTED}/drift_report.html")


def test_soft_fail_mode_skips_and_pushes_the_summary(feature_days, run_context):
    operator = check(mode="soft_fail")
    context = run_context()

    with pytest.raises(
        AirflowSkipException,
        match=re.escape(f"Drift in {TABLE}/ds={DRIFTED}: downstream skipped. Report: file://"),
    ):
        render_and_execute(operator, context)

    [(key, summary)] = context["ti"].pushed
    assert key == "drift"
    assert summary["status"] == "fail"
    assert summary["report"] == operator.drift_report_url


@pytest.mark.parametrize(
    "mode",
    [pytest.param("fail", id="fail"), pytest.param("soft_fail", id="soft-fail")],
)
def test_without_drift_fail_and_soft_fail_modes_return_the_summary(feature_days, run_context, mode):
    context = run_context(params={"partition": STEADY})

    summary = render_and_execute(check(mode=mode), context)

    assert summary["status"] == "ok"
    assert context["ti"].pushed == []


def test_warn_mode_returns_the_summary_and_logs_a_warning(feature_days, run_context):
    with capture_logs() as logs:  # operators log through structlog, not the stdlib
        summary = render_and_execute(check(mode="warn"), run_context())

    assert summary["status"] == "fail"
    warnings = [entry["event"] for entry in logs if entry["log_level"] == "warning"]
    assert warnings == [f"Drift fail in {TABLE}: {{'ok': 2, 'warn': 0, 'fail': 1}}"]


@pytest.mark.parametrize(
    ("partition", "branch", "status"),
    [
        pytest.param(DRIFTED, ["retrain", "alert"], "fail", id="drift"),
        pytest.param(STEADY, "publish_scores", "ok", id="no-drift"),
    ],
)
def test_branch_mode_follows_the_branch_for_the_verdict(
    feature_days, run_context, partition, branch, status
):
    operator = check(mode="branch", ok_branch="publish_scores", drift_branch=["retrain", "alert"])
    branched: list[Any] = []
    operator.do_branch = lambda context, branches: branched.append(branches)
    context = run_context(params={"partition": partition})

    result = render_and_execute(operator, context)

    assert result == branch
    assert branched == [branch]
    [(key, summary)] = context["ti"].pushed
    assert key == "drift"
    assert summary["status"] == status


def test_branch_mode_skips_all_but_the_chosen_branch(feature_days, run_context):
    with DAG(DAG_ID, schedule=None):
        operator = check(mode="branch", ok_branch="publish_scores", drift_branch="retrain")
        operator >> [EmptyOperator(task_id="publish_scores"), EmptyOperator(task_id="retrain")]
    kept: list[Any] = []
    operator.skip_all_except = lambda ti, branch_ids: kept.append(list(branch_ids))
    context = run_context()
    context["ti"].task = operator  # do_branch expands task groups through ti.task.dag

    assert render_and_execute(operator, context) == "retrain"
    assert kept == [["retrain"]]


# -- arguments ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(
            {"mode": "raise"},
            "The 'mode' parameter of DriftCheckOperator must be one of 'fail', 'soft_fail', "
            "'warn', 'branch'. Got 'raise' instead.",
            id="unknown-mode",
        ),
        pytest.param(
            {"reference": "yesterday"},
            "The 'reference' parameter of DriftCheckOperator must be one of 'previous', "
            "'partition', 'profile'. Got 'yesterday' instead.",
            id="unknown-reference",
        ),
        pytest.param(
            {"reference": "profile"},
            "DriftCheckOperator(reference='profile') needs a profile_name.",
            id="profile-without-name",
        ),
        pytest.param(
            {"reference": "partition"},
            "DriftCheckOperator(reference='partition') needs a reference_partition.",
            id="partition-without-reference-partition",
        ),
        pytest.param(
            {"mode": "branch", "ok_branch": "publish_scores"},
            "DriftCheckOperator(mode='branch') needs both ok_branch and drift_branch.",
            id="branch-without-drift-branch",
        ),
        pytest.param(
            {"mode": "branch"},
            "DriftCheckOperator(mode='branch') needs both ok_branch and drift_branch.",
            id="branch-without-branches",
        ),
        pytest.param(
            {"thresholds": {"income": (0.3, 0.1)}},
            "The thresholds of DriftCheckOperator (column 'income') must be a pair (warn, fail) "
            "of numbers with 0 <= warn <= fail. Got (0.3, 0.1) instead.",
            id="warn-above-fail",
        ),
        pytest.param(
            {"default_thresholds": (-0.1, 0.2)},
            "The thresholds of DriftCheckOperator (column '(default)') must be a pair (warn, "
            "fail) of numbers with 0 <= warn <= fail. Got (-0.1, 0.2) instead.",
            id="negative-default",
        ),
        pytest.param(
            {"batch_size": 0},
            "The 'batch_size' parameter of DriftCheckOperator must be an int >= 1. Got 0 instead.",
            id="zero-batch-size",
        ),
    ],
)
def test_bad_arguments_are_refused_at_init(kwargs, message):
    with pytest.raises(ArgumentError, match=re.escape(message)):
        check(**kwargs)


def test_a_threshold_that_is_not_a_pair_is_refused_with_an_argument_error():
    with pytest.raises(ArgumentError, match=re.escape("(column 'income') must be a pair")):
        check(thresholds={"income": 0.2})


def test_a_bad_profile_table_is_refused_when_the_dag_is_parsed() -> None:
    with pytest.raises(ArgumentError, match="DriftCheckOperator profile_table: .*'no such'"):
        check(reference="profile", profile_name="v1", profile_table="no such")
