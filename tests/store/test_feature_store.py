from __future__ import annotations

import datetime as dt
import errno
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

import airflow_mlops
from airflow_mlops.contract import FeatureContract
from airflow_mlops.exceptions import (
    ArgumentError,
    ChecksumMismatchError,
    ContractError,
    EmptyInputError,
    PartitionError,
    PartitionNotFoundError,
    StoreAccessError,
    StoreCorruptionError,
    StoreError,
    TableNameError,
)
from airflow_mlops.io import parquet
from airflow_mlops.io.parquet import file_sha256
from airflow_mlops.store.feature_store import FeatureStore
from tests.store.support import DAY, make_batches

if TYPE_CHECKING:
    from collections.abc import Iterator

CONTRACT = FeatureContract.from_dict({"customer_id": ("int64", False), "income": "float64"})


def version_dirs(root: Path, table: str = "t", day: str = DAY) -> set[str]:
    return set(os.listdir(root / table / "_versions" / f"ds={day}"))


@pytest.mark.parametrize("store", ["parquet"], indirect=True)  # checks its own files
def test_round_trip_and_manifest(store: FeatureStore, root: Path) -> None:
    seen: list[int] = []
    manifest = store.publish_partition(
        "t", DAY, make_batches(10), contract=CONTRACT, lineage={"dag_id": "d"}, on_batch=seen.append
    )

    table = store.read_partition("t", DAY)
    assert table.schema == CONTRACT.to_arrow_schema()
    assert table.column("customer_id").to_pylist() == list(range(10))
    assert seen == [4, 4, 2]
    assert set(manifest) == {
        "table", "partition", "version", "previous_version", "row_count", "schema", "files",
        "content_sha256", "contract", "lineage", "package_version", "created_at",
    }  # fmt: skip
    assert manifest["table"] == "t"
    assert manifest["partition"] == DAY
    assert manifest["previous_version"] is None
    assert manifest["row_count"] == 10
    assert manifest["schema"][0] == {"name": "customer_id", "type": "int64", "nullable": False}
    assert manifest["contract"] == json.loads(CONTRACT.to_json())
    assert manifest["lineage"] == {"dag_id": "d"}
    assert manifest["package_version"] == airflow_mlops.__version__
    assert dt.datetime.fromisoformat(manifest["created_at"]).utcoffset() == dt.timedelta(0)
    assert store.manifest("t", DAY) == manifest
    version_dir = root / "t" / "_versions" / f"ds={DAY}" / manifest["version"]
    for entry in manifest["files"]:
        sha, size = file_sha256(pafs.LocalFileSystem(), str(version_dir / entry["path"]))
        assert (sha, size) == (entry["sha256"], entry["bytes"])
    assert json.loads((version_dir / "_manifest.json").read_text()) == manifest
    ref = json.loads((root / "t" / "_refs" / f"ds={DAY}.json").read_text())
    assert ref == {"current": manifest["version"], "history": [manifest["version"]], "retired": {}}


def test_iter_batches_and_columns(store: FeatureStore) -> None:
    store.publish_partition("t", DAY, make_batches(10), max_rows_per_file=3)

    batches = list(store.iter_partition_batches("t", DAY, columns=["income"], batch_size=2))

    assert all(b.schema.names == ["income"] and b.num_rows <= 2 for b in batches)
    assert sum(b.num_rows for b in batches) == 10
    assert store.read_partition("t", DAY, columns=["customer_id"]).num_columns == 1
    with pytest.raises(ArgumentError, match=re.escape("Table 't' has no column(s) nope.")):
        store.read_partition("t", DAY, columns=["nope"])


@pytest.mark.parametrize(
    ("rows", "max_rows", "expected"),
    [
        pytest.param(10, 3, [3, 3, 3, 1], id="remainder"),
        pytest.param(8, 4, [4, 4], id="exact"),
        pytest.param(5, 100, [5], id="one-file"),
        pytest.param(0, 3, [0], id="empty"),
    ],
)
def test_files_split_by_max_rows(
    store: FeatureStore, rows: int, max_rows: int, expected: list[int]
) -> None:
    manifest = store.publish_partition(
        "t", DAY, make_batches(rows, per_batch=4), contract=CONTRACT, max_rows_per_file=max_rows
    )

    assert [f["rows"] for f in manifest["files"]] == expected
    assert [f["path"][:10] for f in manifest["files"]] == [
        f"part-{i:05d}" for i in range(len(expected))
    ]
    assert store.read_partition("t", DAY).num_rows == rows


