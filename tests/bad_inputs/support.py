"""The corpus' two checks: the exact error (type and message), and the store unchanged."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_mlops.exceptions import AirflowMlopsError

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_mlops.store.feature_store import FeatureStore

#: the partition the default run context writes (logical date 2026-01-05, lag 1)
PARTITION = "2026-01-04"


def snapshot(store: FeatureStore, table: str, partition: str = PARTITION) -> dict[str, Any]:
    """What a reader sees of a published partition: version, kept versions, verified content.

    ``verify`` recomputes every file's SHA-256, so a changed byte shows up here.
    """
    manifest = store.verify(table, partition)
    return {
        "version": manifest["version"],
        "versions": store.list_versions(table, partition),
        "content_sha256": manifest["content_sha256"],
        "rows": manifest["row_count"],
        "data_sha256": table_sha256(store.read_partition(table, partition)),
    }


def table_sha256(table: pa.Table) -> str:
    """A digest of a table's schema and values (NaN-safe, unlike comparing rows)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table.combine_chunks())
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()


def raised(call: Callable[[], Any]) -> BaseException:
    """The exception ``call`` raises (the test fails if it returns)."""
    try:
        call()
    except BaseException as exc:  # noqa: BLE001 - the test inspects whatever was raised
        return exc
    pytest.fail("expected an error, but the call returned")


def expect_error(
    call: Callable[[], Any], error: type[BaseException], fragment: str, *, retryable: bool = False
) -> BaseException:
    """Run ``call``; assert it fails with exactly ``error`` whose message has ``fragment``.

    At an operator's edge the package's non-retryable errors become ``AirflowFailException``
    (no retries) carrying the original message; the original is its ``__cause__``.
    Retryable errors pass through unchanged so Airflow retries them.
    """
    exc = raised(call)
    original = exc
    if isinstance(exc, AirflowFailException) and exc.__cause__ is not None:
        original = exc.__cause__
    assert type(original) is error, f"{type(original).__name__}: {original}"
    assert fragment in str(original), str(original)
    assert fragment in str(exc)
    if isinstance(original, AirflowMlopsError):
        assert original.retryable is retryable
    if retryable:
        assert exc is original, "a retryable error must reach Airflow unchanged"
    return original
