"""The Delta feature store on a real S3 server (SeaweedFS, the ``s3_server`` fixture):
publish, read back by the documented readers, roll back, evolve the schema; two processes
racing on one partition lose no update and never mix their rows."""

from __future__ import annotations

import datetime as dt
import multiprocessing
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
import pytest
from deltalake import DeltaTable

from airflow_mlops.exceptions import ArgumentError
from airflow_mlops.io.object_storage import s3_filesystem
from airflow_mlops.store.feature_store import FeatureStore
from tests.store.support import DAY, make_batches

if TYPE_CHECKING:
    import pyarrow.dataset as pads

    from airflow_mlops.demo.object_store import SeaweedS3

ROUNDS = 20


def dataset_of(
    s3_server: SeaweedS3, bucket: str, table: str, version: int | None = None
) -> pads.Dataset:
    """docs/delta.md's pyarrow recipe, on S3: the log read by deltalake, the files by pyarrow."""
    options = s3_server.storage_options()
    delta = DeltaTable(f"s3://{bucket}/features/{table}", version=version, storage_options=options)
    tree = pafs.SubTreeFileSystem(f"{bucket}/features/{table}", s3_filesystem(options))
    return delta.to_pyarrow_dataset(filesystem=tree)


def open_store(s3_server: SeaweedS3, bucket: str) -> FeatureStore:
    return FeatureStore(
        f"s3://{bucket}/features",
        table_format="delta",
        storage_options=s3_server.storage_options(),
    )


def test_a_delta_store_on_s3_publishes_reads_and_rolls_back(
    s3_server: SeaweedS3, s3_bucket: str
) -> None:
    store = open_store(s3_server, s3_bucket)
    first = store.publish_partition("t", DAY, make_batches(10), max_rows_per_file=4)
    wider = [
        batch.append_column("extra", pa.array(["x"] * batch.num_rows)) for batch in make_batches(3)
    ]
    store.publish_partition("t", DAY, wider)

    assert store.read_partition("t", DAY).column_names == ["customer_id", "income", "extra"]
    uri = f"s3://{s3_bucket}/features/t"
    options = s3_server.storage_options()
    day = dt.date.fromisoformat(DAY)
    by_polars = pl.scan_delta(uri, storage_options=options).filter(pl.col("ds") == day).collect()
    assert by_polars["customer_id"].to_list() == [0, 1, 2]
    dataset = store._tables.dataset("t")  # what docs/delta.md's recipe builds
    assert duckdb.from_arrow(dataset).count("*").fetchall() == [(3,)]
    assert [c["operation"] for c in DeltaTable(uri, storage_options=options).history()][
        0
    ] == "WRITE"

    assert store.rollback("t", DAY) == first
    assert store.verify("t", DAY) == first
    restored = store.read_partition("t", DAY)
    assert restored["customer_id"].to_pylist() == list(range(10))
    assert restored["extra"].null_count == 10


def test_storage_options_make_the_pyarrow_filesystem_too(s3_server: SeaweedS3) -> None:
    filesystem = s3_filesystem(s3_server.storage_options())
    assert filesystem.region == s3_server.region
    with pytest.raises(ArgumentError, match="plain http: set AWS_ALLOW_HTTP=true"):
        s3_filesystem({"AWS_ENDPOINT_URL": s3_server.endpoint})


def _publish_rounds(
    bucket: str, options: dict[str, str], writer: int, barrier: Any, results: Any
) -> None:
    """A spawned writer: each round, wait for the other, then publish rows tagged
    ``(round, writer)``; report which rounds committed and which lost."""
    store = FeatureStore(f"s3://{bucket}/features", table_format="delta", storage_options=options)
    for round_ in range(ROUNDS):
        barrier.wait()
        rows = pa.record_batch({"round": [round_] * 50, "writer": [writer] * 50})
        try:
            manifest = store.publish_partition("race", DAY, [rows])
            results.put((writer, round_, "won", manifest["version"]))
        except Exception as exc:  # noqa: BLE001 - every loser reports what it got
            results.put((writer, round_, type(exc).__name__, str(exc)[:300]))
        barrier.wait()


def test_two_processes_on_one_partition_lose_no_update(
    s3_server: SeaweedS3, s3_bucket: str
) -> None:
    options = s3_server.storage_options()
    open_store(s3_server, s3_bucket).publish_partition(
        "race", DAY, [pa.record_batch({"round": [-1], "writer": [-1]})]
    )
    context = multiprocessing.get_context("spawn")  # delta-rs does not survive fork()
    barrier, results = context.Barrier(2), context.Queue()
    writers = [
        context.Process(target=_publish_rounds, args=(s3_bucket, options, w, barrier, results))
        for w in (0, 1)
    ]
    for process in writers:
        process.start()
    outcomes = [results.get(timeout=300) for _ in range(2 * ROUNDS)]
    for process in writers:
        process.join(timeout=60)
        assert process.exitcode == 0

    won = {(w, r): version for w, r, outcome, version in outcomes if outcome == "won"}
    lost = [(w, r, outcome, text) for w, r, outcome, text in outcomes if outcome != "won"]
    assert {outcome for _, _, outcome, _ in lost} <= {"ConcurrentPublishError"}, lost[:3]
    assert len(won) >= ROUNDS  # every round has a winner, sometimes both commit in turn
    store = open_store(s3_server, s3_bucket)
    delta = DeltaTable(f"s3://{s3_bucket}/features/race", storage_options=options)
    committed = {
        c["airflow_mlops"]["manifest"]["version"] for c in delta.history() if "airflow_mlops" in c
    }
    assert set(won.values()) <= committed  # no lost update
    for commit in (c for c in delta.history() if "airflow_mlops" in c):
        version = commit["version"]
        rows = dataset_of(s3_server, s3_bucket, "race", version).to_table(["round", "writer"])
        assert len(set(zip(*rows.to_pydict().values(), strict=True))) == 1, version
    final = store.read_partition("race", DAY)
    assert pc.count_distinct(final["writer"]).as_py() == 1
    assert final.num_rows == 50
