"""``airflow-mlops migrate``: a parquet-format store copied into Delta tables, every kept
version with its id, manifest and content sha256, the current one current."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa
import pytest

from airflow_mlops.cli.main import main
from airflow_mlops.exceptions import ArgumentError, ChecksumMismatchError
from airflow_mlops.store.feature_store import FeatureStore
from airflow_mlops.store.migrate import migrate_store
from tests.store.support import DAY, make_batches

if TYPE_CHECKING:
    from pathlib import Path

NEXT_DAY = "2026-01-06"


@pytest.fixture
def source(tmp_path: Path) -> FeatureStore:
    """Two tables; one partition with three versions, rolled back to the second; a column
    widened from int32 to int64 between days."""
    store = FeatureStore(str(tmp_path / "old"))
    for rows in (3, 5, 7):
        store.publish_partition("features", DAY, make_batches(rows), max_rows_per_file=2)
    store.rollback("features", DAY)
    narrow = pa.record_batch({"k": pa.array([1, 2], pa.int32())})
    store.publish_partition("scores", DAY, [narrow])
    store.publish_partition("scores", NEXT_DAY, [pa.record_batch({"k": pa.array([3], pa.int64())})])
    return store


def test_every_kept_version_moves_with_its_manifest(source: FeatureStore, tmp_path: Path) -> None:
    target = FeatureStore(str(tmp_path / "new"), table_format="delta")

    migrated = migrate_store(source, target)

    assert [(m.table, m.partition, len(m.versions)) for m in migrated] == [
        ("features", DAY, 3),
        ("scores", DAY, 1),
        ("scores", NEXT_DAY, 1),
    ]
    for table in ("features", "scores"):
        assert target.list_partitions(table) == source.list_partitions(table)
        for day in source.list_partitions(table):
            assert target.list_versions(table, day) == source.list_versions(table, day)
            assert target.manifest(table, day) == source.manifest(table, day)
            for version in source.list_versions(table, day):
                old = source.manifest(table, day, version=version)
                assert target.verify(table, day, version=version) == old
            assert target.read_partition(table, day).equals(
                source.read_partition(table, day).cast(target.read_partition(table, day).schema)
            )
    assert target.read_partition("features", DAY).num_rows == 5  # the rollback's version
    frame = pl.scan_delta(str(tmp_path / "new" / "scores")).sort("k").collect()
    assert frame["k"].to_list() == [1, 2, 3]
    assert frame.schema["k"] == pl.Int64


def test_a_second_run_commits_nothing(source: FeatureStore, tmp_path: Path) -> None:
    target = FeatureStore(str(tmp_path / "new"), table_format="delta")
    migrate_store(source, target)

    again = migrate_store(source, target)

    assert [m.versions for m in again] == [(), (), ()]


def test_a_damaged_source_version_is_not_copied(source: FeatureStore, tmp_path: Path) -> None:
    manifest = source.manifest("scores", NEXT_DAY)
    path = tmp_path / "old" / "scores" / "_versions" / f"ds={NEXT_DAY}" / manifest["version"]
    damaged = path / manifest["files"][0]["path"]
    damaged.write_bytes(damaged.read_bytes()[:-4] + b"XXXX")
    target = FeatureStore(str(tmp_path / "new"), table_format="delta")

    with pytest.raises(ChecksumMismatchError, match=manifest["files"][0]["path"]):
        migrate_store(source, target)

    assert NEXT_DAY not in target.list_partitions("scores")


@pytest.mark.parametrize(
    ("formats", "message"),
    [
        pytest.param(
            ("delta", "delta"), "converts a 'parquet' store into a 'delta' one", id="from"
        ),
        pytest.param(("parquet", "parquet"), "Got 'parquet' → 'parquet' instead", id="to"),
    ],
)
def test_only_parquet_to_delta(tmp_path: Path, formats: tuple[str, str], message: str) -> None:
    old = FeatureStore(str(tmp_path / "a"), table_format=formats[0])
    new = FeatureStore(str(tmp_path / "b"), table_format=formats[1])
    with pytest.raises(ArgumentError, match=message):
        migrate_store(old, new)


def test_the_same_root_is_refused(tmp_path: Path) -> None:
    old = FeatureStore(str(tmp_path / "a"))
    with pytest.raises(ArgumentError, match="Migrate into a new root"):
        migrate_store(old, FeatureStore(str(tmp_path / "a"), table_format="delta"))


def test_the_command(
    source: FeatureStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = str(tmp_path / "new")

    status = main(["--root", source.root, "migrate", "--to", new, "--json"])

    assert status == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["current"] for r in rows] == [
        source.manifest(r["table"], r["partition"])["version"] for r in rows
    ]
    assert main(["--root", new, "--table-format", "delta", "versions", "features", DAY]) == 0
    listed = capsys.readouterr().out
    assert all(version in listed for version in source.list_versions("features", DAY))
