"""Two processes publish the same partition (or promote the same alias) at the same instant,
as a manual rerun racing a backfill does, while readers keep reading.

Local disk: the ``flock`` serialises them; both succeed, one after the other, and the
partition (alias) ends at one whole version with both in its history. Object stores (no
lock; emulated by :mod:`tests.reliability.object_store`): last writer wins; the partition
(alias) still ends at one whole version, but the other writer's version can be missing from
history, and its files stay until ``ORPHAN_GRACE``. Readers never fail either way.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import pyarrow.compute as pc
import pytest

from airflow_mlops.models.registry import ModelRegistry
from airflow_mlops.store.feature_store import FeatureStore
from tests.reliability.crash_harness import (
    Inconsistent,
    Readers,
    WriterHost,
    hidden_temps,
    run_together,
    walk,
)
from tests.reliability.object_store import UPLOAD_MARK, object_store_filesystem
from tests.reliability.writers import MODEL, OUTPUT, rows_for, small_model, tagged_batches

if TYPE_CHECKING:
    from pathlib import Path

    import pyarrow as pa

pytestmark = pytest.mark.slow

TABLE, DAY, ROUNDS, VERSIONS = "race", "2026-01-05", 12, 8


def tag_of(table: pa.Table) -> int:
    tags = pc.unique(table.column("version_tag")).to_pylist()
    if len(tags) != 1 or table.num_rows != rows_for(tags[0]):
        raise Inconsistent(f"tags {tags[:5]}, {table.num_rows} rows")
    return int(tags[0])


@pytest.mark.parametrize(
    "object_store", [pytest.param(False, id="local-flock"), pytest.param(True, id="object-store")]
)
def test_two_publishes_of_one_partition_end_in_one_whole_version(
    tmp_path: Path, object_store: bool
) -> None:
    root = tmp_path / "store"
    filesystem = object_store_filesystem() if object_store else None
    store = FeatureStore(str(root), keep_versions=3, retention_grace=0.5, filesystem=filesystem)
    store.publish_partition(TABLE, DAY, tagged_batches(0))
    readers = Readers({"api": lambda: tag_of(store.read_partition(TABLE, DAY)) and None})
    both_kept = 0
    with (
        WriterHost(
            "tests.reliability.writers:feature_publisher",
            root=str(root),
            table=TABLE,
            day=DAY,
            keep=3,
            grace=0.5,
            object_store=object_store,
        ) as host,
        readers,
    ):
        for round_ in range(1, ROUNDS + 1):
            pair = {2 * round_ - 1, 2 * round_}
            run_together(host, *pair)
            current = tag_of(store.read_partition(TABLE, DAY))
            kept = {
                tag_of(store.read_partition(TABLE, DAY, version=v))
                for v in store.list_versions(TABLE, DAY)
            }
            assert current in pair, (round_, current)
            both_kept += pair <= kept

    summary = f"{ROUNDS} rounds, both versions kept in {both_kept}; reads: {readers.summary()}"
    print(summary)
    assert readers.findings() == {}, summary
    assert readers.tallies["api"].good > ROUNDS, summary
    versions_dir = root / TABLE / "_versions" / f"ds={DAY}"
    ref = json.loads((root / TABLE / "_refs" / f"ds={DAY}.json").read_text())
    unreferenced = set(os.listdir(versions_dir)) - {*ref["history"], *ref["retired"]}
    uploads = [p for p in walk(root) if p.name.startswith(UPLOAD_MARK)]
    assert uploads == []
    if object_store:
        # last writer wins: a lost ref update drops the other version from history; its
        # files are only deleted after ORPHAN_GRACE (a concurrent writer may still need them)
        assert len(unreferenced) == ROUNDS - both_kept, (summary, ref, sorted(unreferenced))
    else:
        assert both_kept == ROUNDS, summary
        assert unreferenced == set(), summary
        assert hidden_temps(root / TABLE, root / TABLE / "_refs") == []


@pytest.mark.parametrize(
    "object_store", [pytest.param(False, id="local-flock"), pytest.param(True, id="object-store")]
)
def test_two_promotes_of_one_alias_end_at_one_version(tmp_path: Path, object_store: bool) -> None:
    root = tmp_path / "registry"
    filesystem = object_store_filesystem() if object_store else None
    registry = ModelRegistry(str(root), filesystem=filesystem)
    model, contract = small_model()
    for _ in range(VERSIONS):
        registry.register(MODEL, model, input_contract=contract, output=OUTPUT)
    registry.promote(MODEL, "champion", "v0001")
    alias_file = root / MODEL / "_aliases" / "champion.json"

    def check_champion() -> None:
        version = registry.resolve(MODEL, "champion")
        registry.artifact_bytes(MODEL, version)
        state = json.loads(alias_file.read_text())
        if state["history"][-1] != state["version"]:
            raise Inconsistent(f"alias state {state}")

    readers = Readers({"champion": check_champion})
    both_kept = 0
    with (
        WriterHost(
            "tests.reliability.writers:alias_promoter", root=str(root), object_store=object_store
        ) as host,
        readers,
    ):
        for round_ in range(ROUNDS):
            pair = [2 + round_ % (VERSIONS - 1), 2 + (round_ + 1) % (VERSIONS - 1)]
            run_together(host, *pair)
            history = json.loads(alias_file.read_text())["history"]
            assert history[-1] in {f"v{tag:04d}" for tag in pair}, (round_, history)
            both_kept += sorted(history[-2:]) == sorted(f"v{tag:04d}" for tag in pair)

    summary = (
        f"{ROUNDS} rounds, both promotes in history in {both_kept}; reads: {readers.summary()}"
    )
    print(summary)
    assert readers.findings() == {}, summary
    assert readers.tallies["champion"].good > ROUNDS, summary
    assert [p for p in walk(root) if p.name.startswith(UPLOAD_MARK)] == []
    if not object_store:  # serialised: neither promote is lost
        assert both_kept == ROUNDS, summary
        assert hidden_temps(root / MODEL / "_aliases") == []
