"""The serving core: :class:`ModelServer`, the :class:`~airflow_mlops.serving.protocol.
InferenceService` both front ends call.

A request either carries every input of the model's contract (raw features) or only the
entity key, whose features are looked up in the served partition of the feature table. A
key that is not there gets NaN/empty outputs and a message in the ``error`` output for its
row, never an exception — even when no key of the request is found, so that one row and
many rows are answered alike. What is served (model and partition) is one immutable
:class:`ServingState`, replaced in one assignment: a request keeps the state it started with.

Hot swap: :meth:`ModelServer.start_following` polls the alias and the table's latest
published version on a background thread; a change is loaded and verified there, off the
request path, then swapped in — or refused, the old state kept and the refusal described.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from airflow_mlops.exceptions import (
    InferenceRequestError,
    ModelNotFoundError,
    ServingUnavailableError,
    format_names,
)
from airflow_mlops.serving.protocol import (
    SERVER_NAME,
    InferenceResponse,
    ModelMetadata,
    ServedContract,
    ServerMetadata,
    Tensor,
    TensorMetadata,
)
from airflow_mlops.serving.requests import ERROR_OUTPUT, score_request

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

    from airflow_mlops.models.registry import ModelRegistry
    from airflow_mlops.serving.features import FeatureIndex
    from airflow_mlops.serving.follow import Follower, Refusal, Source
    from airflow_mlops.serving.model import ServedModel
    from airflow_mlops.serving.protocol import InferenceRequest
    from airflow_mlops.store.feature_store import FeatureStore

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServingState:
    """What is served: the verified model and, for key lookups, the feature partition."""

    model: ServedModel
    index: FeatureIndex | None

    @property
    def key_column(self) -> str:
        return self.index.key_column if self.index is not None else self.model.output.entity_key

    @property
    def source(self) -> Source:
        index = self.index
        if index is None:
            return (self.model.version, None, None)
        return (self.model.version, index.partition, index.version)


class ModelServer:
    """Online inference over a registry alias and, optionally, a feature table.

    :param store: the feature store (needed for ``feature_table``, and to check the
        compiled runtime on the model's training rows without one).
    :param registry: the model registry.
    :param model_name: the model served, under this name.
    :param alias: the registry alias served (``champion`` by default).
    :param feature_table: the table whose rows key-only requests are answered from; ``None``
        serves raw features only.
    :param key_column: the table's key column (default: the model's ``entity_key``).
    :param partition: the partition to serve (default: the latest published one).
    :param batch_wait: micro-batching: the longest (seconds) a small request's rows wait to
        be scored in one model call with concurrent requests' (0: off, each request alone).
    :param max_batch_rows: the most rows one batched model call scores.
    :raises ValueError: a negative ``batch_wait`` or ``max_batch_rows`` below 1.

    .. code-block:: python

        server = ModelServer(store, registry, "credit_risk", feature_table="customer_features")
        server.load()
        server.infer("credit_risk", None, InferenceRequest(
            inputs=(Tensor("customer_id", "INT64", (1,), [42]),)))
    """

    def __init__(
        self,
        store: FeatureStore | None,
        registry: ModelRegistry,
        model_name: str,
        *,
        alias: str = "champion",
        feature_table: str | None = None,
        key_column: str | None = None,
        partition: str | None = None,
        batch_wait: float = 0.0,
        max_batch_rows: int = 256,
    ) -> None:
        from airflow_mlops.serving.batching import Batcher

        self.store = store
        self.registry = registry
        self.model_name = model_name
        self.alias = alias
        self.feature_table = feature_table
        self.key_column = key_column
        self.partition = partition
        #: the served state; ``None`` until :meth:`load` succeeds. Replaced, never mutated.
        self.state: ServingState | None = None
        #: states swapped in by :meth:`reload` / following, and states refused
        self.swaps = 0
        self.refusals = 0
        self.last_refusal: Refusal | None = None
        self._refused: Source | None = None
        self._follower: Follower | None = None
        if not batch_wait >= 0:
            raise ValueError(f"batch_wait must be a float >= 0. Got {batch_wait} instead.")
        #: the micro-batcher, ``None`` when off
        self.batcher = Batcher(batch_wait, max_batch_rows) if batch_wait > 0 else None

    # -- loading -------------------------------------------------------------------------

    def load(self) -> ServingState:
        """Load and verify the model (and the feature partition), then serve them.

        :raises ModelNotFoundError: for an unknown model or alias.
        :raises ChecksumMismatchError: for a tampered artifact or a damaged partition file.
        :raises PartitionNotFoundError: when the feature table has no (such) partition.
        :raises ContractError: when the partition lacks the model's inputs, or its keys are
            null or repeated.
        """
        state = self._load_state()
        self.state = state
        _log.info("Serving %s", self.describe())
        return state

    def reload(self) -> bool:
        """Load the alias' and the table's current state beside the served one; serve it only
        if it loads and verifies. False (the old state kept, the refusal counted, logged and
        described) otherwise."""
        return self._swap(None)

    def follow_once(self) -> bool:
        """Poll cheaply (the alias file, the table's latest partition and its ref); when what
        they name is not what is served, :meth:`reload`. A refused source is not retried
        until it changes. True when a new state was swapped in.

        :raises ModelNotFoundError: the alias is gone (the served state is kept).
        """
        source = self._polled_source()
        state = self.state
        if (state is not None and source == state.source) or source == self._refused:
            return False
        return self._swap(source)

    def start_following(self, interval: float = 1.0) -> None:
        """Follow the alias and the table: :meth:`follow_once` every ``interval`` seconds on a
        background thread, until :meth:`stop`. A no-op when already following.

        :raises ValueError: ``interval`` is not positive.
        """
        from airflow_mlops.serving.follow import Follower

        if self._follower is not None and self._follower.running:
            return
        self._follower = Follower(self.follow_once, interval, name=f"follow-{self.model_name}")
        self._follower.start()
        _log.info("Following %s alias %r every %.1f s", self.model_name, self.alias, interval)

    def stop(self) -> None:
        """Stop following (a poll in progress finishes first); serving goes on."""
        if self._follower is not None:
            self._follower.stop()
            self._follower = None

    def _swap(self, source: Source | None) -> bool:
        try:
            state = self._load_state()
        except Exception as exc:
            self.refusals += 1
            self._refused = source
            model_version, partition, partition_version = source or (None, None, None)
            error = f"{type(exc).__name__}: {exc}"
            self.last_refusal = {
                "model_version": model_version,
                "partition": partition,
                "partition_version": partition_version,
                "error": error,
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            served = self.state.source if self.state is not None else None
            _log.error("Refused %s: %s; still serving %s", source, error, served)
            return False
        self.state = state
        self.swaps += 1
        self._refused = None
        _log.info("Serving %s", self.describe())
        return True

    def _polled_source(self) -> Source:
        version = self.registry.resolve(self.model_name, self.alias)
        if self.feature_table is None:
            return (version, None, None)
        store = self._require_store()
        partition = self.partition or store.latest_partition(self.feature_table)
        if partition is None:
            return (version, None, None)
        return (version, partition, store.manifest(self.feature_table, partition)["version"])

    def describe(self) -> dict[str, object]:
        """What is served (model, runtime, partition), whether it is followed, how many swaps
        and refusals, and the last refusal (what and why), for readiness details and logs."""
        state = self.state
        swaps = {
            "following": self._follower is not None and self._follower.running,
            "swaps": self.swaps,
            "refusals": self.refusals,
            "last_refusal": self.last_refusal,
            "batching": self.batcher.describe() if self.batcher is not None else None,
        }
        if state is None:
            return {"ready": False, "model": self.model_name, "alias": self.alias, **swaps}
        features = state.index.describe() if state.index is not None else None
        return {"ready": True, "model": state.model.describe(), "features": features, **swaps}

    def _load_state(self) -> ServingState:
        from airflow_mlops.scoring.batches import check_model_inputs
        from airflow_mlops.serving.features import FeatureIndex
        from airflow_mlops.serving.inputs import oip_datatype
        from airflow_mlops.serving.model import ServedModel

        model = ServedModel.load(self.registry, self.model_name, alias=self.alias)
        for field in model.input_schema:
            oip_datatype(field.type)  # refuse, at load, inputs the protocol cannot carry
        index = None
        if self.feature_table is not None:
            key = self.key_column or model.output.entity_key
            index = FeatureIndex.load(
                self._require_store(),
                self.feature_table,
                key,
                partition=self.partition,
                columns=model.contract.names,
            )
            check_model_inputs(index.data.schema, model.contract, entity_key=key)
        return ServingState(model.with_runtime(self._check_rows(model, index)), index)

    def _check_rows(
        self, model: ServedModel, index: FeatureIndex | None
    ) -> Callable[[], pd.DataFrame]:
        """The compiled runtime's check rows: the served partition's first rows (batch
        scoring checks on the scored partition's), else the model's training partition's."""
        from airflow_mlops.models.accelerate import CHECK_ROWS

        names = model.contract.names

        def rows() -> pd.DataFrame:
            import pandas as pd

            if index is not None:
                return index.data.slice(0, CHECK_ROWS).select(names).to_pandas()
            training = model.record["training_data"]
            table, partitions = training.get("table"), training.get("partitions") or [None]
            store = self.store
            if store is None or not table or partitions[0] not in store.list_partitions(table):
                return pd.DataFrame(columns=names)  # compile_tree_model then keeps scikit-learn
            assert store is not None
            batches = store.iter_partition_batches(
                table, partitions[0], columns=names, batch_size=CHECK_ROWS
            )
            first = next(iter(batches), None)
            return pd.DataFrame(columns=names) if first is None else first.to_pandas()

        return rows

    def _require_store(self) -> FeatureStore:
        if self.store is None:
            raise ServingUnavailableError(
                f"ModelServer was given feature_table={self.feature_table!r} but no store: "
                "pass the feature store the table is published in."
            )
        return self.store

    # -- the protocol --------------------------------------------------------------------

    def live(self) -> bool:
        return True

    def ready(self) -> bool:
        return self.state is not None

    def model_ready(self, name: str, version: str | None = None) -> bool:
        state = self.state
        self._check_model(name, version, state)
        return state is not None

    def server_metadata(self) -> ServerMetadata:
        from airflow_mlops import __version__

        return ServerMetadata(SERVER_NAME, __version__)

    def model_metadata(self, name: str, version: str | None = None) -> ModelMetadata:
        from airflow_mlops.serving.inputs import oip_datatype

        state = self._serving(name, version)
        model = state.model
        inputs = [TensorMetadata(f.name, oip_datatype(f.type), (-1,)) for f in model.input_schema]
        if state.index is not None and state.key_column not in model.contract.names:
            key_type = oip_datatype(state.index.key_type)
            inputs.append(TensorMetadata(state.key_column, key_type, (-1,)))
        outputs = [
            TensorMetadata(name, datatype, (-1,)) for name, datatype in _outputs(state).items()
        ]
        return ModelMetadata(
            model.name, (model.version,), model.runtime["name"], tuple(inputs), tuple(outputs)
        )

    def served_contract(self) -> ServedContract:
        """The served model's contract, lookup key and outputs, for the REST typed endpoint.

        :raises ServingUnavailableError: before :meth:`load`.
        """
        from airflow_mlops.contract import FeatureField

        state = self._serving(self.model_name, None)
        key = None
        if state.index is not None:
            key = FeatureField(state.key_column, str(state.index.key_type), nullable=False)
        return ServedContract(self.model_name, state.model.contract, key, state.model.output)

    def infer(self, name: str, version: str | None, request: InferenceRequest) -> InferenceResponse:
        state = self._serving(name, version)
        available = _outputs(state)
        wanted = list(available) if request.outputs is None else list(request.outputs)
        unknown = [output for output in wanted if output not in available]
        if unknown:
            raise InferenceRequestError(
                f"Model {name!r} has no output {unknown[0]!r}; its outputs are "
                f"{format_names(available)}: request those, or omit 'outputs' for all.",
                input_name=unknown[0],
            )
        batcher, model = self.batcher, state.model
        predict = None if batcher is None else partial(batcher.predict, model)
        columns = score_request(model, state.index, request.inputs, predict)
        outputs = tuple(
            Tensor(output, available[output], (len(columns[output]),), columns[output])
            for output in dict.fromkeys(wanted)
        )
        return InferenceResponse(state.model.name, state.model.version, outputs, id=request.id)

    def _serving(self, name: str, version: str | None) -> ServingState:
        state = self.state
        self._check_model(name, version, state)
        if state is None:
            raise ServingUnavailableError(
                f"Model {name!r} is not loaded yet (alias {self.alias!r}); retry when "
                "/v2/health/ready answers ready."
            )
        return state

    def _check_model(self, name: str, version: str | None, state: ServingState | None) -> None:
        served = state.model.version if state is not None else None
        if name != self.model_name:
            raise ModelNotFoundError(
                f"No model {name!r} is served here; this server serves {self.model_name!r}"
                + (f" version {served}." if served else ".")
            )
        if version is not None and served is not None and version != served:
            raise ModelNotFoundError(
                f"Model {name!r} version {version!r} is not served; this server serves "
                f"version {served} (alias {self.alias!r}). Ask for {served} or for no version."
            )


def _outputs(state: ServingState) -> dict[str, str]:
    """Output name → datatype: the score, the decision and, with a feature table, errors."""
    output = state.model.output
    names = {output.score_column: "FP64", output.decision_column: "BYTES"}
    if state.index is not None:
        names[ERROR_OUTPUT] = "BYTES"
    return names
