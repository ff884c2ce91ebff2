"""What a scoring run is asked to do, and what it wrote: the inputs and outputs of
:func:`airflow_mlops.scoring.job.score_partition`.

The operator, the ``airflow-mlops score`` command and the benchmark each build a
:class:`ScoringRequest` (aliases already resolved to a version, staging paths chosen) and
read a :class:`ScoringResult`. The requests check their own values, in scikit-learn's
message form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from airflow_mlops.checks import argument_error, check_choice, check_int, check_number
from airflow_mlops.exceptions import ArgumentError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from airflow_mlops.store.publish import Manifest
    from airflow_mlops.store.staging import StagedOutput

#: ``runtime`` values: the compiled runtime when verified, else scikit-learn; or scikit-learn.
RUNTIMES = ("auto", "sklearn")


@dataclass(frozen=True)
class ShadowRequest:
    """A challenger scoring a seeded sample of the entities beside the champion.

    :param alias: the challenger's alias (of the champion's model name).
    :param table: the table its scores are published to.
    :param staged_path: the staging file its scores wait in until the champion's are
        published.
    :param fraction: share of entities it scores, in (0, 1].
    :param seed: seed (>= 0) of the entity-key hash choosing them; reruns pick the same rows.
    """

    alias: str
    table: str
    staged_path: str
    fraction: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        check_number(self.fraction, "fraction", "ShadowRequest", low=0, high=1, closed="right")
        check_int(self.seed, "seed", "ShadowRequest", min_value=0)


@dataclass(frozen=True)
class ShardRequest:
    """One shard of a partition split by a hash of the entity key.

    :param index: this shard, in ``[0, count)``.
    :param count: the number of shards.
    :param staged_path: the staging file its scores are written to; a publish step
        combines the shards' files into one version of the partition.
    """

    index: int
    count: int
    staged_path: str

    def __post_init__(self) -> None:
        count, index = check_int(self.count, "count", "ShardRequest"), self.index
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
            raise argument_error("index", "ShardRequest", f"an int in [0, {count})", index)


@dataclass(frozen=True)
class ScoringRequest:
    """What to score, with which model version, and where the scores go.

    :param features_table: the feature table to score.
    :param output_table: the scores table (the same partition is written).
    :param model_name: the registry's model name.
    :param model_version: the version scoring (callers resolve aliases).
    :param partition: the day, ``YYYY-MM-DD``.
    :param batch_size: rows per batch (the memory bound).
    :param workers: scoring processes (each loads the verified artifact once); 1 scores in
        this process.
    :param runtime: ``"auto"`` (the compiled runtime when verified, else scikit-learn) or
        ``"sklearn"``.
    :param threshold: a decision threshold overriding the record's ``output.threshold``.
    :param shard: score only this shard, into a staging file (nothing is published).
    :param shadow: a challenger to shadow-score (not with ``shard``).
    """

    features_table: str
    output_table: str
    model_name: str
    model_version: str
    partition: str
    batch_size: int = 100_000
    workers: int = 2
    runtime: Literal["auto", "sklearn"] = "auto"
    threshold: float | None = None
    shard: ShardRequest | None = None
    shadow: ShadowRequest | None = None

    def __post_init__(self) -> None:
        check_int(self.batch_size, "batch_size", "ScoringRequest")
        check_int(self.workers, "workers", "ScoringRequest")
        check_choice(self.runtime, "runtime", "ScoringRequest", RUNTIMES)
        if self.shard is not None and self.shadow is not None:
            raise ArgumentError(
                "A ScoringRequest cannot shadow-score a shard: give one or the other."
            )
        tables = {"features_table": self.features_table, "output_table": self.output_table}
        if self.shadow is not None:
            tables["shadow_table"] = self.shadow.table
        check_distinct_tables(tables, "ScoringRequest")


def check_distinct_tables(tables: Mapping[str, str], owner: str) -> None:
    """Refuse a run that would write scores over its features, or a challenger's scores
    over the champion's.

    :param tables: argument name → table name.
    :raises ArgumentError: when two arguments name the same table.
    """
    if len(set(tables.values())) < len(tables):
        raise ArgumentError(
            f"{owner} needs distinct tables; got {dict(tables)}. Writing scores over the "
            "features (or the challenger's over the champion's) would lose data."
        )


@dataclass(frozen=True)
class ShadowResult:
    """The challenger's part of a run.

    :param report: the comparison report without its bin counts (those are in the shadow
        manifest's lineage), plus ``table`` and ``version`` when it was published.
    :param manifest: the published shadow partition's manifest; None when shadowing failed.
    """

    report: dict[str, Any]
    manifest: Manifest | None


@dataclass(frozen=True)
class ScoringResult:
    """What a run wrote.

    :param request: the request it ran.
    :param runtime: the runtime that scored and its check's evidence (also in the lineage).
    :param manifest: the published scores' manifest (None for a shard).
    :param staged: the shard's staged scores (None when published).
    :param shadow: the challenger's part (None without one).
    """

    request: ScoringRequest
    runtime: dict[str, Any]
    manifest: Manifest | None = None
    staged: StagedOutput | None = None
    shadow: ShadowResult | None = None

    def summary(self) -> dict[str, Any]:
        """The published run in a few JSON fields (a reference to the scores, never them)."""
        if self.manifest is None:
            raise ArgumentError("A shard's run has no published scores to summarise.")
        summary = {
            "table": self.request.output_table,
            "partition": self.request.partition,
            "rows": self.manifest["row_count"],
            "version": self.manifest["version"],
            "model_version": self.request.model_version,
            "content_sha256": self.manifest["content_sha256"],
            "runtime": self.runtime,
        }
        if self.shadow is not None:
            summary["shadow"] = self.shadow.report
        return summary
