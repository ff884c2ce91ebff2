"""A published partition of a feature table held in memory, looked up by entity key.

:class:`FeatureIndex` reads one checksum-verified version of a partition (the latest
partition, or a named one) into Arrow and indexes its key column with a sorted key array:
a lookup is one vectorised :func:`numpy.searchsorted` over the request's keys, then one
``take`` of the rows. A partition already sorted by its key (the usual case: tables are
written in key order) needs no copy of the keys at all; otherwise the index holds the sorted
keys and their row positions (8 + 4 bytes a row below 2**31 rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_mlops.contract import check_finite
from airflow_mlops.exceptions import ContractError, PartitionNotFoundError

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from airflow_mlops.store.feature_store import FeatureStore


@dataclass(frozen=True)
class FeatureIndex:
    """One version of a feature partition, in memory, with a key index.

    Build it with :meth:`load`.

    :param table: the feature table's name.
    :param partition: the partition (``YYYY-MM-DD``).
    :param version: the version read (its manifest's ``version``).
    :param key_column: the entity key column.
    :param data: the rows, one chunk per column.
    :param sorted_keys: the key column's values in ascending order (a view of ``data``'s
        key column when it is already sorted).
    :param order: the row of each sorted key; ``None`` when ``data`` is in key order.

    .. code-block:: python

        index = FeatureIndex.load(store, "customer_features", "customer_id")
        rows, missing = index.lookup(pa.array([42, 7]))
    """

    table: str
    partition: str
    version: str
    key_column: str
    data: pa.Table
    sorted_keys: np.ndarray
    order: np.ndarray | None

    @classmethod
    def load(
        cls,
        store: FeatureStore,
        table: str,
        key_column: str,
        *,
        partition: str | None = None,
        columns: list[str] | None = None,
    ) -> FeatureIndex:
        """Read and verify a partition's current version (default: the latest partition).

        :param columns: the columns to hold (the key is added); all of them by default.
        :raises PartitionNotFoundError: when the table has no (such) partition.
        :raises ChecksumMismatchError: when a file of the version was damaged.
        :raises ContractError: when the key column is absent, holds nulls or repeats a key, or
            a feature column holds ±inf (batch scoring refuses such a partition too).
        """
        if partition is None:
            partition = store.latest_partition(table)
            if partition is None:
                raise PartitionNotFoundError(
                    f"Feature table {table!r} has no published partition in {store.root}: "
                    "publish one, or serve raw features only (no feature table)."
                )
        manifest = store.verify(table, partition)
        wanted = None if columns is None else list(dict.fromkeys([*columns, key_column]))
        if key_column not in [field["name"] for field in manifest["schema"]]:
            raise ContractError(
                f"Feature table {table!r} ds={partition} has no key column {key_column!r}; "
                "pass the table's entity key column as key_column.",
                missing_columns=[key_column],
            )
        data = store.read_partition(
            table, partition, columns=wanted, version=manifest["version"]
        ).combine_chunks()
        where = f"{table} ds={partition}"
        check_finite(data, [name for name in data.schema.names if name != key_column], where)
        sorted_keys, order = _key_index(data, key_column, where)
        return cls(table, partition, manifest["version"], key_column, data, sorted_keys, order)

    @property
    def key_type(self) -> pa.DataType:
        """The key column's Arrow type."""
        return self.data.schema.field(self.key_column).type

    @property
    def nbytes(self) -> int:
        """Bytes held: the Arrow columns plus the index (keys copied, row positions)."""
        extra = 0 if self.order is None else self.sorted_keys.nbytes + self.order.nbytes
        return self.data.nbytes + extra

    def lookup(self, keys: pa.Array) -> tuple[pa.Table, np.ndarray]:
        """The rows of ``keys``, in their order, and which keys are not in the partition.

        :param keys: keys of the key column's type (or castable to it), without nulls.
        :returns: ``(rows, missing)``: a table of ``len(keys)`` rows with every column of
            :attr:`data` (all-null rows where ``missing`` is True), and the boolean mask.
        """
        import numpy as np
        import pyarrow as pa

        wanted = _as_numpy(keys.cast(self.key_type))
        positions = np.searchsorted(self.sorted_keys, wanted)
        np.minimum(positions, len(self.sorted_keys) - 1, out=positions)
        if len(self.sorted_keys):
            missing = self.sorted_keys[positions] != wanted
        else:
            missing = np.ones(len(wanted), dtype=bool)
        rows = positions if self.order is None else self.order[positions]
        take = pa.array(rows, mask=missing, type=pa.int64())
        return self.data.take(take), missing

    def describe(self) -> dict[str, str | int]:
        """What is served, for readiness details and logs."""
        return {
            "table": self.table,
            "partition": self.partition,
            "version": self.version,
            "rows": self.data.num_rows,
        }


def _key_index(data: pa.Table, key_column: str, where: str) -> tuple[np.ndarray, np.ndarray | None]:
    """``(sorted keys, order)`` of the key column (``order`` None when it is sorted already)."""
    import numpy as np

    keys = data.column(key_column)
    if keys.null_count:
        raise ContractError(
            f"The key column {key_column!r} of {where} has {keys.null_count} null(s): such "
            "rows could never be looked up. Publish the table with a non-nullable key.",
            null_columns=[key_column],
        )
    values = _as_numpy(keys)
    if len(values) < 2 or bool(np.all(values[1:] > values[:-1])):
        return values, None
    order = np.argsort(values, kind="stable")
    order = order.astype(np.int32 if len(values) < 2**31 else np.int64)
    sorted_keys = values[order]
    repeated = sorted_keys[1:][sorted_keys[1:] == sorted_keys[:-1]]
    if len(repeated):
        repeated = np.unique(repeated)
        shown = ", ".join(str(k) for k in repeated[:5])
        raise ContractError(
            f"The key column {key_column!r} of {where} repeats {len(repeated)} key(s) (e.g. "
            f"{shown}): a lookup would be ambiguous. Publish the table with unique keys."
        )
    return sorted_keys, order


def _as_numpy(keys: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Integer keys as their numpy array (a view when possible), string keys as ``str``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.types as pt

    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks()
    if pt.is_integer(keys.type):
        return keys.to_numpy(zero_copy_only=False)
    if pt.is_string(keys.type) or pt.is_large_string(keys.type):
        return np.asarray(keys.to_numpy(zero_copy_only=False), dtype=str)
    raise ContractError(
        f"A key column must hold integers or strings to be indexed; it is {keys.type}. "
        "Serve the table by another key column."
    )
