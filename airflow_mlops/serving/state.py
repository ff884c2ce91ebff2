"""What a server serves (:class:`ServingState`), loaded and verified, and where it comes from:
a registry alias and, for key lookups, the latest (or a named) partition of a feature table.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow_mlops.models.registry import ModelRegistry
    from airflow_mlops.serving.features import FeatureIndex
    from airflow_mlops.serving.follow import Source
    from airflow_mlops.serving.model import ServedModel
    from airflow_mlops.serving.protocol import ModelMetadata, ServedContract
    from airflow_mlops.store.feature_store import FeatureStore


@dataclass(frozen=True)
class ServingState:
    """What is served: the verified model and, for key lookups, the feature partition."""

    model: ServedModel
    index: FeatureIndex | None

    @property
    def key_column(self) -> str:
        return self.index.key_column if self.index is not None else self.model.output.entity_key

    @cached_property
    def outputs(self) -> dict[str, str]:
        """Output name → datatype: the score, the decision and, with a feature table, errors."""
        from airflow_mlops.serving.protocol import ERROR_OUTPUT

        output = self.model.output
        names = {output.score_column: "FP64", output.decision_column: "BYTES"}
        if self.index is not None:
            names[ERROR_OUTPUT] = "BYTES"
        return names

    def metadata(self) -> ModelMetadata:
        """The protocol's model metadata: the contract's inputs (and the lookup key), the
        outputs, the version and the runtime."""
        from airflow_mlops.serving.inputs import oip_datatype
        from airflow_mlops.serving.protocol import ModelMetadata, TensorMetadata

        model = self.model
        inputs = [TensorMetadata(f.name, oip_datatype(f.type), (-1,)) for f in model.input_schema]
        if self.index is not None and self.key_column not in model.contract.names:
            key_type = oip_datatype(self.index.key_type)
            inputs.append(TensorMetadata(self.key_column, key_type, (-1,)))
        outputs = [TensorMetadata(name, kind, (-1,)) for name, kind in self.outputs.items()]
        return ModelMetadata(
            model.name, (model.version,), model.runtime["name"], tuple(inputs), tuple(outputs)
        )

    def served_contract(self) -> ServedContract:
        """The model's contract, lookup key and outputs, for the REST typed endpoint."""
        from airflow_mlops.contract import FeatureField
        from airflow_mlops.serving.protocol import ServedContract

        key = None
        if self.index is not None:
            key = FeatureField(self.key_column, str(self.index.key_type), nullable=False)
        return ServedContract(self.model.name, self.model.contract, key, self.model.output)

    @property
    def source(self) -> Source:
        index = self.index
        if index is None:
            return (self.model.version, None, None)
        return (self.model.version, index.partition, index.version)


def load_state(
    store: FeatureStore | None,
    registry: ModelRegistry,
    model_name: str,
    alias: str,
    feature_table: str | None,
    key_column: str | None = None,
    partition: str | None = None,
) -> ServingState:
    """Load and verify ``alias`` of ``model_name`` and, with ``feature_table`` (then ``store``
    is needed), its key index over the partition (default: the latest published one).

    :raises ModelNotFoundError: for an unknown model or alias.
    :raises ChecksumMismatchError: for a tampered artifact or a damaged partition file.
    :raises PartitionNotFoundError: when the feature table has no (such) partition.
    :raises ContractError: when the partition lacks the model's inputs, or its keys are
        null or repeated.
    :raises InferenceRequestError: for an input type the protocol cannot carry.
    """
    from airflow_mlops.scoring.batches import check_model_inputs
    from airflow_mlops.serving.features import FeatureIndex
    from airflow_mlops.serving.inputs import oip_datatype
    from airflow_mlops.serving.model import ServedModel, check_rows

    model = ServedModel.load(registry, model_name, alias=alias)
    for field in model.input_schema:
        oip_datatype(field.type)  # refuse, at load, inputs the protocol cannot carry
    index = None
    if feature_table is not None:
        assert store is not None
        key = key_column or model.output.entity_key
        index = FeatureIndex.load(
            store, feature_table, key, partition=partition, columns=model.contract.names
        )
        check_model_inputs(index.data.schema, model.contract, entity_key=key)
    return ServingState(model.with_runtime(check_rows(model, store, index)), index)


def poll_source(
    store: FeatureStore | None,
    registry: ModelRegistry,
    model_name: str,
    alias: str,
    feature_table: str | None,
    partition: str | None,
) -> Source:
    """Where the alias and the table point now, cheaply (the alias file, the table's latest
    partition and its ref): compare it with :attr:`ServingState.source`."""
    version = registry.resolve(model_name, alias)
    if feature_table is None or store is None:
        return (version, None, None)
    day = partition or store.latest_partition(feature_table)
    if day is None:
        return (version, None, None)
    return (version, day, store.manifest(feature_table, day)["version"])
