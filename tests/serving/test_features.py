"""FeatureIndex: a verified partition in memory, looked up by key in request order."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pytest

from airflow_mlops.exceptions import ChecksumMismatchError, ContractError, PartitionNotFoundError
from airflow_mlops.serving.features import FeatureIndex
from airflow_mlops.store.feature_store import FeatureStore

if TYPE_CHECKING:
    from collections.abc import Callable

TABLE = "customer_features"


@pytest.fixture
def store(tmp_path: Path) -> FeatureStore:
    return FeatureStore(str(tmp_path / "store"))


@pytest.fixture
def publish(store: FeatureStore) -> Callable[..., None]:
    def publish(table: pa.Table, partition: str = "2026-01-30") -> None:
        store.publish_partition(TABLE, partition, table.to_batches(), schema=table.schema)

    return publish


def test_lookup_returns_rows_in_request_order_and_marks_missing_keys(store, publish) -> None:
    publish(pa.table({"customer_id": [30, 10, 20], "income": [3.0, 1.0, 2.0]}), "2026-01-29")
    publish(pa.table({"customer_id": [31, 11, 21], "income": [3.5, 1.5, 2.5]}))

    index = FeatureIndex.load(store, TABLE, "customer_id")
    rows, missing = index.lookup(pa.array([21, 99, 31, 21], pa.int32()))

    assert (index.partition, index.version) == (
        "2026-01-30",
        store.manifest(TABLE, "2026-01-30")["version"],
    )
    assert rows.column("income").to_pylist() == [2.5, None, 3.5, 2.5]
    assert missing.tolist() == [False, True, False, False]
    older = FeatureIndex.load(
        store, TABLE, "customer_id", partition="2026-01-29", columns=["income"]
    )
    assert older.lookup(pa.array([10]))[0].to_pydict() == {"customer_id": [10], "income": [1.0]}


def test_string_keys_are_indexed(store, publish) -> None:
    publish(pa.table({"account": ["b", "a", "c"], "x": [2, 1, 3]}))

    rows, missing = FeatureIndex.load(store, TABLE, "account").lookup(pa.array(["c", "z", "a"]))

    assert rows.column("x").to_pylist() == [3, None, 1]
    assert missing.tolist() == [False, True, False]


@pytest.mark.parametrize(
    ("table", "error", "message"),
    [
        pytest.param(
            pa.table({"customer_id": [1, 2, 1, 3, 3]}),
            ContractError,
            "The key column 'customer_id' of customer_features "
            "ds=2026-01-30 repeats 2 key(s) (e.g. 1, 3): a lookup would "
            "be ambiguous. Publish the table with unique keys.",
            id="repeated",
        ),
        pytest.param(
            pa.table({"customer_id": [1, None]}),
            ContractError,
            "The key column 'customer_id' of customer_features "
            "ds=2026-01-30 has 1 null(s): such rows could never be looked"
            " up. Publish the table with a non-nullable key.",
            id="null",
        ),
        pytest.param(
            pa.table({"id": [1, 2]}),
            ContractError,
            "Feature table 'customer_features' ds=2026-01-30 has no key "
            "column 'customer_id'; pass the table's entity key column as "
            "key_column.",
            id="no-key",
        ),
        pytest.param(
            pa.table({"customer_id": [1, 2, 3], "x": [1.0, float("inf"), -float("inf")]}),
            ContractError,
            "customer_features ds=2026-01-30 has infinite values in 1 feature column(s): x "
            "— x (2 rows). Models are not defined on ±inf",
            id="infinite",
        ),
    ],
)
def test_a_partition_that_cannot_be_indexed_is_refused(
    store, publish, table, error, message
) -> None:
    publish(table)
    with pytest.raises(error, match=re.escape(message)):
        FeatureIndex.load(store, TABLE, "customer_id")


def test_a_missing_table_or_a_damaged_partition_is_refused(store, publish) -> None:
    with pytest.raises(PartitionNotFoundError, match="has no published partition"):
        FeatureIndex.load(store, TABLE, "customer_id")
    publish(pa.table({"customer_id": np.arange(1000), "x": np.arange(1000.0)}))
    (data_file,) = Path(store.partition_path(TABLE, "2026-01-30")).glob("*.parquet")
    content = bytearray(data_file.read_bytes())
    content[100] ^= 0xFF
    data_file.write_bytes(bytes(content))

    with pytest.raises(ChecksumMismatchError, match="failed verification"):
        FeatureIndex.load(store, TABLE, "customer_id")


@pytest.mark.parametrize(
    "shuffled", [pytest.param(False, id="sorted"), pytest.param(True, id="shuffled")]
)
def test_a_million_keys_fit_in_twice_their_columns_and_look_up_fast(
    store, publish, shuffled
) -> None:
    rows = 1_000_000
    keys = np.arange(10, 10 + 3 * rows, 3, dtype=np.int64)
    if shuffled:
        np.random.default_rng(1).shuffle(keys)
    publish(pa.table({"customer_id": keys, "income": keys * 0.5, "age": keys % 90}))

    index = FeatureIndex.load(store, TABLE, "customer_id")
    wanted = np.random.default_rng(2).choice(keys, 500)
    start = time.perf_counter()
    for _ in range(20):
        found, missing = index.lookup(pa.array(wanted))
    per_lookup = (time.perf_counter() - start) / 20

    assert index.nbytes <= 2 * index.data.nbytes
    assert (index.order is None) is not shuffled
    assert not missing.any()
    assert found.column("customer_id").to_numpy().tolist() == wanted.tolist()
    assert found.column("income").to_numpy().tolist() == (wanted * 0.5).tolist()
    assert per_lookup < 0.01, per_lookup  # 500 keys