@pytest.mark.parametrize("store", ["parquet"], indirect=True)  # checks its own files
def test_rerun_is_byte_identical(store: FeatureStore, root: Path) -> None:
    first = store.publish_partition("t", DAY, make_batches(10), max_rows_per_file=4)
    second = store.publish_partition("t", DAY, make_batches(10), max_rows_per_file=4)

    assert second["version"] != first["version"]
    assert second["previous_version"] == first["version"]
    assert second["content_sha256"] == first["content_sha256"]
    assert [f["sha256"] for f in second["files"]] == [f["sha256"] for f in first["files"]]
    versions = root / "t" / "_versions" / f"ds={DAY}"
    a = (versions / first["version"] / first["files"][1]["path"]).read_bytes()
    b = (versions / second["version"] / second["files"][1]["path"]).read_bytes()
    assert a == b


def test_retention_keeps_newest_versions(root: Path) -> None:
    store = FeatureStore(str(root), keep_versions=2, retention_grace=0)
    published = [
        store.publish_partition("t", DAY, make_batches(n + 1))["version"] for n in range(4)
    ]

    assert store.list_versions("t", DAY) == published[-2:]
    assert version_dirs(root) == set(published[-2:])


def test_retired_versions_outlive_their_grace_period(root: Path) -> None:
    store = FeatureStore(str(root), keep_versions=2)
    published = [
        store.publish_partition("t", DAY, make_batches(n + 1))["version"] for n in range(4)
    ]
    ref = json.loads((root / "t" / "_refs" / f"ds={DAY}.json").read_text())

    assert store.list_versions("t", DAY) == published[-2:]
    assert sorted(ref["retired"]) == published[:2]
    assert version_dirs(root) == set(published)

    impatient = FeatureStore(str(root), keep_versions=2, retention_grace=0)
    latest = impatient.publish_partition("t", DAY, make_batches(1))["version"]

    assert version_dirs(root) == {published[-1], latest}


@pytest.mark.parametrize("store", ["parquet"], indirect=True)  # checks its own files
def test_rollback_moves_ref_and_symlink(store: FeatureStore, root: Path) -> None:
    old = store.publish_partition("t", DAY, make_batches(3))
    new = store.publish_partition("t", DAY, make_batches(5))
    view = root / "t" / f"ds={DAY}"
    assert os.readlink(view) == f"_versions/ds={DAY}/{new['version']}"

    restored = store.rollback("t", DAY)

    assert restored == old
    assert os.readlink(view) == f"_versions/ds={DAY}/{old['version']}"
    assert store.manifest("t", DAY)["version"] == old["version"]
    assert store.read_partition("t", DAY).num_rows == 3
    assert pq.read_table(view).num_rows == 3
    assert store.list_versions("t", DAY) == [old["version"], new["version"]]
    with pytest.raises(PartitionNotFoundError, match=re.escape("no version before")):
        store.rollback("t", DAY)
    assert store.rollback("t", DAY, to_version=new["version"])["row_count"] == 5
    assert pq.read_table(view).num_rows == 5
    with pytest.raises(PartitionNotFoundError, match=re.escape("has no version 'v1'. Kept")):
        store.rollback("t", DAY, to_version="v1")


def test_read_latest_and_range(store: FeatureStore) -> None:
    for day, rows in (("2026-01-03", 1), ("2026-01-05", 2), ("2026-01-06", 3)):
        store.publish_partition("t", day, make_batches(rows))

    ranged = store.read_range("t", "2026-01-02", "2026-01-05")
    assert store.latest_partition("t") == "2026-01-06"
    assert store.read_latest("t").num_rows == 3
    assert ranged.schema.field("ds").type == pa.date32()
    assert ranged.column("ds").to_pylist() == [dt.date(2026, 1, 3)] + [dt.date(2026, 1, 5)] * 2
    assert store.read_range("t", "2026-01-06", "2026-01-06", columns=["income"]).column_names == [
        "income",
        "ds",
    ]
    with pytest.raises(PartitionNotFoundError, match=re.escape("Latest partitions: 2026-01-06")):
        store.read_range("t", "2026-02-01", "2026-02-03")


