"""The served model: a registry alias resolved to a version, loaded checksum-verified, with
the runtime batch scoring would choose, scoring through batch scoring's per-batch function.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow_mlops.contract import FeatureContract
from airflow_mlops.models.records import ModelOutput

if TYPE_CHECKING:
    from collections.abc import Callable

    import numpy as np
    import pandas as pd
    import pyarrow as pa

    from airflow_mlops.models.records import ModelRecord
    from airflow_mlops.models.registry import ModelRegistry
    from airflow_mlops.serving.features import FeatureIndex
    from airflow_mlops.store.feature_store import FeatureStore


@dataclass(frozen=True)
class ServedModel:
    """A verified model version and how its scores are read.

    Build it with :meth:`load`.

    :param name: the registry's model name.
    :param version: the version the alias pointed at when loaded.
    :param alias: the alias it was resolved from.
    :param record: the version's registry record.
    :param output: the score and decision columns and the threshold.
    :param contract: the model's input contract (``record["input_contract"]``).
    :param scorer: what scores: the compiled tree model or the scikit-learn one.
    :param runtime: the runtime chosen (``"tl2cgen"`` or ``"sklearn"``) and its evidence,
        as batch scoring records it in its manifests (see :meth:`with_runtime`).
    """

    name: str
    version: str
    alias: str
    record: ModelRecord
    output: ModelOutput
    contract: FeatureContract
    scorer: Any
    runtime: dict[str, Any]

    @classmethod
    def load(cls, registry: ModelRegistry, name: str, *, alias: str = "champion") -> ServedModel:
        """Resolve ``alias`` and load that version, checksum-verified (scored by
        scikit-learn until :meth:`with_runtime` chooses).

        :raises ModelNotFoundError: for an unknown model or alias.
        :raises ChecksumMismatchError: when the artifact changed after registration.
        :raises ModelLoadError: for a damaged record or an artifact that is no classifier.
        """
        version = registry.resolve(name, alias)
        loaded = registry.load(name, version=version)
        contract = FeatureContract.from_json(json.dumps(loaded.record["input_contract"]))
        output = ModelOutput.from_record(loaded.record)
        runtime = {"requested": "sklearn", "name": "sklearn", "reason": "not chosen yet"}
        return cls(name, version, alias, loaded.record, output, contract, loaded.model, runtime)

    def with_runtime(
        self, check_rows: Callable[[], pd.DataFrame], *, runtime: str = "auto"
    ) -> ServedModel:
        """This model with the runtime batch scoring would choose for it
        (:func:`~airflow_mlops.scoring.runtime.compiled_runtime`).

        :param check_rows: gives the rows the compiled runtime is checked on, the model's
            input columns (batch scoring checks on the partition's first rows).
        :param runtime: ``"auto"`` (compiled when the registry verified it) or ``"sklearn"``.
        """
        from airflow_mlops.models.accelerate import runtime_summary
        from airflow_mlops.scoring.runtime import compiled_runtime

        compiled, check = compiled_runtime(
            lambda: self.scorer,
            self.record,
            check_rows,
            requested=runtime,
            threshold=self.output.threshold,
        )
        summary = {"requested": runtime, **runtime_summary(check)}
        scorer = self.scorer if compiled is None else compiled
        return dataclasses.replace(self, scorer=scorer, runtime=summary)

    @cached_property
    def input_schema(self) -> pa.Schema:
        """The input contract as an Arrow schema, built once (requests are checked against it)."""
        return self.contract.to_arrow_schema()

    def predict(self, features: pa.Table) -> tuple[np.ndarray, pa.Array]:
        """``(P(class 1) as float64, decisions)`` for each row of ``features``.

        Scored by :func:`airflow_mlops.scoring.batches.probabilities`, as batch scoring
        scores a batch (padded to a multiple of 64 rows), so a row's score is the one batch
        scoring gives it, bit for bit.

        :param features: the model's input columns (others are ignored), no row left out.
        """
        import pyarrow as pa

        from airflow_mlops.scoring.batches import probabilities

        names = self.contract.names
        columns = [features.column(name).combine_chunks() for name in names]
        batch = pa.RecordBatch.from_arrays(columns, names=names)
        scores = probabilities(self.scorer, batch)
        return scores, self.output.decisions(pa.array(scores, type=pa.float64()))

    def describe(self) -> dict[str, Any]:
        """What is served, for readiness details and logs."""
        return {
            "name": self.name,
            "version": self.version,
            "alias": self.alias,
            "sha256": self.record["sha256"],
            "runtime": self.runtime["name"],
        }


def load_verified(
    registry: ModelRegistry,
    name: str,
    alias: str,
    store: FeatureStore | None,
    index: FeatureIndex | None,
    *,
    runtime: str = "auto",
) -> ServedModel:
    """``alias`` of ``name``, loaded checksum-verified, with ``runtime`` chosen as
    :meth:`ServedModel.with_runtime` chooses it, checked on :func:`check_rows` (see
    :meth:`ServedModel.load`'s errors)."""
    model = ServedModel.load(registry, name, alias=alias)
    return model.with_runtime(check_rows(model, store, index), runtime=runtime)


def check_rows(
    model: ServedModel, store: FeatureStore | None, index: FeatureIndex | None
) -> Callable[[], pd.DataFrame]:
    """The compiled runtime's check rows: the served partition's first rows (batch scoring
    checks on the scored partition's), else the model's training partition's, else none
    (``compile_tree_model`` then keeps scikit-learn)."""
    from airflow_mlops.models.accelerate import CHECK_ROWS

    names = model.contract.names

    def rows() -> pd.DataFrame:
        import pandas as pd

        if index is not None and all(name in index.data.column_names for name in names):
            return index.data.slice(0, CHECK_ROWS).select(names).to_pandas()
        training = model.record["training_data"]
        table, partitions = training.get("table"), training.get("partitions") or [None]
        if store is None or not table or partitions[0] not in store.list_partitions(table):
            return pd.DataFrame(columns=names)
        batches = store.iter_partition_batches(
            table, partitions[0], columns=names, batch_size=CHECK_ROWS
        )
        first = next(iter(batches), None)
        return pd.DataFrame(columns=names) if first is None else first.to_pandas()

    return rows
