"""One scoring run, :func:`score_partition`: what ``BatchScoreOperator``, the
``airflow-mlops score`` command and ``benchmarks/score_batch.py`` share (no Airflow here).

The version's artifact is verified and the partition's schema checked against its input
contract before any row is scored; ``runtime="auto"`` compiles the champion with tl2cgen
when its record and a check on the partition's first rows allow it; rows stream through
:func:`~airflow_mlops.scoring.batches.score_batches` into one atomic publish of the output
partition (or, for a shard, a staged file a publish step combines); a challenger scores a
seeded sample beside it, and its failure is reported, never raised.
"""

from __future__ import annotations

import dataclasses
import json
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from airflow_mlops.contract import FeatureContract, schema_from_json
from airflow_mlops.models.records import ModelOutput
from airflow_mlops.progress import Progress
from airflow_mlops.scoring import batches as scoring_batches
from airflow_mlops.scoring.request import ScoringResult, ShadowResult
from airflow_mlops.store.staging import staged_output

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    import pandas as pd
    import pyarrow as pa

    from airflow_mlops.models.accelerate import CompilationCheck
    from airflow_mlops.models.records import ModelRecord
    from airflow_mlops.models.registry import ModelRegistry
    from airflow_mlops.scoring.request import ScoringRequest, ShadowRequest, ShardRequest
    from airflow_mlops.scoring.shadow import ShadowScorer
    from airflow_mlops.store.feature_store import FeatureStore
    from airflow_mlops.store.publish import Manifest
    from airflow_mlops.store.staging import StagedOutput


class RunLog(Protocol):
    """Where a run reports: a stdlib logger or Airflow's task logger."""

    def info(self, msg: Any, /, *args: Any) -> Any: ...

    def error(self, msg: Any, /, *args: Any) -> Any: ...


def score_partition(
    store: FeatureStore,
    registry: ModelRegistry,
    request: ScoringRequest,
    *,
    lineage: Mapping[str, Any],
    log: RunLog,
) -> ScoringResult:
    """Score ``request.partition`` of the features with the model version; publish or stage.

    :param lineage: who runs it (e.g. DAG, run, task and try), recorded in the published
        manifests.
    :param log: where the run's choices, progress and shadow report are logged.
    :raises ContractError: when the features lack, or mistype, a column the model needs.
    :raises ModelNotFoundError: for an unknown model or version.
    :raises ChecksumMismatchError: when the artifact changed after registration.
    """
    job = _ScoringJob.prepare(store, registry, request, log)
    job.choose_runtime()
    if request.shard is not None:
        return ScoringResult(request, job.runtime, staged=job.stage_shard(request.shard))
    if request.shadow is None:
        return ScoringResult(request, job.runtime, manifest=job.publish(lineage, None))
    shadow, error = job.open_shadow(registry, request.shadow)
    manifest = job.publish(lineage, shadow)
    shadowed = job.publish_shadow(request.shadow, shadow, error, lineage)
    return ScoringResult(request, job.runtime, manifest=manifest, shadow=shadowed)


@dataclass(frozen=True)
class _Champion:
    """The scoring model: its record, and either the model (in process) or its bytes."""

    name: str
    version: str
    record: ModelRecord
    model: Any
    artifact: bytes | None

    def lineage(self) -> dict[str, str]:
        """Which model scored: what manifests record."""
        return {"name": self.name, "version": self.version, "sha256": self.record["sha256"]}


def _champion(registry: ModelRegistry, request: ScoringRequest) -> _Champion:
    """The champion, verified: unpickled here only when scoring in this process.

    With worker processes, only its checksum-verified bytes are kept here (each worker
    unpickles them once), which saves the parent a copy of the model.
    """
    name, version = request.model_name, request.model_version
    if request.workers == 1:
        loaded = registry.load(name, version=version)
        return _Champion(loaded.name, loaded.version, loaded.record, loaded.model, None)
    artifact = registry.artifact_bytes(name, version)
    return _Champion(name, version, registry.record(name, version), None, artifact)