def test_listings(store: FeatureStore) -> None:
    store.publish_partition("b", "2026-01-02", make_batches(1))
    store.publish_partition("a", "2026-01-01", make_batches(1))
    store.publish_partition("a", "2026-01-03", make_batches(1))
    Path(store.staging_path("extract", "part.parquet")).mkdir(parents=True)

    assert store.list_tables() == ["a", "b"]
    assert store.list_partitions("a") == ["2026-01-01", "2026-01-03"]
    assert store.list_partitions("unknown") == []
    assert store.latest_partition("unknown") is None


def test_missing_things_are_named(store: FeatureStore) -> None:
    store.publish_partition("t", "2026-01-01", make_batches(1))
    store.publish_partition("t", "2026-01-02", make_batches(1))

    with pytest.raises(
        PartitionNotFoundError,
        match=re.escape("Table 't' has no partition 2026-01-09 in the feature store at ")
        + ".*"
        + re.escape("Latest partitions: 2026-01-02, 2026-01-01."),
    ):
        store.read_partition("t", "2026-01-09")
    with pytest.raises(PartitionNotFoundError, match=re.escape("No table 'x' ") + ".*Tables: t"):
        store.manifest("x", "2026-01-01")
    with pytest.raises(PartitionNotFoundError, match=re.escape("Tables: t.")):
        store.read_latest("x")
    with pytest.raises(PartitionNotFoundError, match=re.escape("has no version 'v0'")):
        store.read_partition("t", "2026-01-01", version="v0")


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("../x", id="parent"),
        pytest.param("/abs", id="absolute"),
        pytest.param("a b", id="space"),
        pytest.param("", id="empty"),
        pytest.param("1abc", id="leading-digit"),
        pytest.param("_staging", id="reserved"),
        pytest.param("x" * 129, id="too-long"),
    ],
)
def test_bad_table_names(store: FeatureStore, name: str) -> None:
    with pytest.raises(TableNameError, match=re.escape(f"Got {name!r} instead.")):
        store.publish_partition(name, DAY, make_batches(1))
    with pytest.raises(TableNameError, match="letters, digits and underscores"):
        store.read_partition(name, DAY)


@pytest.mark.parametrize(
    "partition",
    [
        pytest.param("2026-13-01", id="month-13"),
        pytest.param("20260105", id="compact"),
        pytest.param("../2026-01-05", id="path"),
        pytest.param("yesterday", id="word"),
    ],
)
def test_bad_partitions(store: FeatureStore, partition: str) -> None:
    with pytest.raises(PartitionError, match=re.escape(f"Got {partition!r} instead.")):
        store.publish_partition("t", partition, make_batches(1))
    with pytest.raises(PartitionError):
        store.list_versions("t", partition)


def test_contract_missing_column(store: FeatureStore, root: Path) -> None:
    batch = pa.record_batch({"customer_id": [1, 2]})

    with pytest.raises(ContractError, match=re.escape("table 't' does not match")) as info:
        store.publish_partition("t", DAY, [batch], contract=CONTRACT)

    assert info.value.missing_columns == ["income"]
    assert not (root / "t" / "_refs").exists()


@pytest.mark.parametrize("store", ["parquet"], indirect=True)  # checks its own files
def test_contract_mistyped_column_midway_keeps_previous(store: FeatureStore, root: Path) -> None:
    before = store.publish_partition("t", DAY, make_batches(3), contract=CONTRACT)
    bad = pa.record_batch({"customer_id": ["x"], "income": [1.0]})

    with pytest.raises(ContractError) as info:
        store.publish_partition("t", DAY, [*make_batches(8), bad], contract=CONTRACT)

    assert info.value.mistyped_columns == {"customer_id": ("string", "int64")}
    assert store.manifest("t", DAY) == before
    assert version_dirs(root) == {before["version"]}


def test_schema_mismatch_without_contract(store: FeatureStore) -> None:
    schema = pa.schema([("customer_id", pa.int64()), ("income", pa.float64())])

    with pytest.raises(ContractError, match=re.escape("missing income; unexpected spend")) as info:
        store.publish_partition(
            "t", DAY, [pa.record_batch({"customer_id": [1], "spend": [2.0]})], schema=schema
        )
    assert info.value.unexpected_columns == ["spend"]


def test_partition_column_name_is_reserved(store: FeatureStore) -> None:
    with pytest.raises(ContractError, match=re.escape("column named 'ds'")):
        store.publish_partition("t", DAY, [pa.record_batch({"ds": [1]})])


