"""SIGKILL the drift operators (a profile beside the table, a JSON and an HTML report beside
the partition, all store sidecars) at seeded random instants while readers read them: every
read is a whole file, and the next normal run cleans up what the killed ones left."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING

import pytest

from airflow_mlops.demo.environment import connection_json
from airflow_mlops.drift.profile import ReferenceProfile
from airflow_mlops.store.feature_store import FeatureStore
from tests.reliability.crash_harness import (
    Inconsistent,
    Readers,
    WriterHost,
    crash_seed,
    hidden_temps,
    run_crash_trials,
    run_together,
)
from tests.reliability.writers import DAY, FEATURES, PROFILE_DAYS, credit_features

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow

SEED = crash_seed(20260107)
#: rows of the profiled days: a profile's row count tells which day it was built from
PROFILE_ROWS = dict(zip(PROFILE_DAYS, (150, 200, 250), strict=True))
JSON, HTML, PROFILE = "drift_report.json", "drift_report.html", "profile-reference.json"


def report_try(store: FeatureStore) -> int:
    """The try that wrote the JSON report; a partial file fails to parse."""
    text = store.read_sidecar(FEATURES, JSON, partition=DAY).decode()
    try:
        return int(json.loads(text)["generated_by"]["try_number"])
    except ValueError as exc:
        raise Inconsistent(f"{JSON}: {exc} in {len(text)} bytes") from exc


def html_try(store: FeatureStore) -> int:
    """The try that wrote the HTML report; it must be whole (ends with ``</html>``)."""
    text = store.read_sidecar(FEATURES, HTML, partition=DAY).decode()
    found = re.search(r"try_number: (\d+)", text)
    if not text.rstrip().endswith("</html>") or not found:
        raise Inconsistent(f"{HTML}: {len(text)} bytes ending {text[-40:]!r}")
    return int(found.group(1))


def check_profile(store: FeatureStore) -> None:
    text = store.read_sidecar(FEATURES, PROFILE).decode()
    try:
        rows = ReferenceProfile.from_json(text).rows
    except ValueError as exc:
        raise Inconsistent(f"{PROFILE}: {exc} in {len(text)} bytes") from exc
    if rows not in PROFILE_ROWS.values():
        raise Inconsistent(f"{PROFILE}: {rows} rows")


def test_sigkilled_drift_operators_never_expose_partial_sidecars(tmp_path: Path) -> None:
    root = tmp_path / "store"
    store = FeatureStore(str(root))
    for day, rows in [*PROFILE_ROWS.items(), (DAY, 300)]:
        store.publish_partition(FEATURES, day, credit_features(rows, seed=rows).to_batches())
    sidecars = root / FEATURES / "_sidecars"
    env = {
        "AIRFLOW_CONN_FEATURE_STORE_DEFAULT": connection_json(
            "feature_store", extra={"root": str(root)}
        )
    }
    mixed_pairs = []

    def debris() -> int:
        # after a kill, a report pair written by two different tries is a mixed report
        mixed_pairs.append(report_try(store) != html_try(store))
        return len(hidden_temps(sidecars, sidecars / f"ds={DAY}"))

    readers = Readers(
        {
            "report_json": lambda: report_try(store) and None,
            "report_html": lambda: html_try(store) and None,
            "profile": lambda: check_profile(store),
        }
    )
    with WriterHost("tests.reliability.writers:drift_reporter", env=env) as host:
        host.warm(1)  # the sidecars exist before the readers start
        with readers:
            stats = run_crash_trials(host, seed=SEED, max_delay=0.2, debris=debris)
        run_together(host, 999_999)  # the next normal run

    summary = (
        f"{stats.summary()}; reads: {readers.summary()}; "
        f"{sum(mixed_pairs)} kills left a JSON and an HTML report of different tries"
    )
    print(summary)
    assert readers.findings() == {}, summary
    assert min(t.good for t in readers.tallies.values()) > stats.trials, summary
    assert stats.publishes > 0, summary
    assert stats.debris > 0, summary
    assert hidden_temps(sidecars, sidecars / f"ds={DAY}") == [], summary
    assert report_try(store) == html_try(store) == 999_999
    check_profile(store)
