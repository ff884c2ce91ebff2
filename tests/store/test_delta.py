"""Feature tables as Delta tables on local disk (store.delta): one commit per publish, the
manifest in the commit, per-partition history, rollback and vacuum, failures that leave
nothing visible — checked with deltalake's own API and with plain readers."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.fs as pafs
import pytest
from deltalake import DeltaTable

from airflow_mlops import __version__
from airflow_mlops.exceptions import (
    ArgumentError,
    ChecksumMismatchError,
    ConcurrentPublishError,
    PartitionNotFoundError,
    StoreError,
)
from airflow_mlops.store.delta import DeltaFeatureTables
from airflow_mlops.store.delta_log import METADATA_KEY, commit_partition, table_schema
from airflow_mlops.store.feature_store import FeatureStore
from airflow_mlops.store.layout import StoreLayout
from tests.store.support import DAY, make_batches

if TYPE_CHECKING:
    from pathlib import Path

NEXT_DAY = "2026-01-06"


def tables_at(root: Path, **options: object) -> DeltaFeatureTables:
    root.mkdir(parents=True, exist_ok=True)
    layout = StoreLayout(pafs.LocalFileSystem(), str(root), True)
    return DeltaFeatureTables(layout, **options)  # type: ignore[arg-type]


@pytest.fixture
def tables(tmp_path: Path) -> DeltaFeatureTables:
    return tables_at(tmp_path / "store")


def read(tables: DeltaFeatureTables, day: str = DAY, **options: object) -> pa.Table:
    return pa.Table.from_batches(list(tables.read_batches("features", day, **options)))  # type: ignore[arg-type]


def test_a_publish_is_one_commit_carrying_its_manifest(tables: DeltaFeatureTables) -> None:
    manifest = tables.publish("features", DAY, make_batches(10), lineage={"run_id": "r1"})

    assert read(tables).to_pydict() == pa.Table.from_batches(make_batches(10)).to_pydict()
    delta = DeltaTable(tables.uri("features"))
    [commit] = [c for c in delta.history() if METADATA_KEY in c]
    assert commit[METADATA_KEY] == {"operation": "publish", "manifest": manifest}
    assert manifest["row_count"] == 10
    assert manifest["lineage"] == {"run_id": "r1"}
    assert manifest["package_version"] == __version__
    assert manifest["previous_version"] is None
    assert delta.partitions() == [{"ds": DAY}]
    assert delta.metadata().partition_columns == ["ds"]


def test_republishing_replaces_exactly_its_partition(tables: DeltaFeatureTables) -> None:
    first = tables.publish("features", DAY, make_batches(10))
    other = tables.publish("features", NEXT_DAY, make_batches(3, start=100))
    second = tables.publish("features", DAY, make_batches(4, start=50))

    assert read(tables)["customer_id"].to_pylist() == [50, 51, 52, 53]
    assert read(tables, NEXT_DAY)["customer_id"].to_pylist() == [100, 101, 102]
    assert second["previous_version"] == first["version"]
    assert tables.manifest("features", NEXT_DAY) == other
    assert tables.partitions("features") == [DAY, NEXT_DAY]
    history = DeltaTable(tables.uri("features")).history()  # the creation, then one per publish
    assert [c["operation"] for c in reversed(history)] == ["CREATE TABLE"] + ["WRITE"] * 3


def test_rerunning_the_same_publish_gives_the_same_content(tables: DeltaFeatureTables) -> None:
    first = tables.publish("features", DAY, make_batches(25))
    second = tables.publish("features", DAY, make_batches(25))

    assert second["content_sha256"] == first["content_sha256"]
    assert second["version"] != first["version"]


def test_rollback_commits_the_earlier_files_again(tables: DeltaFeatureTables) -> None:
    first = tables.publish("features", DAY, make_batches(6))
    second = tables.publish("features", DAY, make_batches(2, start=9))

    restored = tables.rollback("features", DAY)

    assert restored == first
    assert tables.manifest("features", DAY) == first
    assert read(tables)["customer_id"].to_pylist() == list(range(6))
    assert tables.versions("features", DAY) == [first["version"], second["version"]]


def test_rollback_to_a_named_version_and_time_travel_reads(tables: DeltaFeatureTables) -> None:
    versions = [tables.publish("features", DAY, make_batches(n))["version"] for n in (1, 2, 3)]

    assert read(tables, version=versions[0])["customer_id"].to_pylist() == [0]
    tables.rollback("features", DAY, to_version=versions[1])
    assert read(tables)["customer_id"].to_pylist() == [0, 1]
    assert tables.versions("features", DAY) == versions


def test_rollback_without_an_earlier_version_says_so(tables: DeltaFeatureTables) -> None:
    only = tables.publish("features", DAY, make_batches(2))["version"]

    with pytest.raises(PartitionNotFoundError, match=f"has no version before {only} to roll"):
        tables.rollback("features", DAY)
    with pytest.raises(PartitionNotFoundError, match="has no version 'v-nope'. Kept versions"):
        tables.rollback("features", DAY, to_version="v-nope")


def test_vacuum_keeps_the_kept_versions_and_deletes_the_rest(tmp_path: Path) -> None:
    tables = tables_at(tmp_path / "store", keep_versions=2, grace=dt.timedelta(0))
    first, second, third = (tables.publish("features", DAY, make_batches(n)) for n in (1, 2, 3))

    files = sorted(p.name for p in (tmp_path / "store" / "features" / f"ds={DAY}").iterdir())

    assert not any(first["version"] in name for name in files)
    assert any(second["version"] in name for name in files)
    assert tables.versions("features", DAY) == [second["version"], third["version"]]
    assert tables.rollback("features", DAY) == second
    with pytest.raises(PartitionNotFoundError, match=f"has no version '{first['version']}'"):
        tables.rollback("features", DAY, to_version=first["version"])


def test_a_failed_publish_leaves_nothing_visible(tmp_path: Path) -> None:
    tables = tables_at(tmp_path / "store", grace=dt.timedelta(0))
    kept = tables.publish("features", DAY, make_batches(5))

    def failing() -> object:
        yield from make_batches(8)
        raise RuntimeError("the source went away")

    with pytest.raises(RuntimeError, match="the source went away"):
        tables.publish("features", DAY, failing())  # type: ignore[arg-type]

    assert tables.manifest("features", DAY) == kept
    names = [p.name for p in (tmp_path / "store" / "features" / f"ds={DAY}").iterdir()]
    assert names == [kept["files"][0]["path"]]


def test_an_uncommitted_writers_files_are_vacuumed(tmp_path: Path) -> None:
    tables = tables_at(tmp_path / "store", grace=dt.timedelta(0))
    tables.publish("features", DAY, make_batches(5))
    orphan = tmp_path / "store" / "features" / f"ds={DAY}" / "part-00000-vKILLED.parquet"
    orphan.write_bytes(b"a writer killed before its commit")

    assert [path.rsplit("/", 1)[-1] for path in tables.vacuum("features")] == [orphan.name]
    assert not orphan.exists()
    assert read(tables).num_rows == 5


def test_a_commit_that_lost_the_race_is_a_concurrent_publish_error(
    tables: DeltaFeatureTables,
) -> None:
    tables.publish("features", DAY, make_batches(5))
    stale = DeltaTable(tables.uri("features"))
    winner = tables.publish("features", DAY, make_batches(3))
    loser = {**winner, "version": "v-loser"}

    with pytest.raises(ConcurrentPublishError, match="Another writer committed") as raised:
        commit_partition(stale, loser, table_schema(stale), "publish")

    assert raised.value.retryable
    assert tables.manifest("features", DAY) == winner


def test_unknown_table_partition_version_and_column_are_clear(tables: DeltaFeatureTables) -> None:
    with pytest.raises(PartitionNotFoundError, match="No table 'features' in the feature store"):
        tables.manifest("features", DAY)
    assert tables.partitions("features") == []
    tables.publish("features", DAY, make_batches(2))

    with pytest.raises(PartitionNotFoundError, match=f"has no partition {NEXT_DAY} in the"):
        read(tables, NEXT_DAY)
    with pytest.raises(PartitionNotFoundError, match="has no version 'v-old'"):
        read(tables, version="v-old")
    with pytest.raises(ArgumentError, match=r"no column\(s\) salary. Its columns: customer_id, in"):
        read(tables, columns=["salary"])


def test_a_rollback_to_files_that_are_gone_is_refused(tmp_path: Path) -> None:
    tables = tables_at(tmp_path / "store")
    first = tables.publish("features", DAY, make_batches(2))
    tables.publish("features", DAY, make_batches(3))
    (tmp_path / "store" / "features" / f"ds={DAY}" / first["files"][0]["path"]).unlink()

    with pytest.raises(StoreError, match="lost 1 file"):
        tables.rollback("features", DAY)
    assert read(tables).num_rows == 3


def test_verify_names_a_tampered_file(tmp_path: Path) -> None:
    store = FeatureStore(str(tmp_path / "store"), table_format="delta")
    manifest = store.publish_partition("features", DAY, make_batches(9), max_rows_per_file=4)
    assert store.verify("features", DAY) == manifest
    second = tmp_path / "store" / "features" / f"ds={DAY}" / manifest["files"][1]["path"]
    second.write_bytes(second.read_bytes()[:-9] + b"tampered!")

    with pytest.raises(ChecksumMismatchError, match=manifest["files"][1]["path"]):
        store.verify("features", DAY)


def test_vacuum_leaves_the_stores_own_files(tmp_path: Path) -> None:
    store = FeatureStore(str(tmp_path / "store"), table_format="delta", retention_grace=0)
    store.publish_partition("features", DAY, make_batches(2))
    store.write_sidecar("features", "drift_report.json", b"{}", partition=DAY)

    for _ in range(4):
        store.publish_partition("features", DAY, make_batches(2))

    assert store.read_sidecar("features", "drift_report.json", partition=DAY) == b"{}"
    assert len(list((tmp_path / "store" / "features" / f"ds={DAY}").iterdir())) == 3