def test_empty_input(store: FeatureStore) -> None:
    manifest = store.publish_partition("t", DAY, [], contract=CONTRACT)

    assert manifest["row_count"] == 0
    assert store.read_partition("t", DAY).schema == CONTRACT.to_arrow_schema()
    with pytest.raises(EmptyInputError, match=re.escape("Pass schema= or contract=")):
        store.publish_partition("t", DAY, [])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"keep_versions": 0}, "must be an int >= 1. Got 0 instead.", id="zero"),
        pytest.param({"keep_versions": True}, "Got True instead.", id="bool"),
        pytest.param({"retention_grace": -1}, "seconds >= 0. Got -1 instead.", id="grace"),
    ],
)
def test_keep_versions_validated(root: Path, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ArgumentError, match=re.escape(message)):
        FeatureStore(str(root), **kwargs)  # type: ignore[arg-type]


def test_lineage_must_be_json(store: FeatureStore) -> None:
    with pytest.raises(ArgumentError, match=re.escape("must be JSON-serialisable")):
        store.publish_partition("t", DAY, make_batches(1), lineage={"when": object()})


@pytest.mark.parametrize("store", ["parquet"], indirect=True)  # checks its own files
def test_plain_readers_see_only_current_version(store: FeatureStore, root: Path) -> None:
    store.publish_partition("t", "2026-01-04", make_batches(4))
    store.publish_partition("t", DAY, make_batches(7))
    store.publish_partition("t", DAY, make_batches(2, start=100), max_rows_per_file=1)
    table_dir = root / "t"

    direct = pq.read_table(table_dir / f"ds={DAY}")
    dataset = pads.dataset(
        table_dir, format="parquet", partitioning=pads.partitioning(flavor="hive")
    ).to_table()
    glob = str(table_dir / "ds=*" / "*.parquet")
    rows = duckdb.sql(
        f"SELECT ds, customer_id FROM read_parquet('{glob}', hive_partitioning=true) ORDER BY ALL"
    ).fetchall()

    assert direct.column("customer_id").to_pylist() == [100, 101]
    assert dataset.num_rows == 6
    assert [(str(ds), cid) for ds, cid in rows] == [("2026-01-04", i) for i in range(4)] + [
        (DAY, 100),
        (DAY, 101),
    ]
    assert store.partition_path("t", DAY) == str(table_dir / f"ds={DAY}")


def test_file_uri_root(root: Path) -> None:
    store = FeatureStore(root.as_uri())
    store.publish_partition("t", DAY, make_batches(3))

    assert store.root == str(root)
    assert store.read_partition("t", DAY).num_rows == 3
    assert (root / "t" / f"ds={DAY}").is_symlink()


class TestObjectStoreCodePath:
    """A filesystem that is not ``LocalFileSystem``: no symlink, no lock, refs by one PUT."""

    @pytest.fixture
    def store(self, root: Path) -> FeatureStore:
        root.mkdir()
        subtree = pafs.SubTreeFileSystem(str(root), pafs.LocalFileSystem())
        return FeatureStore(
            "bucket/features", filesystem=subtree, keep_versions=2, retention_grace=0
        )

    def test_publish_read_rollback(self, store: FeatureStore, root: Path) -> None:
        first = store.publish_partition("t", DAY, make_batches(3))
        for rows in (5, 6):
            store.publish_partition("t", DAY, make_batches(rows))

        table_dir = root / "bucket" / "features" / "t"
        assert sorted(os.listdir(table_dir)) == ["_refs", "_versions"]
        assert first["version"] not in version_dirs(root / "bucket" / "features")
        assert store.read_partition("t", DAY).num_rows == 6
        assert store.rollback("t", DAY)["row_count"] == 5
        assert store.read_partition("t", DAY).num_rows == 5
        assert store.list_tables() == ["t"]
        path = store.partition_path("t", DAY)
        assert path == f"bucket/features/t/_versions/ds={DAY}/{store.list_versions('t', DAY)[0]}"
        assert pq.read_table(path, filesystem=store.filesystem).num_rows == 5

    def test_recent_orphans_survive_old_ones_go(self, store: FeatureStore, root: Path) -> None:
        versions = root / "bucket" / "features" / "t" / "_versions" / f"ds={DAY}"
        old, recent = "v20000101T000000000000Z-00000000", "v29990101T000000000000Z-00000000"
        for orphan in (old, recent):
            (versions / orphan).mkdir(parents=True)

        current = store.publish_partition("t", DAY, make_batches(1))["version"]

        assert set(os.listdir(versions)) == {recent, current}


