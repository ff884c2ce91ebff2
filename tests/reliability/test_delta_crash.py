"""SIGKILL a Delta feature-table publisher at seeded random instants while every documented
reader keeps reading the partition: no read fails, none sees a partial or mixed version, and
a vacuum after the kills leaves only the kept versions' files."""

from __future__ import annotations

import datetime as dt
import os
from typing import TYPE_CHECKING

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pytest
from deltalake import DeltaTable

from airflow_mlops.store.delta import DeltaFeatureTables
from airflow_mlops.store.layout import StoreLayout
from tests.reliability.crash_harness import (
    Inconsistent,
    Readers,
    WriterHost,
    crash_seed,
    run_crash_trials,
)
from tests.reliability.writers import rows_for, tagged_batches

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

pytestmark = pytest.mark.slow

TABLE, DAY, KEEP = "crash", "2026-01-05", 3
GRACE = 2.0  # below the vacuum's hour, so no file a reader listed goes while it reads
SEED = crash_seed(20261201)


def check_version(table: pa.Table, how: str) -> None:
    """One tag in every row, and that tag's row count; else :class:`Inconsistent`."""
    tags = pc.unique(table.column("version_tag")).to_pylist()
    if len(tags) != 1 or table.num_rows != rows_for(tags[0]):
        raise Inconsistent(f"{how}: tags {tags[:5]}, {table.num_rows} rows")


def documented_readers(tables: DeltaFeatureTables) -> dict[str, Callable[[], None]]:
    """The recipes of docs/delta.md, each reading the partition through the Delta log."""
    uri = tables.uri(TABLE)
    day = dt.date.fromisoformat(DAY)
    tree = pafs.SubTreeFileSystem(uri, pafs.LocalFileSystem())

    def ours() -> None:
        check_version(pa.Table.from_batches(list(tables.read_batches(TABLE, DAY))), "ours")

    def pyarrow_dataset() -> None:
        dataset = DeltaTable(uri).to_pyarrow_dataset(filesystem=tree)
        check_version(dataset.to_table(filter=pc.field("ds") == day), "pyarrow")

    def polars() -> None:
        frame = pl.scan_delta(uri).filter(pl.col("ds") == day).collect()
        check_version(frame.to_arrow(), "polars")

    def duckdb_over_arrow() -> None:
        dataset = DeltaTable(uri).to_pyarrow_dataset(filesystem=tree)
        rows = duckdb.from_arrow(dataset).filter(f"ds = DATE '{DAY}'")
        check_version(rows.to_arrow_table(), "duckdb")

    return {
        "ours": ours,
        "pyarrow": pyarrow_dataset,
        "polars": polars,
        "duckdb": duckdb_over_arrow,
    }


def unreferenced(root: Path, tables: DeltaFeatureTables) -> list[str]:
    """Files in the partition's directory no kept version lists: what killed writers left."""
    kept = {
        entry["path"]
        for version in tables.versions(TABLE, DAY)
        for entry in tables.manifest(TABLE, DAY, version=version)["files"]
    }
    return sorted(set(os.listdir(root / TABLE / f"ds={DAY}")) - kept)


def test_sigkilled_delta_publisher_never_exposes_partial_partitions(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    layout = StoreLayout(pafs.LocalFileSystem(), str(root), True)
    tables = DeltaFeatureTables(layout, keep_versions=KEEP, grace=dt.timedelta(seconds=GRACE))
    tables.publish(TABLE, DAY, tagged_batches(0))
    readers = Readers(documented_readers(tables))
    with (
        WriterHost(
            "tests.reliability.writers:delta_publisher",
            root=str(root),
            table=TABLE,
            day=DAY,
            keep=KEEP,
            grace=GRACE,
        ) as host,
        readers,
    ):
        stats = run_crash_trials(
            host, seed=SEED, max_delay=0.6, debris=lambda: len(unreferenced(root, tables))
        )

    final = DeltaFeatureTables(layout, keep_versions=KEEP, grace=dt.timedelta(0)).publish(
        TABLE, DAY, tagged_batches(7)
    )

    summary = f"{stats.summary()}; reads: {readers.summary()}"
    print(summary)
    assert readers.findings() == {}, summary
    assert all(t.retried == 0 for t in readers.tallies.values()), summary
    assert min(t.good for t in readers.tallies.values()) > stats.trials, summary
    assert stats.publishes > 0, summary
    assert stats.mid_publish > stats.trials // 3, summary
    assert stats.debris > 0, summary
    assert tables.versions(TABLE, DAY)[-1] == final["version"]
    assert unreferenced(root, tables) == [], summary
    check_version(pa.Table.from_batches(list(tables.read_batches(TABLE, DAY))), "final")
