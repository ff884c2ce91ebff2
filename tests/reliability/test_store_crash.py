"""SIGKILL a feature-table publisher at seeded random instants while readers keep reading:
no reader ever sees a partial or mixed partition, and the next publish cleans up what the
killed ones left."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from airflow_mlops.store.feature_store import FeatureStore
from tests.reliability.crash_harness import (
    Inconsistent,
    Readers,
    WriterHost,
    crash_seed,
    hidden_temps,
    run_crash_trials,
)
from tests.reliability.writers import rows_for, tagged_batches

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow

TABLE, DAY, KEEP = "crash", "2026-01-05", 3
GRACE = 2.0  # short, so that retired versions are deleted while the readers read
SEED = crash_seed(20260105)


def check_version(table: pa.Table, how: str) -> str | None:
    """One tag in every row, and that tag's row count; else :class:`Inconsistent`."""
    if how == "plain" and table.num_columns == 0 and table.num_rows == 0:
        # pyarrow listed the view, the symlink moved, and every listed file was gone
        # (file names are unique per version): it returns an empty, column-less table
        return "retry"
    tags = pc.unique(table.column("version_tag")).to_pylist()
    if len(tags) != 1 or table.num_rows != rows_for(tags[0]):
        raise Inconsistent(f"{how}: tags {tags[:5]}, {table.num_rows} rows")
    return None


def plain_read(path: str, how: str) -> str | None:
    try:
        return check_version(pq.read_table(path, use_threads=False), how)
    except FileNotFoundError:
        if how == "plain":  # listed a version that a later publish then removed
            return "retry"
        raise


def debris(root: Path, store: FeatureStore) -> list[str]:
    """Version dirs outside the ref's history and temp files: what a killed publish leaves."""
    versions = root / TABLE / "_versions" / f"ds={DAY}"
    orphans = set(os.listdir(versions)) - set(store.list_versions(TABLE, DAY))
    return sorted(orphans) + hidden_temps(root / TABLE, root / TABLE / "_refs")


def test_sigkilled_publisher_never_exposes_partial_partitions(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = FeatureStore(str(root), keep_versions=KEEP, retention_grace=GRACE)
    store.publish_partition(TABLE, DAY, tagged_batches(0))
    view = str(root / TABLE / f"ds={DAY}")
    readers = Readers(
        {
            "api": lambda: check_version(store.read_partition(TABLE, DAY), "api"),
            "plain": lambda: plain_read(view, "plain"),
            "resolved": lambda: plain_read(os.path.realpath(view), "resolved"),
        }
    )
    with (
        WriterHost(
            "tests.reliability.writers:feature_publisher",
            root=str(root),
            table=TABLE,
            day=DAY,
            keep=KEEP,
            grace=GRACE,
        ) as host,
        readers,
    ):
        stats = run_crash_trials(
            host, seed=SEED, max_delay=0.4, debris=lambda: len(debris(root, store))
        )

    final = FeatureStore(str(root), keep_versions=KEEP, retention_grace=0).publish_partition(
        TABLE, DAY, tagged_batches(7)
    )

    summary = f"{stats.summary()}; reads: {readers.summary()}"
    print(summary)
    assert readers.findings() == {}, summary
    # our API and readers of the resolved version dir never even need a retry
    assert readers.tallies["api"].retried == readers.tallies["resolved"].retried == 0, summary
    assert min(t.good for t in readers.tallies.values()) > stats.trials, summary
    assert stats.publishes > 0, summary
    assert stats.mid_publish > stats.trials // 2, summary
    assert stats.debris > 0, summary
    history = store.list_versions(TABLE, DAY)
    assert history[-1] == final["version"]
    assert len(history) <= KEEP
    assert debris(root, store) == [], summary
    assert os.readlink(view) == f"_versions/ds={DAY}/{final['version']}"
    assert check_version(store.read_partition(TABLE, DAY), "final") is None
