"""The serving core: :class:`ModelServer`, the :class:`~airflow_mlops.serving.protocol.
InferenceService` both front ends call.

A request either carries every input of the model's contract (raw features) or only the
entity key, whose features are looked up in the served partition of the feature table. A
key that is not there gets NaN/empty outputs and a message in the ``error`` output for its
row, never an exception — even when no key of the request is found, so that one row and
many rows are answered alike. What is served (model and partition) is one immutable
:class:`~airflow_mlops.serving.state.ServingState`, replaced in one assignment: a request
keeps the state it started with. Answered requests go to the serving log and the shadow
challenger off the request path (:mod:`~airflow_mlops.serving.log`,
:mod:`~airflow_mlops.serving.shadow`).

Hot swap: :meth:`ModelServer.start_following` polls the alias and the table's latest
published version on a background thread; a change is loaded and verified there, off the
request path, then swapped in — or refused, the old state kept and the refusal described.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from airflow_mlops.exceptions import (
    ModelNotFoundError,
    ServingUnavailableError,
)
from airflow_mlops.serving.protocol import (
    SERVER_NAME,
    InferenceResponse,
    ModelMetadata,
    ServedContract,
    ServerMetadata,
    Tensor,
)
from airflow_mlops.serving.requests import (
    check_request,
    score_alone,
    score_requests,
    wanted_outputs,
)

if TYPE_CHECKING:
    from airflow_mlops.models.registry import ModelRegistry
    from airflow_mlops.serving.follow import Follower, Refusal, Source
    from airflow_mlops.serving.log import SegmentWriter
    from airflow_mlops.serving.model import ServedModel
    from airflow_mlops.serving.protocol import InferenceRequest
    from airflow_mlops.serving.requests import CheckedRequest, ScoredRequest
    from airflow_mlops.serving.shadow import OnlineShadow
    from airflow_mlops.serving.state import ServingState
    from airflow_mlops.store.feature_store import FeatureStore

_log = logging.getLogger(__name__)


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
    :param serving_log: where answered rows (and shadow comparisons) are logged, off the
        request path (:class:`~airflow_mlops.serving.log.SegmentWriter` on the store's logs);
        ``None``: not logged.
    :param shadow_alias: a challenger alias to shadow-score a sample of the served rows
        (:class:`~airflow_mlops.serving.shadow.OnlineShadow`); ``None``: no shadow.
    :param shadow_fraction: share of entity keys shadowed (batch shadow scoring's hash).
    :param shadow_seed: the hash's seed (batch shadow scoring's).
    :raises ValueError: a negative ``batch_wait`` or ``max_batch_rows`` below 1.
    :raises ArgumentError: a shadow fraction or seed out of range.

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
        serving_log: SegmentWriter | None = None,
        shadow_alias: str | None = None,
        shadow_fraction: float = 1.0,
        shadow_seed: int = 0,
    ) -> None:
        from airflow_mlops.serving.batching import Batcher, BatchStats, LoopBatcher
        from airflow_mlops.serving.shadow import OnlineShadow

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
        #: the micro-batchers (threads', the event loop's; one count), ``None`` when off
        self.batch_wait, self.batching = batch_wait, BatchStats()
        self.batcher: Batcher[CheckedRequest, ScoredRequest] | None = None
        self.loop_batcher: LoopBatcher[CheckedRequest, ScoredRequest] | None = None
        if batch_wait > 0:
            self.batcher = Batcher(score_requests, batch_wait, max_batch_rows, self.batching)
            self.loop_batcher = LoopBatcher(score_requests, max_batch_rows, self.batching)
        #: the serving log's writer and the shadow challenger, ``None`` when off
        self.serving_log = serving_log
        self.shadow: OnlineShadow | None = None
        if shadow_alias is not None:
            self.shadow = OnlineShadow(
                registry,
                model_name,
                self._load_challenger,
                sink=serving_log,
                alias=shadow_alias,
                fraction=shadow_fraction,
                seed=shadow_seed,
            )

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
        for worker in (self.serving_log, self.shadow):
            if worker is not None:
                worker.start()
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
        """Stop following (a poll in progress finishes first), the shadow challenger and the
        serving log (what it holds is written first); answering requests goes on."""
        if self._follower is not None:
            self._follower.stop()
            self._follower = None
        if self.shadow is not None:
            self.shadow.stop()
        if self.serving_log is not None:
            self.serving_log.close()

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
        from airflow_mlops.serving.state import poll_source

        store = self._require_store() if self.feature_table is not None else None
        table, partition = self.feature_table, self.partition
        return poll_source(store, self.registry, self.model_name, self.alias, table, partition)

    def describe(self) -> dict[str, object]:
        """What is served (model, runtime, partition), whether it is followed, how many swaps
        and refusals, and the last refusal (what and why), for readiness details and logs."""
        state = self.state
        swaps = {
            "following": self._follower is not None and self._follower.running,
            "swaps": self.swaps,
            "refusals": self.refusals,
            "last_refusal": self.last_refusal,
            "batching": self._batching(),
            "serving_log": self.serving_log.describe() if self.serving_log is not None else None,
            "shadow": self.shadow.describe() if self.shadow is not None else None,
        }
        if state is None:
            return {"ready": False, "model": self.model_name, "alias": self.alias, **swaps}
        features = state.index.describe() if state.index is not None else None
        return {"ready": True, "model": state.model.describe(), "features": features, **swaps}

    def _load_state(self) -> ServingState:
        from airflow_mlops.serving.state import load_state

        store = self._require_store() if self.feature_table is not None else self.store
        table, key, partition = self.feature_table, self.key_column, self.partition
        return load_state(store, self.registry, self.model_name, self.alias, table, key, partition)

    def _batching(self) -> dict[str, object] | None:
        if self.batcher is None:
            return None
        return self.batching.describe(self.batch_wait, self.batcher.max_rows)

    def _load_challenger(self, alias: str) -> ServedModel:
        from airflow_mlops.serving.model import load_verified

        state = self.state
        index = state.index if state is not None else None
        # scikit-learn, as batch shadow scoring runs the challenger: the same rows score alike
        store = self.store
        return load_verified(self.registry, self.model_name, alias, store, index, runtime="sklearn")

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
        return self._serving(name, version).metadata()

    def served_contract(self) -> ServedContract:
        """The served model's contract, lookup key and outputs, for the REST typed endpoint.

        :raises ServingUnavailableError: before :meth:`load`.
        """
        return self._serving(self.model_name, None).served_contract()

    def infer(self, name: str, version: str | None, request: InferenceRequest) -> InferenceResponse:
        """Answer ``request`` (its thread waits for its micro-batch)."""
        state = self._serving(name, version)
        wanted = wanted_outputs(state, request.outputs)
        served_at, started = datetime.now(UTC), time.perf_counter()
        checked = check_request(state, request.inputs)
        scored = score_alone(checked) if self.batcher is None else self.batcher.score(checked)
        return self._answer(state, request, wanted, scored, served_at, started)

    async def infer_async(
        self, name: str, version: str | None, request: InferenceRequest
    ) -> InferenceResponse:
        """Answer ``request`` on the running event loop (it awaits its micro-batch, scored on
        the loop: :class:`~airflow_mlops.serving.batching.LoopBatcher`)."""
        state = self._serving(name, version)
        wanted = wanted_outputs(state, request.outputs)
        served_at, started = datetime.now(UTC), time.perf_counter()
        checked = check_request(state, request.inputs)
        batcher = self.loop_batcher
        scored = score_alone(checked) if batcher is None else await batcher.score(checked)
        return self._answer(state, request, wanted, scored, served_at, started)

    def _answer(
        self,
        state: ServingState,
        request: InferenceRequest,
        wanted: list[str],
        scored: ScoredRequest,
        served_at: datetime,
        started: float,
    ) -> InferenceResponse:
        columns, available = scored.columns, state.outputs
        if self.serving_log is not None or self.shadow is not None:
            self._observe(state, request, scored, served_at, time.perf_counter() - started)
        outputs = tuple(
            Tensor(output, available[output], (len(columns[output]),), columns[output])
            for output in wanted
        )
        return InferenceResponse(state.model.name, state.model.version, outputs, id=request.id)

    def _observe(
        self,
        state: ServingState,
        request: InferenceRequest,
        scored: ScoredRequest,
        served_at: datetime,
        seconds: float,
    ) -> None:
        """Hand the answered request to the serving log and the shadow (neither waits)."""
        from airflow_mlops.serving.log import ServedRequest, requests_log

        served = ServedRequest.answered(state, request.id, scored, served_at, seconds)
        if self.serving_log is not None:
            self.serving_log.append(requests_log(state.model.name), served)
        if self.shadow is not None:
            self.shadow.submit(served)

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
