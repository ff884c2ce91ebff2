"""SIGKILL a publisher at random instants while readers keep reading: no reader ever sees a
partial or mixed partition, and the next publish cleans up what the killed one left."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from airflow_mlops.store import FeatureStore

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

pytestmark = pytest.mark.slow

TABLE, DAY, KEEP = "crash", "2026-01-05", 3
GRACE = 2.0  # short, so that retired versions are deleted while the readers read
TRIALS = 25
SEED = 20260105

# Every version carries one tag in all its rows; its row count is a function of the tag,
# so a partial or mixed version is visible to any reader.
PUBLISHER = """
import itertools, sys
import pyarrow as pa
import pyarrow.fs, pyarrow.parquet  # imported before "ready", so kills land in publishes
from airflow_mlops.store import FeatureStore

def rows_for(tag):
    return 700 + (tag * 37) % 1500

root, table, day, first_tag = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
store = FeatureStore(root, keep_versions=int(sys.argv[5]), retention_grace=float(sys.argv[6]))
print("ready", flush=True)
for tag in itertools.count(first_tag):
    total = rows_for(tag)
    batches = (
        pa.record_batch({"version_tag": [tag] * len(xs), "x": xs})
        for xs in (list(range(i, min(i + 97, total))) for i in range(0, total, 97))
    )
    store.publish_partition(table, day, batches, max_rows_per_file=400)
    print("published", tag, flush=True)
"""


def rows_for(tag: int) -> int:
    return 700 + (tag * 37) % 1500


@dataclass
class ReadLog:
    good: int = 0
    vanished: int = 0
    bad: list[str] = field(default_factory=list)


def check(table: pa.Table, how: str, log: ReadLog) -> None:
    if how == "plain" and table.num_columns == 0 and table.num_rows == 0:
        # pyarrow listed the view, the symlink moved, and every listed file was gone
        # (file names are unique per version): it returns an empty, column-less table
        log.vanished += 1
        return
    tags = pc.unique(table.column("version_tag")).to_pylist()
    if len(tags) != 1 or table.num_rows != rows_for(tags[0]):
        log.bad.append(f"{how}: tags {tags[:5]}, {table.num_rows} rows")
    else:
        log.good += 1


def read_forever(
    store: FeatureStore, view: str, stop: threading.Event, logs: dict[str, ReadLog]
) -> None:
    readers: dict[str, Callable[[], pa.Table]] = {
        "api": lambda: store.read_partition(TABLE, DAY),
        "plain": lambda: pq.read_table(view, use_threads=False),
        "resolved": lambda: pq.read_table(os.path.realpath(view), use_threads=False),
    }
    while not stop.is_set():
        for how, read in readers.items():
            try:
                table = read()
            except FileNotFoundError:
                # a plain reader listed a version that a later publish then removed
                logs[how].vanished += 1
                continue
            except Exception as exc:  # noqa: BLE001 - every other failure is a finding
                logs[how].bad.append(f"{how}: {type(exc).__name__}: {exc}")
                continue
            check(table, how, logs[how])
        time.sleep(0.002)  # leave the publisher some CPU on small machines


def start_publisher(root: Path, first_tag: int) -> subprocess.Popen[str]:
    args = [str(root), TABLE, DAY, str(first_tag), str(KEEP), str(GRACE)]
    process = subprocess.Popen(
        [sys.executable, "-c", PUBLISHER, *args], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


def test_sigkilled_publisher_never_exposes_partial_partitions(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = FeatureStore(str(root), keep_versions=KEEP, retention_grace=GRACE)
    store.publish_partition(
        TABLE, DAY, [pa.record_batch({"version_tag": [0] * rows_for(0), "x": range(rows_for(0))})]
    )
    versions_dir = root / TABLE / "_versions" / f"ds={DAY}"
    logs = {"api": ReadLog(), "plain": ReadLog(), "resolved": ReadLog()}
    stop = threading.Event()
    reader = threading.Thread(
        target=read_forever, args=(store, str(root / TABLE / f"ds={DAY}"), stop, logs)
    )
    reader.start()
    schedule = random.Random(SEED)
    published = orphans_after_kill = 0
    try:
        for trial in range(1, TRIALS + 1):
            process = start_publisher(root, first_tag=trial * 1000)
            time.sleep(schedule.uniform(0.0, 0.5))
            process.kill()
            output, _ = process.communicate()
            published += output.count("published")
            history = set(store.list_versions(TABLE, DAY))
            orphans_after_kill += bool(set(os.listdir(versions_dir)) - history)
    finally:
        stop.set()
        reader.join()

    final = FeatureStore(str(root), keep_versions=KEEP, retention_grace=0).publish_partition(
        TABLE, DAY, [pa.record_batch({"version_tag": [7] * rows_for(7), "x": range(rows_for(7))})]
    )

    summary = f"{logs}, {published} publishes, {orphans_after_kill} kills mid-publish"
    assert [log.bad for log in logs.values()] == [[], [], []], summary
    # our API and readers of the resolved version dir never even need a retry
    assert logs["api"].vanished == logs["resolved"].vanished == 0, summary
    assert min(log.good for log in logs.values()) > TRIALS, summary
    assert published > 0, summary
    assert orphans_after_kill > 0, summary
    history = store.list_versions(TABLE, DAY)
    assert history[-1] == final["version"]
    assert len(history) <= KEEP
    assert set(os.listdir(versions_dir)) == set(history)
    hidden = [
        name
        for directory in (root / TABLE, root / TABLE / "_refs")
        for name in os.listdir(directory)
        if name.startswith(".")
    ]
    assert hidden == []
    assert os.readlink(root / TABLE / f"ds={DAY}") == f"_versions/ds={DAY}/{final['version']}"
    final_log = ReadLog()
    check(store.read_partition(TABLE, DAY), "final", final_log)
    assert final_log.good == 1
    print(summary)
