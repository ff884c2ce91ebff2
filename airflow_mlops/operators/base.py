"""What every operator of the package shares: the run's partition and the error edge."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, Param
from airflow.sdk.exceptions import AirflowFailException

from airflow_mlops.checks import argument_error, check_int
from airflow_mlops.exceptions import is_retryable
from airflow_mlops.partition import partition_for_run, validate_partition

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    import jinja2
    from airflow.sdk import Context


def partition_param(
    description: str = "The day to (re)build. Empty: the day before the run's date.",
    title: str = "Partition date",
) -> Param:
    """The ``partition`` run param: a date picker in the trigger form, empty by default."""
    return Param(None, type=["null", "string"], format="date", title=title, description=description)


@contextmanager
def fail_fast() -> Iterator[None]:
    """Turn every non-retryable error into ``AirflowFailException`` (the task fails, no retry).

    :func:`~airflow_mlops.exceptions.is_retryable` decides, for the package's errors and
    foreign ones alike (a pyarrow ``ArrowInvalid`` or a ``KeyError`` fails fast, an
    ``OSError`` retries). Retryable errors and Airflow's own exceptions (skip, defer,
    fail, timeouts) pass through unchanged.
    """
    try:
        yield
    except Exception as exc:
        if is_retryable(exc) or _is_airflow_exception(exc):
            raise
        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc


def _is_airflow_exception(exc: BaseException) -> bool:
    return type(exc).__module__.split(".", 1)[0] == "airflow"


class PartitionedOperator(BaseOperator):
    """Base of the package's operators: every write is keyed by a partition (a day).

    The partition is, in order: the ``partition`` argument; the run's ``partition`` param
    (the date picker of the trigger form); for asset-triggered runs, the newest
    ``partition`` in the triggering asset events' extra; otherwise ``(logical_date or
    run_after) - partition_lag_days``. It is available to templates as ``{{ partition }}`` — use
    ``{{ macros.ds_add(partition, -6) }}`` for windows. ``{{ ds }}`` is not used: it is
    None for runs triggered without a logical date.

    Errors from the package that running again cannot fix (bad data, schema, model,
    arguments) fail the task without retries; I/O and connection errors stay retryable.

    :param partition: a fixed ``YYYY-MM-DD`` partition, overriding the run's.
    :param partition_lag_days: days between the run's date and its partition (default 1:
        a 03:00 run writes the previous, complete day).
    """

    def __init__(
        self, *, partition: str | None = None, partition_lag_days: int = 1, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if partition is not None and not (isinstance(partition, str) and "{{" in partition):
            partition = validate_partition(partition)
        self.partition = partition
        self.partition_lag_days = check_int(
            partition_lag_days, "partition_lag_days", type(self).__name__, min_value=0
        )

    def non_empty_sql(self, sql: object) -> str:
        """``sql`` if it is a non-empty string (query or ``.sql`` file name)."""
        if not isinstance(sql, str) or not sql.strip():
            raise argument_error(
                "sql", type(self).__name__, "a non-empty query or .sql file name", sql
            )
        return sql

    def resolve_partition(self, context: Context) -> str:
        params = context.get("params") or {}
        dag_run = context.get("dag_run")
        published = published_partitions(context)
        with fail_fast():
            return partition_for_run(
                explicit=self.partition
                or params.get("partition")
                or (published[-1] if published else None),
                logical_date=context.get("logical_date"),
                run_after=getattr(dag_run, "run_after", None),
                lag_days=self.partition_lag_days,
            )

    def render_template_fields(
        self, context: Context, jinja_env: jinja2.Environment | None = None
    ) -> None:
        if isinstance(self.partition, str) and "{{" in self.partition:
            jinja_env = jinja_env or self.get_template_env()
            self.partition = self.render_template(self.partition, context, jinja_env)
        context["partition"] = self.resolve_partition(context)  # type: ignore[typeddict-unknown-key]
        super().render_template_fields(context, jinja_env)

    def execute(self, context: Context) -> Any:
        partition = context.get("partition") or self.resolve_partition(context)
        with fail_fast():
            return self.execute_partition(context, str(partition))

    def staging_name(self, context: Context, name: str) -> str:
        """The staged file name of this task instance (mapped instances get their own)."""
        map_index = getattr(context["ti"], "map_index", -1)
        suffix = f"-{map_index}" if isinstance(map_index, int) and map_index >= 0 else ""
        return f"{name}{suffix}.parquet"

    def execute_partition(self, context: Context, partition: str) -> Any:
        """The operator's work for ``partition``. Subclasses implement this, not ``execute``."""
        raise NotImplementedError

    def run_identity(self, context: Context) -> dict[str, Any]:
        """Who wrote: DAG, run, task and try, for manifests and lineage."""
        ti = context["ti"]
        return {
            "dag_id": ti.dag_id,
            "run_id": ti.run_id,
            "task_id": ti.task_id,
            "try_number": ti.try_number,
        }


def published_partitions(context: Mapping[str, Any]) -> list[str]:
    """The partitions named by the run's triggering asset events, each once, by latest event."""
    events = context.get("triggering_asset_events") or {}
    found: list[tuple[Any, str]] = []
    for asset_events in events.values():
        for event in asset_events:
            partition = (getattr(event, "extra", None) or {}).get("partition")
            if partition:
                found.append((getattr(event, "timestamp", None) or 0, str(partition)))
    newest_last = [p for _, p in sorted(found, key=lambda item: str(item[0]))]
    return list(reversed(dict.fromkeys(reversed(newest_last))))


def partitions_to_process(context: Mapping[str, Any], *, lag_days: int = 1) -> list[str]:
    """Every partition a run should process, for fanning out with ``.expand()``.

    The ``partition`` param if given; else every partition the triggering asset events
    name (an asset-triggered run may gather several publishes); else the run's date minus
    ``lag_days``.
    """
    params = context.get("params") or {}
    dag_run = context.get("dag_run")
    published = [] if params.get("partition") else published_partitions(context)
    if published:
        return [validate_partition(p) for p in published]
    with fail_fast():
        return [
            partition_for_run(
                explicit=params.get("partition"),
                logical_date=context.get("logical_date"),
                run_after=getattr(dag_run, "run_after", None),
                lag_days=lag_days,
            )
        ]
