"""SIGKILL a registry writer (register, promote, rollback) at seeded random instants while
readers resolve aliases and load verified artifacts: an alias always resolves to a
registered version, and the next normal register cleans up what the killed ones left."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import pytest

from airflow_mlops.models.registry import ModelRegistry
from tests.reliability.crash_harness import (
    Inconsistent,
    Readers,
    WriterHost,
    crash_seed,
    hidden_temps,
    run_crash_trials,
)
from tests.reliability.writers import MODEL, OUTPUT, small_model

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow

SEED = crash_seed(20260106)


def check_alias(registry: ModelRegistry, alias: str) -> None:
    """The alias resolves to a version whose record and artifact verify, and is its history's
    last entry."""
    version = registry.resolve(MODEL, alias)
    registry.artifact_bytes(MODEL, version)  # record present, checksum and size match
    path = f"{registry.root}/{MODEL}/_aliases/{alias}.json"
    with open(path, encoding="utf-8") as handle:
        state = json.load(handle)
    if state["history"][-1] != state["version"]:
        raise Inconsistent(f"alias {alias}: {state}")


def check_listing(registry: ModelRegistry) -> None:
    aliases = registry.aliases(MODEL)  # first: a register may complete in between
    versions = registry.list_versions(MODEL)
    if set(aliases) != {"champion", "challenger"} or not set(aliases.values()) <= set(versions):
        raise Inconsistent(f"aliases {aliases}, versions {versions[-5:]}")
    registry.record(MODEL, versions[-1])


def debris(root: Path) -> list[str]:
    """Temp alias or record files, and version dirs without a record."""
    model = root / MODEL
    versions = [d for d in model.iterdir() if d.is_dir() and d.name.startswith("v")]
    return [
        *hidden_temps(model / "_aliases", *versions),
        *(str(d) for d in versions if not (d / "model.json").exists()),
    ]


def test_sigkilled_registry_writer_never_exposes_a_broken_alias(tmp_path: Path) -> None:
    root = tmp_path / "registry"
    registry = ModelRegistry(str(root))
    model, contract = small_model()
    first = registry.register(
        MODEL, model, input_contract=contract, output=OUTPUT, aliases=["champion", "challenger"]
    )
    readers = Readers(
        {
            "champion": lambda: check_alias(registry, "champion"),
            "challenger": lambda: check_alias(registry, "challenger"),
            "listing": lambda: check_listing(registry),
        }
    )
    with (
        WriterHost("tests.reliability.writers:registry_writer", root=str(root)) as host,
        readers,
    ):
        stats = run_crash_trials(host, seed=SEED, max_delay=0.15, debris=lambda: len(debris(root)))

    final = registry.register(
        MODEL, model, input_contract=contract, output=OUTPUT, aliases=["challenger"]
    )
    registry.promote(MODEL, "champion", final["version"])

    summary = f"{stats.summary()}; reads: {readers.summary()}"
    print(summary)
    assert readers.findings() == {}, summary
    assert min(t.good for t in readers.tallies.values()) > stats.trials, summary
    assert stats.publishes > 0, summary
    assert stats.debris > 0, summary
    assert debris(root) == [], summary
    assert registry.aliases(MODEL) == {"champion": final["version"], "challenger": final["version"]}
    versions = registry.list_versions(MODEL)
    assert versions[0] == first["version"]
    assert versions[-1] == final["version"]
    # a version number is never reused: every directory left is a registered version
    assert sorted(os.listdir(root / MODEL)) == sorted(["_aliases", ".registry.lock", *versions])
    registry.load(MODEL)
