"""BatchScoreOperator: score a feature partition with a registered model, shadow a challenger."""

from __future__ import annotations

import dataclasses
import json
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from airflow_mlops.checks import check_int
from airflow_mlops.exceptions import ArgumentError
from airflow_mlops.hooks.feature_store import FeatureStoreHook, feature_table_asset
from airflow_mlops.hooks.model_registry import ModelRegistryHook
from airflow_mlops.operators.base import PartitionedOperator

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    import pandas as pd
    import pyarrow as pa
    from airflow.sdk import Context

    from airflow_mlops.models.accelerate import CompilationCheck
    from airflow_mlops.models.records import ModelOutput, ModelRecord
    from airflow_mlops.models.registry import ModelRegistry
    from airflow_mlops.store.feature_store import FeatureStore
    from airflow_mlops.store.staging import StagedOutput


#: ``runtime`` values: the compiled runtime when verified, else scikit-learn; or scikit-learn.
RUNTIMES = ("auto", "sklearn")


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
        runtime: str = "auto",
        feature_store_conn_id: str = FeatureStoreHook.default_conn_name,
        model_registry_conn_id: str = ModelRegistryHook.default_conn_name,
        **kwargs: Any,
    ) -> None:
        from airflow_mlops.store.feature_store import validate_table_name

        super().__init__(**kwargs)
        shadow_table = shadow_table or f"{output_table}_shadow"
        for argument, table in (
            ("features_table", features_table),
            ("output_table", output_table),
            ("shadow_table", shadow_table),
        ):
            try:
                validate_table_name(table)
            except ValueError as exc:
                raise ArgumentError(f"BatchScoreOperator {argument}: {exc}") from exc
        tables = {"features_table": features_table, "output_table": output_table}
        if challenger_alias:
            tables["shadow_table"] = shadow_table
        if len(set(tables.values())) < len(tables):
            raise ArgumentError(
                f"BatchScoreOperator needs distinct tables; got {tables}. Writing scores over "
                "the features (or the challenger's over the champion's) would lose data."
            )
        if not isinstance(shadow_seed, int) or isinstance(shadow_seed, bool) or shadow_seed < 0:
            raise ArgumentError(
                "The 'shadow_seed' parameter of BatchScoreOperator must be an int >= 0. "
                f"Got {shadow_seed!r} instead."
            )
        if isinstance(shadow_fraction, bool) or not (
            isinstance(shadow_fraction, int | float) and 0 < shadow_fraction <= 1
        ):
            raise ArgumentError(
                "The 'shadow_fraction' parameter of BatchScoreOperator must be a float in "
                f"(0, 1]. Got {shadow_fraction!r} instead."
            )
        if threshold is not None and (
            isinstance(threshold, bool)
            or not (isinstance(threshold, int | float) and 0 <= threshold <= 1)
        ):
            raise ArgumentError(
                "The 'threshold' parameter of BatchScoreOperator must be a float in [0, 1]. "
                f"Got {threshold!r} instead."
            )
        if runtime not in RUNTIMES:
            raise ArgumentError(
                "The 'runtime' parameter of BatchScoreOperator must be one of "
                f"{', '.join(map(repr, RUNTIMES))}. Got {runtime!r} instead."
            )
        self.runtime = runtime
        self.features_table = features_table
        self.model_name = model_name
        self.output_table = output_table
        self.model_alias = model_alias
        self.model_version = model_version
        self.challenger_alias = challenger_alias
        self.shadow_fraction = float(shadow_fraction)
        self.shadow_seed = shadow_seed
        self.shadow_table = shadow_table
        self.threshold = threshold
        self.workers = check_int(workers, "workers", type(self).__name__)
        self.batch_size = check_int(batch_size, "batch_size", type(self).__name__)
        self.num_shards = check_int(num_shards, "num_shards", type(self).__name__)
        if self.num_shards > 1:
            if not (isinstance(shard, int) and 0 <= shard < self.num_shards):
                raise ArgumentError(
                    f"The 'shard' parameter of BatchScoreOperator must be an int in "
                    f"[0, {self.num_shards}) when num_shards={self.num_shards}. Got {shard!r}."
                )
            if challenger_alias:
                raise ArgumentError(
                    "BatchScoreOperator cannot shadow-score a sharded run: give "
                    "challenger_alias only with num_shards=1."
                )
        self.shard = shard
        self.feature_store_conn_id = feature_store_conn_id
        self.model_registry_conn_id = model_registry_conn_id
        self.scores_asset = feature_table_asset(output_table, feature_store_conn_id)
        self.shadow_asset = feature_table_asset(shadow_table, feature_store_conn_id)
        declared = [self.scores_asset, *([self.shadow_asset] if challenger_alias else [])]
        if self.num_shards == 1:  # a shard only stages: the publish step emits the event
            self.add_outlets([a for a in declared if a not in self.outlets])

    def execute_partition(self, context: Context, partition: str) -> dict[str, Any] | StagedOutput:
        from airflow_mlops.contract import FeatureContract, schema_from_json
        from airflow_mlops.models.records import ModelOutput
        from airflow_mlops.scoring.batches import check_model_inputs

        store = FeatureStoreHook(self.feature_store_conn_id).get_store()
        registry = ModelRegistryHook(self.model_registry_conn_id).get_registry()
        champion = self._champion(registry)
        contract = FeatureContract.from_json(json.dumps(champion.record["input_contract"]))
        output = ModelOutput.from_record(champion.record, self.threshold)
        schema = schema_from_json(store.manifest(self.features_table, partition)["schema"])
        columns = check_model_inputs(schema, contract, entity_key=output.entity_key)
        self.log.info(
            "Scoring %s/ds=%s with %s %s (sha256 %s…), %d worker(s)",
            self.features_table,
            partition,
            self.model_name,
            champion.version,
            champion.record["sha256"][:12],
            self.workers,
        )
        scoring = (contract.names, output)
        champion = self._with_runtime(store, champion, partition, scoring)
        if self.num_shards > 1:
            return self._score_shard(
                context, store, registry, champion, partition, columns, schema, scoring
            )
        shadow, shadow_path = self._open_shadow(registry, store, context, schema, output)
        challenger_inputs = getattr(shadow, "feature_names", [])
        columns = list(dict.fromkeys([*columns, *challenger_inputs]))
        result = self._score_and_publish(
            context, store, registry, champion, partition, columns, schema, scoring, shadow
        )
        if shadow is not None:
            result["shadow"] = self._publish_shadow(context, store, partition, shadow, shadow_path)
        context["outlet_events"][self.scores_asset].extra = {
            "partition": partition,
            "rows": result["rows"],
            "version": result["version"],
            "model_version": champion.version,
        }
        return result

    def _champion(self, registry: ModelRegistry) -> _Champion:
        """The champion, verified: unpickled here only when scoring in this process.

        With worker processes, only its checksum-verified bytes are kept here (each worker
        unpickles them once), which saves the parent a copy of the model.
        """
        version = self.model_version or registry.resolve(self.model_name, self.model_alias)
        if self.workers == 1:
            loaded = registry.load(self.model_name, version=version)
            return _Champion(loaded.name, loaded.version, loaded.record, loaded.model, None)
        artifact = registry.artifact_bytes(self.model_name, version)
        record = registry.record(self.model_name, version)
        return _Champion(self.model_name, version, record, None, artifact)

    def _with_runtime(
        self,
        store: FeatureStore,
        champion: _Champion,
        partition: str,
        scoring: tuple[list[str], ModelOutput],
    ) -> _Champion:
        """The champion compiled by tl2cgen if its record allows it and it verifies here.

        The shared library is machine-specific, so it is compiled in this task and checked
        against scikit-learn on the partition's first rows (never stored). Otherwise the
        champion stays as it is (scikit-learn), with the reason.
        """
        from airflow_mlops.models.accelerate import (
            COMPILED_RUNTIME,
            COMPILED_TOLERANCE,
            CompilationCheck,
            compile_tree_model,
            unverified_reason,
        )
        from airflow_mlops.models.artifacts import dump_model, load_model

        if self.runtime == "sklearn":
            reason: str | None = "runtime='sklearn' was requested"
        else:
            reason = unverified_reason(champion.record)
        if reason is not None:
            check = CompilationCheck("scikit-learn", 0, None, COMPILED_TOLERANCE, reason)
            return self._runtime_chosen(champion, check)
        model = champion.model
        if model is None:  # workers get bytes: the parent unpickles the verified ones to compile
            assert champion.artifact is not None
            what = f"Model {champion.name!r} version {champion.version}"
            model = load_model(champion.artifact, what=what)
        frame = self._check_frame(store, partition, scoring[0])
        compiled, check = compile_tree_model(model, frame, threshold=scoring[1].threshold)
        if check.runtime != COMPILED_RUNTIME:
            return self._runtime_chosen(champion, check)
        if self.workers == 1:
            return self._runtime_chosen(champion, check, model=compiled)
        return self._runtime_chosen(champion, check, artifact=dump_model(compiled))

    def _runtime_chosen(
        self, champion: _Champion, check: CompilationCheck, **scorer: Any
    ) -> _Champion:
        """``champion`` with the runtime report (and the compiled ``model``/``artifact``)."""
        from airflow_mlops.models.accelerate import runtime_summary

        runtime = {"requested": self.runtime, **runtime_summary(check)}
        evidence = ""
        if check.rows_checked:
            evidence = (
                f" (max |diff| {check.max_abs_diff!r} on {check.rows_checked} check rows, "
                f"{check.decisions_differing} decision(s) differing)"
            )
        self.log.info(
            "Scoring runtime %s (requested %r): %s%s",
            runtime["name"],
            self.runtime,
            check.reason,
            evidence,
        )
        return dataclasses.replace(champion, runtime=runtime, **scorer)

    def _check_frame(
        self, store: FeatureStore, partition: str, feature_names: list[str]
    ) -> pd.DataFrame:
        """The partition's first rows (up to ``CHECK_ROWS``), as scoring gives them to models."""
        import pandas as pd

        from airflow_mlops.models.accelerate import CHECK_ROWS

        batches = store.iter_partition_batches(
            self.features_table, partition, columns=feature_names, batch_size=CHECK_ROWS
        )
        try:
            first = next(iter(batches), None)
        finally:
            getattr(batches, "close", lambda: None)()
        if first is None:
            return pd.DataFrame(columns=feature_names)
        return first.select(feature_names).to_pandas()

    def _score_and_publish(
        self,
        context: Context,
        store: FeatureStore,
        registry: ModelRegistry,
        champion: _Champion,
        partition: str,
        columns: list[str],
        schema: pa.Schema,
        scoring: tuple[list[str], ModelOutput],
        shadow: Any,
    ) -> dict[str, Any]:
        from airflow_mlops.progress import Progress

        progress = Progress(f"score {self.features_table}/ds={partition}", logger=self.log)
        scored = self._scored(
            store, registry, champion, partition, columns, scoring, progress, shadow
        )
        manifest = store.publish_partition(
            self.output_table,
            partition,
            scored,
            schema=_output_schema(schema, scoring[1]),
            lineage={
                **self.run_identity(context),
                "features": {
                    "table": self.features_table,
                    "version": store.manifest(self.features_table, partition)["version"],
                },
                "model": champion.lineage(),
                "runtime": champion.runtime,
            },
        )
        progress.done()
        return {
            "table": self.output_table,
            "partition": partition,
            "rows": manifest["row_count"],
            "version": manifest["version"],
            "model_version": champion.version,
            "content_sha256": manifest["content_sha256"],
            "runtime": champion.runtime,
        }

    def _scored(
        self,
        store: FeatureStore,
        registry: ModelRegistry,
        champion: _Champion,
        partition: str,
        columns: list[str],
        scoring: tuple[list[str], ModelOutput],
        progress: Any,
        shadow: Any = None,
    ) -> Iterator[pa.RecordBatch]:
        """The champion's output batches (of this task's shard), feeding the shadow."""
        from airflow_mlops.scoring.batches import score_batches

        artifact = champion.artifact
        pending: deque[pa.RecordBatch] = deque()

        def feed() -> Iterator[pa.RecordBatch]:
            for batch in store.iter_partition_batches(
                self.features_table, partition, columns=columns, batch_size=self.batch_size
            ):
                if self.num_shards > 1:
                    batch = batch.filter(self._in_shard(batch.column(scoring[1].entity_key)))
                pending.append(batch)
                yield batch

        for result in score_batches(
            feed(),
            model=champion.model,
            artifact=artifact,
            feature_names=scoring[0],
            output=scoring[1],
            workers=self.workers,
        ):
            features = pending.popleft()
            progress.add(result.batch.num_rows)
            if shadow is not None:
                shadow.observe(features, result.batch, result.seconds)
            yield result.batch

    def _in_shard(self, keys: pa.Array) -> pa.Array:
        import pyarrow as pa

        from airflow_mlops.scoring.shadow import key_hashes

        return pa.array(key_hashes(keys) % self.num_shards == self.shard)

    def _score_shard(
        self,
        context: Context,
        store: FeatureStore,
        registry: ModelRegistry,
        champion: _Champion,
        partition: str,
        columns: list[str],
        schema: pa.Schema,
        scoring: tuple[list[str], ModelOutput],
    ) -> StagedOutput:
        """Score this shard's rows into a staged file; a publish step combines the shards."""
        from airflow_mlops.io.parquet import write_batches
        from airflow_mlops.progress import Progress
        from airflow_mlops.store.staging import staged_output

        progress = Progress(
            f"score {self.features_table}/ds={partition} shard {self.shard}/{self.num_shards}",
            logger=self.log,
        )
        path = store.staging_path(
            context["ti"].dag_id,
            context["ti"].run_id,
            self.staging_name(context, f"{self.task_id}-shard{self.shard}"),
        )
        written = write_batches(
            self._scored(store, registry, champion, partition, columns, scoring, progress),
            store.filesystem,
            path,
            schema=_output_schema(schema, scoring[1]),
        )
        progress.done()
        lineage = {
            "model": champion.lineage(),
            "shard": {"index": self.shard, "of": self.num_shards},
            "runtime": champion.runtime,
        }
        return staged_output(written, partition=partition, lineage=lineage)

    def _open_shadow(
        self,
        registry: ModelRegistry,
        store: FeatureStore,
        context: Context,
        schema: pa.Schema,
        champion_output: ModelOutput,
    ) -> tuple[Any, str | None]:
        """The shadow scorer and its staged file, or (None, None) when not shadowing."""
        if not self.challenger_alias:
            return None, None
        from airflow_mlops.contract import FeatureContract
        from airflow_mlops.io.parquet import open_writer
        from airflow_mlops.models.records import ModelOutput
        from airflow_mlops.scoring.batches import check_model_inputs
        from airflow_mlops.scoring.shadow import ShadowScorer

        try:
            challenger = registry.load(self.model_name, alias=self.challenger_alias)
            contract = FeatureContract.from_json(json.dumps(challenger.record["input_contract"]))
            check_model_inputs(schema, contract, entity_key=champion_output.entity_key)
            output = ModelOutput.from_record(challenger.record, champion_output.threshold)
        except Exception as exc:  # a broken challenger is reported, never fatal
            self.log.error(
                "Shadow scoring disabled: challenger %r failed to load: %s",
                self.challenger_alias,
                exc,
            )
            return _FailedShadow(f"{type(exc).__name__}: {exc}"), None
        path = store.staging_path(
            context["ti"].dag_id,
            context["ti"].run_id,
            self.staging_name(context, f"{self.task_id}-shadow"),
        )
        sink = open_writer(store.filesystem, path, _output_schema(schema, output))
        self.log.info(
            "Shadow scoring %.0f%% of entities with challenger %s",
            100 * self.shadow_fraction,
            challenger.version,
        )
        return ShadowScorer(
            challenger.model,
            sink=sink,
            fraction=self.shadow_fraction,
            seed=self.shadow_seed,
            feature_names=contract.names,
            output=output,
        ), path

    def _publish_shadow(
        self, context: Context, store: FeatureStore, partition: str, shadow: Any, path: str | None
    ) -> dict[str, Any]:
        from airflow_mlops.io.parquet import iter_batches, read_schema

        if path is not None:
            shadow.sink.close()
        report = shadow.report()
        if report["status"] != "ok" or path is None:
            self.log.error(
                "Shadow scoring failed (the champion's scores are published): %s",
                report["error"],
            )
            context["outlet_events"][self.shadow_asset].extra = {
                "partition": partition,
                "status": "failed",
            }
            return {k: v for k, v in report.items() if k != "bins"}
        manifest = store.publish_partition(
            self.shadow_table,
            partition,
            iter_batches(store.filesystem, path, batch_size=self.batch_size),
            schema=read_schema(store.filesystem, path),
            lineage={**self.run_identity(context), "shadow_report": report},
        )
        self.log.info(
            "Shadow report: %d rows compared, mean |delta| %s, p95 |delta| %s, "
            "decision agreement %s, PSI %s",
            report["rows_compared"],
            report["mean_abs_delta"],
            report["p95_abs_delta"],
            report["decision_agreement_rate"],
            report["psi"],
        )
        context["outlet_events"][self.shadow_asset].extra = {
            "partition": partition,
            "rows": manifest["row_count"],
            "version": manifest["version"],
        }
        summary = {k: v for k, v in report.items() if k != "bins"}
        return {**summary, "table": self.shadow_table, "version": manifest["version"]}


@dataclass(frozen=True)
class _Champion:
    """The scoring model: its record, and either the model (in process) or its bytes."""

    name: str
    version: str
    record: ModelRecord
    model: Any
    artifact: bytes | None
    #: the runtime scoring uses and its check (``runtime`` in XCom and lineage)
    runtime: dict[str, Any] | None = None

    def lineage(self) -> dict[str, str]:
        """Which model scored: what manifests record."""
        return {"name": self.name, "version": self.version, "sha256": self.record["sha256"]}


def _output_schema(features: pa.Schema, output: ModelOutput) -> pa.Schema:
    from airflow_mlops.scoring.batches import scores_schema

    return scores_schema(features.field(output.entity_key).type, output)


class _FailedShadow:
    """Stands for a challenger that could not be loaded: reports, never scores."""

    def __init__(self, error: str) -> None:
        self.error = error

    def observe(self, features: Any, champion: Any, seconds: float) -> None:
        return None

    def report(self) -> dict[str, Any]:
        return {"status": "failed", "error": self.error}
