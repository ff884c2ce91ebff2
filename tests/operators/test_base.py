"""PartitionedOperator: which partition a run writes, and the error edge to Airflow."""

from __future__ import annotations

import datetime as dt
import errno
import pickle
import re
import sqlite3
from concurrent.futures.process import BrokenProcessPool
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import duckdb
import pyarrow as pa
import pytest
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from airflow_mlops.exceptions import (
    AirflowMlopsError,
    ArgumentError,
    ChecksumMismatchError,
    ConcurrentPublishError,
    ContractError,
    EmptyInputError,
    ModelLoadError,
    ModelNotFoundError,
    ModelVersionMismatchError,
    PartitionError,
    PartitionNotFoundError,
    ScoringError,
    ServingUnavailableError,
    SourceConfigurationError,
    SourceConnectionError,
    SourceQueryError,
    StoreAccessError,
    StoreCorruptionError,
    StoreError,
    TableNameError,
    TransformError,
    is_retryable,
)
from airflow_mlops.operators.base import (
    PartitionedOperator,
    partitions_to_process,
    published_partitions,
)
from tests.operators.support import DAG_ID, RUN_ID, render_and_execute

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context


class RecordingOperator(PartitionedOperator):
    """Returns the partition it ran for and its rendered text, or raises ``error``."""

    template_fields: Sequence[str] = ("text",)

    def __init__(
        self, *, text: str = "", error: BaseException | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.text = text
        self.error = error

    def execute_partition(self, context: Context, partition: str) -> dict[str, str]:
        if self.error is not None:
            raise self.error
        return {"partition": partition, "text": self.text}


def day(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(f"{text}T03:00:00+00:00")


@pytest.mark.parametrize(
    ("operator_kwargs", "context_kwargs", "expected"),
    [
        pytest.param(
            {"partition": "2026-01-01"},
            {"params": {"partition": "2026-01-02"}},
            "2026-01-01",
            id="argument-beats-param",
        ),
        pytest.param(
            {},
            {"params": {"partition": "2026-01-02"}, "logical_date": day("2026-03-01")},
            "2026-01-02",
            id="param-beats-logical-date",
        ),
        pytest.param(
            {},
            {"params": {"partition": ""}, "logical_date": day("2026-01-05")},
            "2026-01-04",
            id="empty-param-is-ignored",
        ),
        pytest.param(
            {},
            {"params": {"partition": "None"}, "logical_date": day("2026-01-05")},
            "2026-01-04",
            id="param-rendered-None-is-ignored",
        ),
        pytest.param({}, {"logical_date": day("2026-01-05")}, "2026-01-04", id="default-lag-1"),
        pytest.param(
            {"partition_lag_days": 0},
            {"logical_date": day("2026-01-05")},
            "2026-01-05",
            id="lag-0",
        ),
        pytest.param(
            {"partition_lag_days": 7},
            {"logical_date": day("2026-01-05")},
            "2025-12-29",
            id="lag-crosses-year",
        ),
        pytest.param(
            {},
            {"logical_date": day("2026-01-05"), "run_after": day("2026-03-01")},
            "2026-01-04",
            id="logical-date-beats-run-after",
        ),
        pytest.param(
            {"partition_lag_days": 2},
            {"logical_date": None, "run_after": day("2026-03-01")},
            "2026-02-27",
            id="run-after-when-no-logical-date",
        ),
    ],
)
def test_partition_resolution_precedence(make_context, operator_kwargs, context_kwargs, expected):
    operator = RecordingOperator(task_id="t", text="{{ partition }}", **operator_kwargs)
    context = make_context(**context_kwargs)

    result = render_and_execute(operator, context)

    assert result == {"partition": expected, "text": expected}
    assert context["partition"] == expected


def _asset_events(*partitions: str) -> dict[str, list[SimpleNamespace]]:
    return {
        "customer_features": [
            SimpleNamespace(
                extra={"partition": p, "rows": 1},
                timestamp=day("2026-03-01") + dt.timedelta(minutes=i),
            )
            for i, p in enumerate(partitions)
        ]
    }


@pytest.mark.parametrize(
    ("params", "events", "expected"),
    [
        pytest.param({}, ("2026-02-10",), "2026-02-10", id="the-published-partition"),
        pytest.param({}, ("2026-02-10", "2026-02-12"), "2026-02-12", id="newest-event-wins"),
        pytest.param({"partition": "2026-01-01"}, ("2026-02-10",), "2026-01-01", id="param-wins"),
        pytest.param({}, (), "2026-01-04", id="no-events-falls-back-to-the-date"),
    ],
)
def test_asset_triggered_runs_take_the_partition_from_the_event(
    make_context, params, events, expected
):
    context = make_context(params=params, logical_date=None, run_after=day("2026-01-05"))
    context["triggering_asset_events"] = _asset_events(*events)

    result = render_and_execute(RecordingOperator(task_id="t"), context)

    assert result["partition"] == expected


def test_published_partitions_are_unique_and_ordered_by_latest_event(make_context):
    context = make_context()
    context["triggering_asset_events"] = _asset_events("2026-02-11", "2026-02-10", "2026-02-11")
    assert published_partitions(context) == ["2026-02-10", "2026-02-11"]


def test_execute_without_rendering_resolves_the_partition(make_context):
    operator = RecordingOperator(task_id="t")

    result = operator.execute(make_context(logical_date=day("2026-01-05")))

    assert result["partition"] == "2026-01-04"


def test_templates_see_partition_and_macros(make_context):
    operator = RecordingOperator(
        task_id="t", text="{{ macros.ds_add(partition, -6) }}..{{ partition }}"
    )

    result = render_and_execute(operator, make_context(logical_date=day("2026-01-05")))

    assert result["text"] == "2025-12-29..2026-01-04"


def test_run_without_any_date_or_param_cannot_choose_a_partition(make_context):
    operator = RecordingOperator(task_id="t")
    context = make_context(logical_date=None, run_after=None)

    with pytest.raises(AirflowFailException, match=re.escape("Cannot choose a partition")):
        render_and_execute(operator, context)


def test_malformed_partition_param_fails_without_retry(make_context):
    operator = RecordingOperator(task_id="t")
    context = make_context(params={"partition": "2026-13-01"})

    with pytest.raises(AirflowFailException, match=re.escape("'2026-13-01'")):
        render_and_execute(operator, context)


@pytest.mark.parametrize(
    "partition",
    [
        pytest.param("2026-1-4", id="not-zero-padded"),
        pytest.param("2026-02-30", id="no-such-day"),
        pytest.param("yesterday", id="word"),
        pytest.param("2026-01-04T00:00:00", id="timestamp"),
        pytest.param("", id="empty"),
    ],
)
def test_malformed_partition_argument_is_refused_at_init(partition):
    with pytest.raises(
        PartitionError,
        match=re.escape(f"Partition must be a date written YYYY-MM-DD. Got {partition!r} instead."),
    ):
        RecordingOperator(task_id="t", partition=partition)


def test_non_string_partition_argument_is_refused_with_partition_error():
    with pytest.raises(PartitionError, match=re.escape("Got 20260104 instead.")):
        RecordingOperator(task_id="t", partition=20260104)  # type: ignore[arg-type]


def test_templated_partition_argument_is_accepted_at_init():
    operator = RecordingOperator(task_id="t", partition="{{ params.day }}")

    assert operator.partition == "{{ params.day }}"


def test_templated_partition_argument_is_rendered(make_context):
    operator = RecordingOperator(task_id="t", partition="{{ params.day }}")

    result = render_and_execute(operator, make_context(params={"day": "2026-01-02"}))

    assert result["partition"] == "2026-01-02"


@pytest.mark.parametrize(
    "lag",
    [
        pytest.param(-1, id="negative"),
        pytest.param("1", id="string"),
        pytest.param(1.5, id="float"),
        pytest.param(None, id="none"),
        pytest.param(True, id="bool"),
    ],
)
def test_bad_partition_lag_days_is_refused(lag):
    with pytest.raises(
        ArgumentError,
        match=re.escape(
            "The 'partition_lag_days' parameter of RecordingOperator must be an int >= 0. "
            f"Got {lag!r} instead."
        ),
    ):
        RecordingOperator(task_id="t", partition_lag_days=lag)


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(ArgumentError("bad argument"), id="argument"),
        pytest.param(PartitionError("bad day"), id="partition"),
        pytest.param(TableNameError("bad table"), id="table-name"),
        pytest.param(ContractError("bad schema", missing_columns=["a"]), id="contract"),
        pytest.param(EmptyInputError("no rows"), id="empty-input"),
        pytest.param(SourceQueryError("bad query"), id="source-query"),
        pytest.param(SourceConfigurationError("no such file"), id="source-configuration"),
        pytest.param(StoreCorruptionError("damaged ref"), id="store-corruption"),
        pytest.param(StoreAccessError("permission denied"), id="store-access"),
        pytest.param(PartitionNotFoundError("no partition"), id="partition-not-found"),
        pytest.param(TransformError("bad transform"), id="transform"),
        pytest.param(
            ChecksumMismatchError("tampered", path="p", expected="a", actual="b"), id="checksum"
        ),
        pytest.param(ModelNotFoundError("no model"), id="model-not-found"),
        pytest.param(ModelLoadError("cannot unpickle"), id="model-load"),
        pytest.param(ModelVersionMismatchError("sklearn 0.1"), id="model-version-mismatch"),
        pytest.param(ScoringError("predict_proba raised"), id="scoring"),
        pytest.param(pa.ArrowInvalid("bad cast"), id="foreign-arrow-invalid"),
        pytest.param(pa.ArrowTypeError("bad type"), id="foreign-arrow-type"),
        pytest.param(KeyError("column"), id="foreign-key-error"),
        pytest.param(RuntimeError("a bug"), id="foreign-runtime-error"),
        pytest.param(pickle.UnpicklingError("bad pickle"), id="foreign-unpickling"),
        pytest.param(duckdb.ConversionException("bad value"), id="foreign-duckdb"),
        pytest.param(sqlite3.OperationalError("no such table: t"), id="foreign-sqlite3"),
        pytest.param(FileNotFoundError(2, "No such file", "/s/x.parquet"), id="foreign-missing"),
        pytest.param(PermissionError(13, "Permission denied", "/s"), id="foreign-permission"),
    ],
)
def test_non_retryable_error_fails_without_retry(make_context, error):
    operator = RecordingOperator(task_id="t", error=error)

    with pytest.raises(
        AirflowFailException, match=re.escape(f"{type(error).__name__}: {error}")
    ) as excinfo:
        render_and_execute(operator, make_context())

    assert excinfo.value.__cause__ is error
    assert not is_retryable(error)


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(StoreError("disk full"), id="store"),
        pytest.param(ConcurrentPublishError("another writer committed first"), id="concurrent"),
        pytest.param(SourceConnectionError("server gone"), id="source-connection"),
        pytest.param(OSError(errno.ENOSPC, "No space left on device"), id="foreign-os-error"),
        pytest.param(pa.ArrowIOError("S3 timeout"), id="foreign-arrow-io"),
        pytest.param(ConnectionResetError("reset by peer"), id="foreign-connection"),
        pytest.param(TimeoutError("timed out"), id="foreign-timeout"),
        pytest.param(MemoryError(), id="foreign-memory"),
        pytest.param(BrokenProcessPool("a worker died"), id="foreign-broken-pool"),
        pytest.param(AirflowSkipException("skipped"), id="airflow-skip"),
        pytest.param(AirflowFailException("failed"), id="airflow-fail"),
    ],
)
def test_retryable_and_airflow_errors_propagate_unchanged(make_context, error):
    operator = RecordingOperator(task_id="t", error=error)

    with pytest.raises(type(error)) as excinfo:
        render_and_execute(operator, make_context())

    assert excinfo.value is error