@dataclass
class _ScoringJob:
    """A run's state: the champion, what it reads and writes, the features' version."""

    store: FeatureStore
    request: ScoringRequest
    log: RunLog
    champion: _Champion
    output: ModelOutput
    #: the model's input columns, in its contract's order
    feature_names: list[str]
    #: the columns read for scoring: the inputs, then the entity key
    columns: list[str]
    #: the features' schema and the version read
    schema: pa.Schema
    features_version: str
    #: the runtime scoring uses and its check (set by :meth:`choose_runtime`)
    runtime: dict[str, Any] = dataclasses.field(default_factory=dict)

    @classmethod
    def prepare(
        cls, store: FeatureStore, registry: ModelRegistry, request: ScoringRequest, log: RunLog
    ) -> _ScoringJob:
        """The verified champion and the partition's schema, checked against its inputs."""
        champion = _champion(registry, request)
        contract = FeatureContract.from_json(json.dumps(champion.record["input_contract"]))
        output = ModelOutput.from_record(champion.record, request.threshold)
        manifest = store.manifest(request.features_table, request.partition)
        schema = schema_from_json(manifest["schema"])
        columns = scoring_batches.check_model_inputs(schema, contract, entity_key=output.entity_key)
        log.info(
            "Scoring %s/ds=%s with %s %s (sha256 %s…), %d worker(s)",
            request.features_table,
            request.partition,
            request.model_name,
            champion.version,
            champion.record["sha256"][:12],
            request.workers,
        )
        return cls(
            store, request, log, champion, output, contract.names, columns, schema,
            features_version=manifest["version"],
        )  # fmt: skip

    # -- runtime -------------------------------------------------------------------------

    def choose_runtime(self) -> None:
        """The champion compiled by tl2cgen if its record allows it and it verifies on the
        partition's first rows (:func:`~airflow_mlops.scoring.runtime.compiled_runtime`);
        otherwise it stays as it is (scikit-learn), with the reason."""
        from airflow_mlops.models.artifacts import dump_model, load_model
        from airflow_mlops.scoring.runtime import compiled_runtime

        champion = self.champion

        def model() -> Any:  # workers get bytes: the parent unpickles the verified ones
            if champion.model is not None:
                return champion.model
            assert champion.artifact is not None
            what = f"Model {champion.name!r} version {champion.version}"
            return load_model(champion.artifact, what=what)

        compiled, check = compiled_runtime(
            model,
            champion.record,
            self._check_frame,
            requested=self.request.runtime,
            threshold=self.output.threshold,
        )
        if compiled is None:
            return self._runtime_chosen(check)
        if self.request.workers == 1:
            return self._runtime_chosen(check, model=compiled)
        return self._runtime_chosen(check, artifact=dump_model(compiled))

    def _runtime_chosen(self, check: CompilationCheck, **scorer: Any) -> None:
        """Keep the runtime report (and the compiled ``model`` or ``artifact``)."""
        from airflow_mlops.models.accelerate import runtime_summary

        self.runtime = {"requested": self.request.runtime, **runtime_summary(check)}
        evidence = ""
        if check.rows_checked:
            evidence = (
                f" (max |diff| {check.max_abs_diff!r} on {check.rows_checked} check rows, "
                f"{check.decisions_differing} decision(s) differing)"
            )
        self.log.info(
            "Scoring runtime %s (requested %r): %s%s",
            self.runtime["name"],
            self.request.runtime,
            check.reason,
            evidence,
        )
        self.champion = dataclasses.replace(self.champion, **scorer)

    def _check_frame(self) -> pd.DataFrame:
        """The partition's first rows (up to ``CHECK_ROWS``), as scoring gives them to models."""
        import pandas as pd

        from airflow_mlops.models.accelerate import CHECK_ROWS

        names, request = self.feature_names, self.request
        batches = self.store.iter_partition_batches(
            request.features_table, request.partition, columns=names, batch_size=CHECK_ROWS
        )
        try:
            first = next(iter(batches), None)
        finally:
            getattr(batches, "close", lambda: None)()
        if first is None:
            return pd.DataFrame(columns=names)
        return first.select(names).to_pandas()

    # -- the champion's scores -----------------------------------------------------------

    def publish(self, lineage: Mapping[str, Any], shadow: ShadowScorer | None) -> Manifest:
        """Score the partition and publish the scores; the new version's manifest."""
        request = self.request
        columns = self.columns
        if shadow is not None:  # the challenger may read columns the champion does not
            columns = list(dict.fromkeys([*columns, *shadow.feature_names]))
        progress = Progress(
            f"score {request.features_table}/ds={request.partition}", logger=self.log
        )
        features = {"table": request.features_table, "version": self.features_version}
        model, runtime = self.champion.lineage(), self.runtime
        manifest = self.store.publish_partition(
            request.output_table,
            request.partition,
            self._scored(columns, progress, shadow),
            schema=_scores_schema(self.schema, self.output),
            lineage={**lineage, "features": features, "model": model, "runtime": runtime},
        )
        progress.done()
        return manifest

    def stage_shard(self, shard: ShardRequest) -> StagedOutput:
        """Score this shard's rows into a staged file; a publish step combines the shards."""
        from airflow_mlops.io.parquet import write_batches

        request = self.request
        progress = Progress(
            f"score {request.features_table}/ds={request.partition} "
            f"shard {shard.index}/{shard.count}",
            logger=self.log,
        )
        written = write_batches(
            self._scored(self.columns, progress),
            self.store.filesystem,
            shard.staged_path,
            schema=_scores_schema(self.schema, self.output),
        )
        progress.done()
        lineage = {
            "model": self.champion.lineage(),
            "shard": {"index": shard.index, "of": shard.count},
            "runtime": self.runtime,
        }
        return staged_output(written, partition=request.partition, lineage=lineage)

    def _scored(
        self, columns: list[str], progress: Progress, shadow: ShadowScorer | None = None
    ) -> Iterator[pa.RecordBatch]:
        """The champion's output batches (of the request's shard), feeding the shadow."""
        request, shard = self.request, self.request.shard
        pending: deque[pa.RecordBatch] = deque()

        def feed() -> Iterator[pa.RecordBatch]:
            for batch in self.store.iter_partition_batches(
                request.features_table,
                request.partition,
                columns=columns,
                batch_size=request.batch_size,
            ):
                if shard is not None:
                    batch = batch.filter(_in_shard(batch.column(self.output.entity_key), shard))
                pending.append(batch)
                yield batch

        for result in scoring_batches.score_batches(
            feed(),
            model=self.champion.model,
            artifact=self.champion.artifact,
            feature_names=self.feature_names,
            output=self.output,
            workers=request.workers,
        ):
            features = pending.popleft()
            progress.add(result.batch.num_rows)
            if shadow is not None:
                shadow.observe(features, result.batch, result.seconds)
            yield result.batch

    # -- the challenger ------------------------------------------------------------------

    def open_shadow(
        self, registry: ModelRegistry, shadow: ShadowRequest
    ) -> tuple[ShadowScorer | None, str | None]:
        """The shadow scorer writing its staged file; (None, the error) for a broken challenger."""
        from airflow_mlops.io.parquet import open_writer
        from airflow_mlops.scoring.shadow import ShadowScorer

        try:
            challenger = registry.load(self.request.model_name, alias=shadow.alias)
            contract = FeatureContract.from_json(json.dumps(challenger.record["input_contract"]))
            scoring_batches.check_model_inputs(
                self.schema, contract, entity_key=self.output.entity_key
            )
            output = ModelOutput.from_record(challenger.record, self.output.threshold)
        except Exception as exc:  # a broken challenger is reported, never fatal
            self.log.error(
                "Shadow scoring disabled: challenger %r failed to load: %s", shadow.alias, exc
            )
            return None, f"{type(exc).__name__}: {exc}"
        sink = open_writer(
            self.store.filesystem, shadow.staged_path, _scores_schema(self.schema, output)
        )
        self.log.info(
            "Shadow scoring %.0f%% of entities with challenger %s",
            100 * shadow.fraction,
            challenger.version,
        )
        scorer = ShadowScorer(
            challenger.model,
            sink=sink,
            fraction=shadow.fraction,
            seed=shadow.seed,
            feature_names=contract.names,
            output=output,
        )
        return scorer, None

    def publish_shadow(
        self,
        request: ShadowRequest,
        shadow: ShadowScorer | None,
        error: str | None,
        lineage: Mapping[str, Any],
    ) -> ShadowResult:
        """Publish the challenger's staged scores with its report; report a failure."""
        from airflow_mlops.io.parquet import iter_batches, read_schema

        if shadow is not None:
            shadow.sink.close()
        report = shadow.report() if shadow is not None else {"status": "failed", "error": error}
        summary = {k: v for k, v in report.items() if k != "bins"}
        if report["status"] != "ok":
            self.log.error(
                "Shadow scoring failed (the champion's scores are published): %s", report["error"]
            )
            return ShadowResult(summary, None)
        fs, path = self.store.filesystem, request.staged_path
        manifest = self.store.publish_partition(
            request.table,
            self.request.partition,
            iter_batches(fs, path, batch_size=self.request.batch_size),
            schema=read_schema(fs, path),
            lineage={**lineage, "shadow_report": report},
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
        return ShadowResult(
            {**summary, "table": request.table, "version": manifest["version"]}, manifest
        )


def _in_shard(keys: pa.Array, shard: ShardRequest) -> pa.Array:
    import pyarrow as pa

    from airflow_mlops.scoring.shadow import key_hashes

    return pa.array(key_hashes(keys) % shard.count == shard.index)


def _scores_schema(features: pa.Schema, output: ModelOutput) -> pa.Schema:
    """The scores' schema: the entity key keeps its type in the features."""
    return scoring_batches.scores_schema(features.field(output.entity_key).type, output)
