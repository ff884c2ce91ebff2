"""BatchScoreOperator: score a feature partition with a registered model, shadow a challenger."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from airflow_mlops.checks import check_choice, check_int, check_number
from airflow_mlops.exceptions import ArgumentError
from airflow_mlops.hooks.feature_store import FeatureStoreHook, feature_table_asset
from airflow_mlops.hooks.model_registry import ModelRegistryHook
from airflow_mlops.operators.base import PartitionedOperator

if TYPE_CHECKING:
    from collections.abc import Sequence

    from airflow.sdk import Context

    from airflow_mlops.scoring.request import ScoringRequest, ShadowResult
    from airflow_mlops.store.feature_store import FeatureStore
    from airflow_mlops.store.staging import StagedOutput


class BatchScoreOperator(PartitionedOperator):
    """Scores one partition of a feature table with the model behind an alias.

    The model is loaded only after its checksum matches the registry's record; the table's
    schema is checked against the model's input contract before any row is scored (missing
    or mistyped columns are named). Rows stream batch by batch through ``workers``
    processes and the scores are published atomically as the same partition of
    ``output_table`` (entity key, score, decision, model name and version).

    With ``challenger_alias``, the challenger scores a deterministic sample of the same
    rows (``shadow_fraction``, seeded by the entity key, so reruns pick the same rows) into
    ``shadow_table``. It never changes the champion's output, and its failure is reported
    (task log, XCom, shadow report) without failing the task. The comparison report —
    rows compared, mean and p95 |score delta|, decision agreement, PSI of the two score
    distributions, per-batch latency p50/p95 of both models — is stored in the shadow
    partition's manifest and returned in XCom.

    :param features_table: the feature table to score (the run's partition).
    :param model_name: the registry's model name.
    :param output_table: the scores table.
    :param model_alias: the alias to score with (default ``champion``).
    :param model_version: a pinned version instead of the alias.
    :param challenger_alias: the alias to shadow-score with, or None.
    :param shadow_fraction: share of entities the challenger scores, in (0, 1].
    :param shadow_seed: seed of the entity-key hash choosing the shadow rows.
    :param shadow_table: the challenger's table (default ``<output_table>_shadow``).
    :param threshold: decision threshold (default: the model record's ``output.threshold``).
    :param workers: scoring processes (each loads the verified artifact once).
    :param batch_size: rows per batch (the memory bound).
    :param num_shards: split a large partition by a hash of the entity key; each mapped
        task (``.expand(shard=range(n))``) scores one shard into staging and returns its
        reference, and a :class:`PublishFeaturesOperator` over the mapped outputs publishes
        the partition at once. No shadow scoring in this mode.
    :param shard: this task's shard, in ``[0, num_shards)``.
    :param runtime: ``"auto"`` scores with the champion compiled by tl2cgen when its record
        says the compiled runtime was verified at registration and it compiles and verifies
        again here, on the partition's first rows (within 1e-12, same decisions);
        otherwise, and with ``"sklearn"``, with scikit-learn. The choice and the check's
        evidence are in XCom (``runtime``) and the scores' manifest lineage. The challenger
        always scores with scikit-learn.

    .. code-block:: python

        BatchScoreOperator(
            task_id="score", features_table="customer_features", model_name="credit_risk",
            output_table="customer_scores", challenger_alias="challenger", shadow_fraction=0.5,
        )
    """

    template_fields: Sequence[str] = ("model_alias", "model_version", "challenger_alias")
    ui_color = "#fbe8ee"

    def __init__(
        self,
        *,
        features_table: str,
        model_name: str,
        output_table: str,
        model_alias: str = "champion",
        model_version: str | None = None,
        challenger_alias: str | None = None,
        shadow_fraction: float = 1.0,
        shadow_seed: int = 0,
        shadow_table: str | None = None,
        threshold: float | None = None,
        workers: int = 2,
        batch_size: int = 100_000,
        num_shards: int = 1,
        shard: int | None = None,
        runtime: Literal["auto", "sklearn"] = "auto",
        feature_store_conn_id: str = FeatureStoreHook.default_conn_name,
        model_registry_conn_id: str = ModelRegistryHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        from airflow_mlops.scoring.request import RUNTIMES

        super().__init__(**kwargs)
        owner = type(self).__name__
        self.shadow_table = shadow_table or f"{output_table}_shadow"
        self._check_tables(features_table, output_table, challenger_alias)
        self.shadow_seed = check_int(shadow_seed, "shadow_seed", owner, min_value=0)
        self.shadow_fraction = check_number(
            shadow_fraction, "shadow_fraction", owner, low=0, high=1, closed="right"
        )
        if threshold is not None:
            check_number(threshold, "threshold", owner, low=0, high=1)
        check_choice(runtime, "runtime", owner, RUNTIMES)
        self.runtime = runtime
        self.features_table = features_table
        self.model_name = model_name
        self.output_table = output_table
        self.model_alias = model_alias
        self.model_version = model_version
        self.challenger_alias = challenger_alias
        self.threshold = threshold
        self.workers = check_int(workers, "workers", owner)
        self.batch_size = check_int(batch_size, "batch_size", owner)
        self.num_shards = check_int(num_shards, "num_shards", owner)
        self.shard = shard
        if self.num_shards > 1:
            self._check_shard(challenger_alias)
        self.feature_store_conn_id = feature_store_conn_id
        self.model_registry_conn_id = model_registry_conn_id
        self.scores_asset = feature_table_asset(output_table, feature_store_conn_id)
        self.shadow_asset = feature_table_asset(self.shadow_table, feature_store_conn_id)
        declared = [self.scores_asset, *([self.shadow_asset] if challenger_alias else [])]
        if self.num_shards == 1:  # a shard only stages: the publish step emits the event
            self.add_outlets([a for a in declared if a not in self.outlets])

    def _check_tables(
        self, features_table: str, output_table: str, challenger_alias: str | None
    ) -> None:
        """Valid table names; the scores never overwrite the features or each other."""
        from airflow_mlops.scoring.request import check_distinct_tables
        from airflow_mlops.store.layout import validate_table_name

        tables = {"features_table": features_table, "output_table": output_table}
        for argument, table in {**tables, "shadow_table": self.shadow_table}.items():
            try:
                validate_table_name(table)
            except ValueError as exc:
                raise ArgumentError(f"BatchScoreOperator {argument}: {exc}") from exc
        if challenger_alias:
            tables["shadow_table"] = self.shadow_table
        check_distinct_tables(tables, "BatchScoreOperator")

    def _check_shard(self, challenger_alias: str | None) -> None:
        """A sharded run's task scores one shard, and never shadow-scores."""
        if not (isinstance(self.shard, int) and 0 <= self.shard < self.num_shards):
            raise ArgumentError(
                f"The 'shard' parameter of BatchScoreOperator must be an int in "
                f"[0, {self.num_shards}) when num_shards={self.num_shards}. Got {self.shard!r}."
            )
        if challenger_alias:
            raise ArgumentError(
                "BatchScoreOperator cannot shadow-score a sharded run: give "
                "challenger_alias only with num_shards=1."
            )

    def execute_partition(self, context: Context, partition: str) -> dict[str, Any] | StagedOutput:
        from airflow_mlops.scoring.job import score_partition

        store = FeatureStoreHook(self.feature_store_conn_id).get_store()
        registry = ModelRegistryHook(self.model_registry_conn_id).get_registry()
        version = self.model_version or registry.resolve(self.model_name, self.model_alias)
        request = self._request(context, store, partition, version)
        identity = self.run_identity(context)
        result = score_partition(store, registry, request, lineage=identity, log=self.log)
        if result.staged is not None:
            return result.staged
        summary = result.summary()
        events = context["outlet_events"]
        events[self.scores_asset].extra = {
            "partition": partition,
            "rows": summary["rows"],
            "version": summary["version"],
            "model_version": version,
        }
        if result.shadow is not None:
            events[self.shadow_asset].extra = _shadow_event(partition, result.shadow)
        return summary

    def _request(
        self, context: Context, store: FeatureStore, partition: str, version: str
    ) -> ScoringRequest:
        """The run this task does: its shard, or its challenger, staged under its run."""
        from airflow_mlops.scoring.request import ScoringRequest, ShadowRequest, ShardRequest

        ti = context["ti"]

        def staged(what: str) -> str:
            name = self.staging_name(context, f"{self.task_id}-{what}")
            return store.staging_path(ti.dag_id, ti.run_id, name)

        shard = shadow = None
        if self.num_shards > 1:
            assert self.shard is not None  # checked in __init__
            shard = ShardRequest(self.shard, self.num_shards, staged(f"shard{self.shard}"))
        elif self.challenger_alias:
            shadow = ShadowRequest(
                self.challenger_alias,
                self.shadow_table,
                staged("shadow"),
                fraction=self.shadow_fraction,
                seed=self.shadow_seed,
            )
        return ScoringRequest(
            features_table=self.features_table,
            output_table=self.output_table,
            model_name=self.model_name,
            model_version=version,
            partition=partition,
            batch_size=self.batch_size,
            workers=self.workers,
            runtime=self.runtime,
            threshold=self.threshold,
            shard=shard,
            shadow=shadow,
        )


def _shadow_event(partition: str, shadow: ShadowResult) -> dict[str, Any]:
    """The shadow table's asset event extra: the new version, or that shadowing failed."""
    if shadow.manifest is None:
        return {"partition": partition, "status": "failed"}
    return {
        "partition": partition,
        "rows": shadow.manifest["row_count"],
        "version": shadow.manifest["version"],
    }
