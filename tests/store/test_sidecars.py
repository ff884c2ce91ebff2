"""Sidecars: files kept beside a table or a partition, replaced atomically."""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

import pyarrow.parquet as pq
import pytest

from airflow_mlops.exceptions import ArgumentError, PartitionNotFoundError
from tests.store.support import DAY, make_batches

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_mlops.store.feature_store import FeatureStore


def test_sidecars_sit_beside_tables_and_partitions(store: FeatureStore, root: Path) -> None:
    store.publish_partition("t", DAY, make_batches(3))
    path = store.write_sidecar("t", "drift_report.html", b"<html>1</html>", partition=DAY)
    store.write_sidecar("t", "drift_report.html", b"<html>2</html>", partition=DAY)
    assert store.read_sidecar("t", "drift_report.html", partition=DAY) == b"<html>2</html>"
    assert store.sidecar_uri("t", "drift_report.html", partition=DAY) == f"file://{path}"
    store.write_sidecar("t", "profile.json", b"{}")
    assert store.read_sidecar("t", "profile.json") == b"{}"
    # a writer killed between its temp file and the rename leaves the temp: the next removes it
    sidecars = root / "t" / "_sidecars"
    (sidecars / ".profile.json.tmp-0badc0de").write_bytes(b"{")
    (sidecars / f"ds={DAY}" / ".drift_report.html.tmp-0badc0de").write_bytes(b"<ht")
    store.write_sidecar("t", "profile.json", b"{}")
    store.write_sidecar("t", "drift_report.html", b"<html>3</html>", partition=DAY)
    assert sorted(p.name for p in sidecars.iterdir()) == [f"ds={DAY}", "profile.json"]
    assert os.listdir(sidecars / f"ds={DAY}") == ["drift_report.html"]
    assert store.list_partitions("t") == [DAY]
    assert pq.read_table(store.partition_path("t", DAY)).num_rows == 3
    with pytest.raises(PartitionNotFoundError, match=re.escape("No 'missing.json' is stored")):
        store.read_sidecar("t", "missing.json")
    with pytest.raises(ArgumentError, match="sidecar name"):
        store.write_sidecar("t", "../escape", b"x")