@pytest.mark.parametrize("store", ["parquet"], indirect=True)  # checks its own files
def test_leftovers_are_removed(store: FeatureStore, root: Path) -> None:
    store.publish_partition("t", DAY, make_batches(2))
    table_dir = root / "t"
    orphan = table_dir / "_versions" / f"ds={DAY}" / "v20260101T000000000000Z-deadbeef"
    orphan.mkdir()
    (orphan / "part-00000.parquet").write_bytes(b"half a file")
    (table_dir / "_refs" / f".ds={DAY}.json.tmp-0badc0de").write_text("{")
    os.symlink("nowhere", table_dir / f".ds={DAY}.tmp-0badc0de")
    other_day = table_dir / "_refs" / ".ds=2026-01-06.json.tmp-0badc0de"
    other_day.write_text("{")

    current = store.publish_partition("t", DAY, make_batches(3))["version"]

    assert not orphan.exists()
    assert sorted(os.listdir(table_dir / "_refs")) == [other_day.name, f"ds={DAY}.json"]
    assert sorted(p.name for p in table_dir.iterdir()) == [
        "_locks",
        "_refs",
        "_versions",
        f"ds={DAY}",
    ]
    assert current in version_dirs(root)


def test_open_iterator_survives_retention(root: Path) -> None:
    store = FeatureStore(str(root), keep_versions=1)
    store.publish_partition("t", DAY, make_batches(6), max_rows_per_file=2)
    batches: Iterator[pa.RecordBatch] = store.iter_partition_batches("t", DAY, batch_size=1)
    first = next(batches)

    store.publish_partition("t", DAY, make_batches(1, start=50))
    rest = list(batches)

    assert [b.column(0)[0].as_py() for b in [first, *rest]] == list(range(6))
    assert store.read_partition("t", DAY).num_rows == 1


@pytest.mark.parametrize("store", ["parquet"], indirect=True)  # checks its own files
def test_verify(store: FeatureStore, root: Path) -> None:
    manifest = store.publish_partition("t", DAY, make_batches(5), max_rows_per_file=2)
    assert store.verify("t", DAY) == manifest

    damaged = (
        root / "t" / "_versions" / f"ds={DAY}" / manifest["version"] / manifest["files"][1]["path"]
    )
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"X")

    with pytest.raises(
        ChecksumMismatchError, match=re.escape(f"{manifest['files'][1]['path']} has sha256")
    ) as info:
        store.verify("t", DAY)
    assert info.value.retryable is False
    assert info.value.expected == manifest["content_sha256"]
    assert info.value.actual != info.value.expected


@pytest.mark.parametrize("store", ["parquet"], indirect=True)  # checks its own files
def test_path_type_problem_is_a_non_retryable_store_access_error(
    store: FeatureStore, root: Path
) -> None:
    (root / "t" / "_versions").mkdir(parents=True)
    (root / "t" / "_versions" / f"ds={DAY}").write_text("not a directory")

    with pytest.raises(StoreAccessError, match=re.escape(f"ds={DAY}")) as info:
        store.publish_partition("t", DAY, make_batches(1))
    assert not info.value.retryable


def test_disk_full_is_a_retryable_store_error(
    store: FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(parquet, "write_batches", full)
    with pytest.raises(StoreError, match="No space left on device") as info:
        store.publish_partition("t", DAY, make_batches(1))
    assert info.value.retryable


@pytest.mark.parametrize("store", ["parquet"], indirect=True)  # checks its own files
@pytest.mark.parametrize(
    ("damage", "what"),
    [
        pytest.param("_refs/ds={day}.json", "partition ref", id="ref"),
        pytest.param("_versions/ds={day}/{version}/_manifest.json", "manifest", id="manifest"),
    ],
)
def test_damaged_ref_or_manifest_is_a_non_retryable_corruption_error(
    store: FeatureStore, root: Path, damage: str, what: str
) -> None:
    version = store.publish_partition("t", DAY, make_batches(1))["version"]
    (root / "t" / damage.format(day=DAY, version=version)).write_text('{"current": ')

    with pytest.raises(StoreCorruptionError, match=f"The {what} .* is damaged") as info:
        store.read_partition("t", DAY)
    assert not info.value.retryable
