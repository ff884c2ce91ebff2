"""Drift checks on the feature store: profile a partition, check one against a reference.

The engine behind :class:`~airflow_mlops.operators.BuildDriftProfileOperator` and
:class:`~airflow_mlops.operators.DriftCheckOperator`, usable without Airflow. Profiles are
stored beside their table (``profile-<name>.json``), reports beside the partition they
check (``drift_report.json`` and ``drift_report.html``), as the store's sidecars.

.. code-block:: python

    request = DriftCheckRequest(table="customer_features", partition="2026-01-04")
    report = check_partition(store, request, generated_by={"by": "notebook"})
    if report is not None:
        print(report["status"], write_report(store, report))
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_mlops.drift.compare import compare
from airflow_mlops.drift.profile import ProfileBuilder, ReferenceProfile
from airflow_mlops.drift.report import render_html, render_json
from airflow_mlops.exceptions import ArgumentError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    import pyarrow as pa

    from airflow_mlops.drift.compare import DriftReport
    from airflow_mlops.store.feature_store import FeatureStore

REFERENCES = ("previous", "partition", "profile")
REPORT_JSON = "drift_report.json"
REPORT_HTML = "drift_report.html"


def profile_name(name: str) -> str:
    """The sidecar file a named profile is stored in."""
    return f"profile-{name}.json"


@dataclass(frozen=True)
class DriftCheckRequest:
    """One partition of a table to check against a reference.

    :param table: the feature (or scores) table.
    :param partition: the day to check (``YYYY-MM-DD``).
    :param reference: ``"previous"`` (the latest partition before ``partition``),
        ``"partition"`` (``reference_partition``) or ``"profile"`` (the stored
        ``profile_name``).
    :param profile_table: the table the profile is stored beside (default: ``table``), e.g.
        the training table when live serving inputs are checked against training data.
    :param columns: columns to check (default: all but ``exclude``).
    :param exclude: columns not checked (entity keys, ids).
    :param thresholds: column → ``(warn, fail)`` PSI thresholds.
    :param default_thresholds: ``(warn, fail)`` for other columns.
    :param tests: column → test name, overriding the choice by type.
    :param batch_size: rows per batch read (the memory bound).
    """

    table: str
    partition: str
    reference: str = "previous"
    profile_name: str | None = None
    reference_partition: str | None = None
    columns: Sequence[str] | None = None
    profile_table: str | None = None
    exclude: Sequence[str] = ()
    thresholds: Mapping[str, Sequence[float]] = field(default_factory=dict)
    default_thresholds: Sequence[float] = (0.1, 0.25)
    tests: Mapping[str, str] = field(default_factory=dict)
    batch_size: int = 100_000


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


def build_profile(
    store: FeatureStore,
    table: str,
    partition: str,
    *,
    columns: Sequence[str] | None = None,
    exclude: Sequence[str] = (),
    batch_size: int = 100_000,
    exact: bool = False,
) -> ReferenceProfile:
    """A reference profile of one partition, built batch by batch.

    :param columns: columns to profile (default: all but ``exclude``).
    :param exclude: columns left out (entity keys, ids).
    :param batch_size: rows per batch read (the memory bound).
    :param exact: keep every value (see :class:`~airflow_mlops.drift.profile.ProfileBuilder`).
    """
    builder = ProfileBuilder(exact=exact)
    for batch in _read(store, table, partition, columns, exclude, batch_size):
        builder.update(batch)
    return builder.finish()


def save_profile(store: FeatureStore, table: str, name: str, profile: ReferenceProfile) -> str:
    """Store ``profile`` beside ``table`` as ``name``; the path it was written to."""
    return store.write_sidecar(table, profile_name(name), profile.to_json().encode())


def load_profile(store: FeatureStore, table: str, name: str) -> ReferenceProfile:
    """The profile stored beside ``table`` as ``name``.

    :raises PartitionNotFoundError: when no such profile is stored.
    :raises ArgumentError: when the stored profile is damaged or not a profile.
    """
    text = store.read_sidecar(table, profile_name(name))
    try:
        return ReferenceProfile.from_json(text.decode("utf-8", errors="replace"))
    except ArgumentError as exc:
        raise ArgumentError(f"Drift profile {name!r} of table {table!r}: {exc}") from exc


def _reference(
    store: FeatureStore, request: DriftCheckRequest
) -> tuple[ReferenceProfile, dict[str, str]] | None:
    """The request's reference profile and how the report names it, e.g.
    ``{"kind": "partition", "partition": "2026-01-03"}``; ``None`` when the reference is
    ``"previous"`` and the table has no partition before the checked one."""
    if request.reference == "profile":
        assert request.profile_name is not None
        table = request.profile_table or request.table
        profile = load_profile(store, table, request.profile_name)
        return profile, {"kind": "profile", "name": request.profile_name, "table": table}
    if request.reference == "partition":
        day = str(request.reference_partition)
    else:
        earlier = [p for p in store.list_partitions(request.table) if p < request.partition]
        if not earlier:
            return None
        day = earlier[-1]
    profile = build_profile(
        store,
        request.table,
        day,
        columns=request.columns,
        exclude=request.exclude,
        batch_size=request.batch_size,
    )
    return profile, {"kind": "partition", "partition": day}


def check_partition(
    store: FeatureStore, request: DriftCheckRequest, *, generated_by: Mapping[str, Any]
) -> DriftReport | None:
    """Compare the request's partition with its reference: the drift report.

    :param generated_by: who checked, recorded in the report (e.g. the task's run identity).
    :returns: the report (see :func:`~airflow_mlops.drift.compare.compare`) with ``table``,
        ``partition``, ``reference``, ``generated_by`` and ``created_at`` (UTC); ``None``
        when the reference is ``"previous"`` and there is no earlier partition.
    :raises PartitionNotFoundError: when the partition or the reference is missing.
    :raises ContractError: when a column's type no longer matches the reference's.
    :raises EmptyInputError: when the partition has no rows.
    """
    reference = _reference(store, request)
    if reference is None:
        return None
    profile, named = reference
    report = compare(
        profile,
        _read(
            store,
            request.table,
            request.partition,
            request.columns,
            request.exclude,
            request.batch_size,
        ),
        thresholds=request.thresholds,
        default_thresholds=request.default_thresholds,
        tests=request.tests,
    )
    return {
        **report,
        "table": request.table,
        "partition": request.partition,
        "reference": named,
        "generated_by": dict(generated_by),
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
    }


def write_report(store: FeatureStore, report: DriftReport) -> str:
    """Store ``report`` as JSON and HTML beside its partition; the HTML report's URI."""
    table, partition = report["table"], report["partition"]
    store.write_sidecar(table, REPORT_JSON, render_json(report).encode(), partition=partition)
    store.write_sidecar(table, REPORT_HTML, render_html(report).encode(), partition=partition)
    return store.sidecar_uri(table, REPORT_HTML, partition=partition)
