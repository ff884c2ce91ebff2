"""PublishFeaturesOperator: publish a staged result as a partition of a feature table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_mlops.checks import check_bool, check_int
from airflow_mlops.exceptions import ArgumentError, EmptyInputError, TableNameError
from airflow_mlops.hooks.feature_store import FeatureStoreHook, feature_table_asset
from airflow_mlops.operators.base import PartitionedOperator
from airflow_mlops.store.staging import staged_lineage, staged_path

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

    from airflow_mlops.contract import FeatureContract
    from airflow_mlops.store.feature_store import FeatureStore


class PublishFeaturesOperator(PartitionedOperator):
    """Publishes a staged Parquet result as one partition (a day) of a feature table.

    The publish is atomic and idempotent: readers see the previous complete version until
    the new one is committed, a rerun replaces the partition exactly, and earlier versions
    are kept for rollback. When a ``contract`` is given, every batch is checked and cast
    against it; a mismatch fails the task naming the offending columns and publishes
    nothing. The table is declared as an Asset outlet; each publish emits an asset event
    carrying the partition, row count and version.

    :param table: the feature table's name (a plain identifier).
    :param source: the upstream output (``transform.output``) or a staged path, or the
        outputs of a mapped task (e.g. the shards of a ``BatchScoreOperator``), published
        together as one partition in map-index order.
    :param contract: the table's declared schema.
    :param unique_key: a column (or columns) that must identify each row: a null or
        repeated key fails the task (``DuplicateKeyError``) and publishes nothing. The key
        columns are held in memory until the end of the copy (8 bytes a row for an int64).
    :param allow_empty: publish an empty partition, with a warning in the log, when the
        source has no rows (default True); when False an empty source fails the task and
        the current version stays.
    :param batch_size: rows per batch while copying into the table.
    :param feature_store_conn_id: the feature store connection.

    .. code-block:: python

        PublishFeaturesOperator(
            task_id="publish", table="customer_features", source=features.output,
            contract=CUSTOMER_FEATURES,
        )
    """

    template_fields: Sequence[str] = ("source",)
    ui_color = "#e3f4e1"

    def __init__(
        self,
        *,
        table: str,
        source: Any,
        contract: FeatureContract | None = None,
        unique_key: str | Sequence[str] | None = None,
        allow_empty: bool = True,
        batch_size: int = 100_000,
        feature_store_conn_id: str = FeatureStoreHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        from airflow_mlops.contract import key_columns
        from airflow_mlops.store.layout import validate_table_name

        try:
            validate_table_name(table)
        except TableNameError as exc:
            raise ArgumentError(f"PublishFeaturesOperator: {exc}") from exc
        super().__init__(**kwargs)
        asset = feature_table_asset(table, feature_store_conn_id)
        self.add_outlets([asset])
        self.table = table
        self.source = source
        self.contract = contract
        self.unique_key = (
            None if unique_key is None else key_columns(unique_key, owner="PublishFeaturesOperator")
        )
        undeclared = [k for k in self.unique_key or () if contract and k not in contract.names]
        if undeclared:
            raise ArgumentError(
                f"The 'unique_key' of PublishFeaturesOperator names column(s) "
                f"{', '.join(undeclared)} that the contract does not declare "
                f"({', '.join(contract.names) if contract else ''}). Fix the key or the contract."
            )
        self.allow_empty = check_bool(allow_empty, "allow_empty", type(self).__name__)
        self.batch_size = check_int(batch_size, "batch_size", type(self).__name__)
        self.feature_store_conn_id = feature_store_conn_id
        self.asset = asset

    def execute_partition(self, context: Context, partition: str) -> dict[str, Any]:
        from airflow_mlops.contract import check_unique_keys
        from airflow_mlops.io.parquet import iter_batches, read_schema
        from airflow_mlops.progress import Progress

        store = FeatureStoreHook(self.feature_store_conn_id).get_store()
        refs = _as_refs(self.source)
        paths = [
            staged_path(ref, argument="source", operator="PublishFeaturesOperator") for ref in refs
        ]
        if len(refs) == 1:
            lineage = {**self.run_identity(context), **staged_lineage(refs[0])}
        else:
            lineage = {**self.run_identity(context), "parts": [staged_lineage(r) for r in refs]}
        self._check_not_empty(store, paths, partition)
        batches = iter_batches(store.filesystem, paths, batch_size=self.batch_size)
        what = f"table {self.table!r}"
        if self.unique_key:
            if self.contract is not None:  # contract errors first; the store re-casts (no-op)
                contract = self.contract
                batches = (contract.conform(batch, what=what) for batch in batches)
            batches = check_unique_keys(batches, self.unique_key, what=what)
        progress = Progress(f"publish {self.table}/ds={partition}", logger=self.log)
        manifest = store.publish_partition(
            self.table,
            partition,
            batches,
            schema=None if self.contract else read_schema(store.filesystem, paths[0]),
            contract=self.contract,
            lineage=lineage,
            on_batch=progress.add,
        )
        progress.done()
        summary = {
            "table": self.table,
            "partition": partition,
            "version": manifest["version"],
            "previous_version": manifest["previous_version"],
            "rows": manifest["row_count"],
            "content_sha256": manifest["content_sha256"],
            "path": store.partition_path(self.table, partition),
        }
        self.log.info(
            "Published %s partition %s: %d rows, version %s (previous %s)",
            self.table,
            partition,
            summary["rows"],
            summary["version"],
            summary["previous_version"],
        )
        context["outlet_events"][self.asset].extra = {
            "partition": partition,
            "rows": summary["rows"],
            "version": summary["version"],
        }
        return summary

    def _check_not_empty(self, store: FeatureStore, paths: list[str], partition: str) -> None:
        """Refuse (``allow_empty=False``) or warn about a source without rows."""
        import pyarrow.parquet as pq

        rows = 0
        for path in paths:
            with store.filesystem.open_input_file(path) as handle:
                rows += pq.ParquetFile(handle).metadata.num_rows
        if rows:
            return
        if not self.allow_empty:
            raise EmptyInputError(
                f"PublishFeaturesOperator has no rows to publish to table {self.table!r} "
                f"partition {partition}: the source ({', '.join(paths)}) is empty. Nothing was "
                "published and the current version stays. Check the upstream query and "
                "partition, or pass allow_empty=True to publish an empty partition."
            )
        self.log.warning(
            "Publishing an EMPTY partition %s of table %r: the source has no rows "
            "(allow_empty=True). Readers of this partition will get no rows.",
            partition,
            self.table,
        )


def _as_refs(source: Any) -> list[Any]:
    """``source`` as a list of staged references: one, or the outputs of a mapped task."""
    if isinstance(source, str | dict) or not hasattr(source, "__iter__"):
        return [source]
    refs = list(source)
    if not refs:
        raise ArgumentError(
            "The 'source' parameter of PublishFeaturesOperator got an empty list of upstream "
            "outputs: the mapped upstream task produced nothing to publish."
        )
    return refs
