"""SIGKILL a Delta feature-table publisher at seeded random instants while every documented
reader keeps reading the partition, on local disk and on a real S3 server: no read fails,
none sees a partial or mixed version, and a vacuum after the kills leaves only the kept
versions' files."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING

import duckdb
import polars as pl
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pytest
from deltalake import DeltaTable

from airflow_mlops.io.object_storage import s3_filesystem
from airflow_mlops.store.feature_store import FeatureStore
from tests.reliability.crash_harness import (
    Inconsistent,
    Readers,
    WriterHost,
    crash_seed,
    run_crash_trials,
)
from tests.reliability.writers import rows_for, tagged_batches

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    import pyarrow as pa
    import pyarrow.dataset as pads

    from airflow_mlops.demo.object_store import SeaweedS3

pytestmark = pytest.mark.slow

TABLE, DAY, KEEP = "crash", "2026-01-05", 3
GRACE = 2.0  # below the vacuum's hour, so no file a reader listed goes while it reads
SEED = crash_seed(20261201)
#: on the S3 server, where each trial costs more (the issue asks for >= 30 there)
S3_TRIALS = 30


class Place:
    """Where the store lives: its URI, delta-rs options, and a pyarrow filesystem."""

    def __init__(self, root: str, options: dict[str, str] | None) -> None:
        self.root, self.options = root, options
        if options:
            self.filesystem: pafs.FileSystem = s3_filesystem(options)
            self.path = root.removeprefix("s3://")
        else:
            self.filesystem, self.path = pafs.LocalFileSystem(), root

    def store(self, grace: float = GRACE) -> FeatureStore:
        return FeatureStore(
            self.root,
            keep_versions=KEEP,
            retention_grace=grace,
            table_format="delta",
            storage_options=self.options,
        )

    def files(self) -> set[str]:
        selector = pafs.FileSelector(f"{self.path}/{TABLE}/ds={DAY}", allow_not_found=True)
        return {info.base_name for info in self.filesystem.get_file_info(selector)}


@pytest.fixture(params=["local", "s3"])
def place(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Place]:
    if request.param == "local":
        (tmp_path / "store").mkdir()
        yield Place(str(tmp_path / "store"), None)
        return
    s3_server: SeaweedS3 = request.getfixturevalue("s3_server")
    bucket = request.getfixturevalue("s3_bucket")
    yield Place(f"s3://{bucket}/store", s3_server.storage_options())


def check_version(table: pa.Table, how: str) -> None:
    """One tag in every row, and that tag's row count; else :class:`Inconsistent`."""
    tags = pc.unique(table.column("version_tag")).to_pylist()
    if len(tags) != 1 or table.num_rows != rows_for(tags[0]):
        raise Inconsistent(f"{how}: tags {tags[:5]}, {table.num_rows} rows")


def documented_readers(place: Place, store: FeatureStore) -> dict[str, Callable[[], None]]:
    """The recipes of docs/delta.md, each reading the partition through the Delta log."""
    uri = f"{place.root}/{TABLE}"
    day = dt.date.fromisoformat(DAY)
    tree = pafs.SubTreeFileSystem(f"{place.path}/{TABLE}", place.filesystem)

    def dataset() -> pads.Dataset:
        return DeltaTable(uri, storage_options=place.options).to_pyarrow_dataset(filesystem=tree)

    def ours() -> None:
        check_version(store.read_partition(TABLE, DAY), "ours")

    def pyarrow_dataset() -> None:
        check_version(dataset().to_table(filter=pc.field("ds") == day), "pyarrow")

    def polars() -> None:
        frame = pl.scan_delta(uri, storage_options=place.options)
        check_version(frame.filter(pl.col("ds") == day).collect().to_arrow(), "polars")

    def duckdb_over_arrow() -> None:
        rows = duckdb.from_arrow(dataset()).filter(f"ds = DATE '{DAY}'")
        check_version(rows.to_arrow_table(), "duckdb")

    return {"ours": ours, "pyarrow": pyarrow_dataset, "polars": polars, "duckdb": duckdb_over_arrow}


def unreferenced(place: Place, store: FeatureStore) -> list[str]:
    """Files in the partition's directory no kept version lists: what killed writers left."""
    kept = {
        entry["path"]
        for version in store.list_versions(TABLE, DAY)
        for entry in store.manifest(TABLE, DAY, version=version)["files"]
    }
    return sorted(place.files() - kept)


def test_sigkilled_delta_publisher_never_exposes_partial_partitions(place: Place) -> None:
    store = place.store()
    store.publish_partition(TABLE, DAY, tagged_batches(0))
    readers = Readers(documented_readers(place, store))
    trials = S3_TRIALS if place.options else None
    with (
        WriterHost(
            "tests.reliability.writers:delta_publisher",
            root=place.root,
            table=TABLE,
            day=DAY,
            keep=KEEP,
            grace=GRACE,
            storage_options=json.dumps(place.options) if place.options else "",
        ) as host,
        readers,
    ):
        stats = run_crash_trials(
            host,
            seed=SEED,
            max_delay=1.0 if place.options else 0.6,
            debris=lambda: len(unreferenced(place, store)),
            **({"trials": trials} if trials else {}),
        )

    final = place.store(grace=0).publish_partition(TABLE, DAY, tagged_batches(7))

    summary = f"{stats.summary()}; reads: {readers.summary()}"
    print(summary)
    assert readers.findings() == {}, summary
    assert all(t.retried == 0 for t in readers.tallies.values()), summary
    assert min(t.good for t in readers.tallies.values()) > stats.trials // 2, summary
    assert stats.publishes > 0, summary
    assert stats.mid_publish > stats.trials // 3, summary
    assert stats.debris > 0, summary
    assert store.list_versions(TABLE, DAY)[-1] == final["version"]
    assert unreferenced(place, store) == [], summary
    check_version(store.read_partition(TABLE, DAY), "final")
