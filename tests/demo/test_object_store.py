"""demo.object_store: SeaweedFS's S3 gateway, through the real ``weed`` server."""

from __future__ import annotations

import multiprocessing
import os
import re
from typing import TYPE_CHECKING

import psutil
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from airflow_mlops.demo.object_store import SeaweedS3

if TYPE_CHECKING:
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Barrier
    from pathlib import Path

DAY = "2026-01-01"
ROUNDS = 10
ROWS = 50


def test_parquet_round_trip_through_pyarrow(s3_server: SeaweedS3, s3_bucket: str) -> None:
    fs = s3_server.filesystem()
    table = pa.table({"customer_id": [1, 2, 3], "score": [0.1, 0.5, 0.9]})
    path = f"{s3_bucket}/features/ds={DAY}/part-0.parquet"
    pq.write_table(table, path, filesystem=fs)
    listed = fs.get_file_info(pafs.FileSelector(s3_bucket, recursive=True))
    assert [i.path for i in listed if i.type == pafs.FileType.File] == [path]
    assert pq.read_table(path, filesystem=fs).equals(table)


def _rows(writer: str, n: int) -> pa.Table:
    """One write of partition ``DAY``: ``ROWS`` rows tagged with their writer and round."""
    return pa.table(
        {"ds": [DAY] * ROWS, "writer": [writer] * ROWS, "round": [n] * ROWS, "row": range(ROWS)}
    )


def _republish(
    writer: str, uri: str, options: dict[str, str], start: Barrier, results: Queue
) -> None:
    """A spawned writer: republish partition ``DAY`` of ``uri`` ``ROUNDS`` times, each
    round started with the other writer's; put ``(writer, [(round, None or (error type,
    message)), ...])`` on ``results``."""
    from deltalake import CommitProperties, write_deltalake

    outcomes: list[tuple[int, tuple[str, str] | None]] = []
    for n in range(ROUNDS):
        start.wait(timeout=60)
        try:
            write_deltalake(
                uri,
                _rows(writer, n),
                mode="overwrite",
                predicate=f"ds = '{DAY}'",
                partition_by=["ds"],
                storage_options=options,
                commit_properties=CommitProperties(
                    custom_metadata={"writer": writer, "round": str(n)}
                ),
            )
            outcomes.append((n, None))
        except Exception as error:  # the parent asserts on what it was
            outcomes.append((n, (type(error).__name__, str(error))))
    results.put((writer, outcomes))


def test_concurrent_delta_commits_each_land_or_fail_as_a_conflict(
    s3_server: SeaweedS3, s3_bucket: str
) -> None:
    """Two spawned processes republish one partition of one Delta table, round by round
    together: the server's conditional PUTs let exactly one commit take each version, so
    no success is lost and every version's partition holds one whole write.

    The table exists first: two writers *creating* it at once can both commit in delta-rs
    1.6.6, the second without removing the first's rows (a mixed partition).
    """
    from deltalake import DeltaTable
    from deltalake.exceptions import CommitFailedError

    uri, options = f"s3://{s3_bucket}/features", s3_server.storage_options()
    DeltaTable.create(uri, _rows("none", 0).schema, partition_by=["ds"], storage_options=options)
    spawn = multiprocessing.get_context("spawn")  # delta-rs's runtime does not survive fork()
    start, results = spawn.Barrier(2), spawn.Queue()
    writers = [
        spawn.Process(target=_republish, args=(name, uri, options, start, results))
        for name in ("a", "b")
    ]
    for process in writers:
        process.start()
    outcomes = dict(results.get(timeout=120) for _ in writers)
    for process in writers:
        process.join(timeout=30)
        assert process.exitcode == 0

    table = DeltaTable(uri, storage_options=options)
    commits = [c for c in table.history() if c["operation"] == "WRITE"]
    succeeded = {(w, n) for w, rounds in outcomes.items() for n, failed in rounds if not failed}
    failures = [failed for rounds in outcomes.values() for _, failed in rounds if failed]
    assert {(c["writer"], int(c["round"])) for c in commits} == succeeded
    assert len(commits) == len(succeeded) == table.version()
    assert failures, "the writers never overlapped: nothing was tested"
    assert {kind for kind, _ in failures} == {CommitFailedError.__name__}, failures
    for commit in commits:
        table.load_as_version(commit["version"])
        partition = table.to_pyarrow_table(filters=[("ds", "=", DAY)])
        assert partition.drop_columns("ds").sort_by("row") == _rows(
            commit["writer"], int(commit["round"])
        ).drop_columns("ds")


def test_a_wrong_secret_is_refused(s3_server: SeaweedS3, s3_bucket: str) -> None:
    intruder = pafs.S3FileSystem(
        access_key=s3_server.access_key,
        secret_key="not-the-secret",
        region=s3_server.region,
        endpoint_override=s3_server.endpoint,
        scheme="http",
    )
    with pytest.raises(OSError, match="SIGNATURE_DOES_NOT_MATCH"):
        intruder.get_file_info(pafs.FileSelector(s3_bucket))


def test_serves_on_loopback_only(s3_server: SeaweedS3) -> None:
    assert s3_server.pid is not None
    listening = [
        c.laddr
        for c in psutil.Process(s3_server.pid).net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    ]
    assert {address.ip for address in listening} == {"127.0.0.1"}
    assert set(s3_server.ports.values()) < {address.port for address in listening}


def test_start_refuses_a_running_server(s3_server: SeaweedS3) -> None:
    message = f"SeaweedFS runs already on {s3_server.endpoint} (PID {s3_server.pid})."
    with pytest.raises(RuntimeError, match=re.escape(message)):
        s3_server.start()


def test_stop_leaves_no_process_and_no_socket(tmp_path: Path) -> None:
    server = SeaweedS3(tmp_path / "s3").start()
    pid, sockets = server.pid, server.sockets
    assert pid is not None
    assert any(os.path.lexists(path) for path in sockets)
    server.stop()
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # nothing of its process group is left
    assert [path for path in sockets if os.path.lexists(path)] == []
    assert server.pid is None
    server.stop()  # stopping a stopped server does nothing