def test_every_package_error_class_is_classified():
    """A new class must be added to one of the lists above (and docs/operators.md)."""
    retryable = {StoreError, ConcurrentPublishError, SourceConnectionError, ServingUnavailableError}
    classes = {AirflowMlopsError, *_subclasses(AirflowMlopsError)}
    assert {c for c in classes if c.retryable} == retryable


def _subclasses(cls: type) -> set[type]:
    return {sub for direct in cls.__subclasses__() for sub in {direct, *_subclasses(direct)}}


def test_run_identity_names_dag_run_task_and_try(make_context):
    operator = RecordingOperator(task_id="t")

    identity = operator.run_identity(make_context(task_id="t", try_number=2))

    assert identity == {"dag_id": DAG_ID, "run_id": RUN_ID, "task_id": "t", "try_number": 2}


@pytest.mark.parametrize(
    ("params", "events", "expected"),
    [
        pytest.param(
            {},
            ("2026-02-10", "2026-02-12"),
            ["2026-02-10", "2026-02-12"],
            id="every-published-partition",
        ),
        pytest.param({"partition": "2026-01-01"}, ("2026-02-10",), ["2026-01-01"], id="param"),
        pytest.param({}, (), ["2026-01-04"], id="the-run-date"),
    ],
)
def test_partitions_to_process(make_context, params, events, expected):
    context = make_context(params=params, logical_date=None, run_after=day("2026-01-05"))
    context["triggering_asset_events"] = _asset_events(*events)
    assert partitions_to_process(context) == expected
