"""Micro-batching: concurrent 1-row requests share model calls, each answered exactly as alone."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import pytest

from airflow_mlops.demo.credit_model import MODEL_NAME, OUTPUT
from airflow_mlops.exceptions import InferenceRequestError
from airflow_mlops.serving.batching import Batcher, LoopBatcher
from airflow_mlops.serving.protocol import InferenceRequest, InferenceResponse
from airflow_mlops.serving.service import ModelServer
from tests.serving.conftest import FEATURES, PARTITION, SCORES
from tests.serving.test_service import key_inputs, raw_inputs

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from tests.serving.conftest import Served

THREADS = 16
REQUESTS = 240
SCORE = OUTPUT["score"]
#: the outputs selections cycled over the requests (None: all)
SELECTIONS: tuple[tuple[str, ...] | None, ...] = (
    None,
    (SCORE,),
    ("decision", "error"),
    ("error", SCORE),
)


@pytest.fixture(scope="module")
def batched(served: Served) -> ModelServer:
    server = ModelServer(
        served.store,
        served.registry,
        MODEL_NAME,
        feature_table=FEATURES,
        batch_wait=0.02,
        max_batch_rows=32,
    )
    server.state = served.server.state  # the verified state the unbatched server serves
    return server


def requests(served: Served) -> list[InferenceRequest]:
    """1-row requests, by key and by raw features, each with its own outputs and id; the
    17th asks for an output the model has not."""
    rows = served.features.slice(0, REQUESTS)
    made = []
    for i in range(REQUESTS):
        row = rows.slice(i, 1)
        inputs = key_inputs(row) if i % 2 else raw_inputs(row)
        outputs = ("no_such_output",) if i == 17 else SELECTIONS[i % len(SELECTIONS)]
        made.append(InferenceRequest(inputs=inputs, outputs=outputs, id=f"r{i}"))
    return made


def answer(server: ModelServer, request: InferenceRequest) -> InferenceResponse | str:
    try:
        return server.infer(MODEL_NAME, None, request)
    except InferenceRequestError as exc:
        return f"refused: {exc}"


def concurrently(function: Callable[[Any], Any], items: list[Any]) -> list[Any]:
    start = threading.Barrier(THREADS)

    def first_waiting(item: Any) -> Any:
        if int(item.id[1:]) < THREADS:
            start.wait()  # the first requests start together
        return function(item)

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(first_waiting, items))


def test_concurrent_requests_share_calls_and_get_their_own_answers(
    served: Served, batched: ModelServer
) -> None:
    asked = requests(served)
    alone = [answer(served.server, request) for request in asked]
    together = concurrently(lambda request: answer(batched, request), asked)
    assert together == alone  # bit for bit: floats compare exactly, ids and outputs kept
    assert isinstance(alone[17], str)
    assert "no_such_output" in alone[17]
    for request, response in zip(asked, together, strict=True):
        if isinstance(response, InferenceResponse):
            assert response.id == request.id
            wanted = request.outputs or (SCORE, "decision")
            assert {tensor.name for tensor in response.outputs} >= set(wanted)
    batch = served.store.read_partition(SCORES, PARTITION).sort_by("customer_id")
    batch_scores = batch.column(SCORE).to_pylist()
    for i, response in enumerate(together):
        scored = {t.name: t.data for t in getattr(response, "outputs", ())}.get(SCORE)
        if scored is not None:
            assert scored == [batch_scores[i]]  # bit for bit the batch-scored row (ids 1..)
    batching: Any = batched.describe()["batching"]
    assert batching["requests"] == REQUESTS - 1
    assert batching["largest"] > 1
    assert batching["calls"] < REQUESTS - 1
    assert served.server.describe()["batching"] is None  # off: each request scores alone


@dataclass(frozen=True, eq=False)
class Ask:
    """A stand-in checked request: one row of value ``value`` for ``model``."""

    model: Model
    value: int
    rows: int = 1

    @property
    def batch_key(self) -> Model:
        return self.model


class Model:
    """A stand-in served state: scores each row's value, fails on a negative one, refuses
    (an error for that request only) the value 12."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.calls: list[int] = []

    def score(self, asks: Sequence[Ask]) -> list[tuple[int, str] | Exception]:
        assert all(ask.model is self for ask in asks)  # versions never mix in a call
        self.calls.append(len(asks))
        if any(ask.value < 0 for ask in asks):
            raise RuntimeError("model failed")
        return [
            InferenceRequestError("12 refused") if ask.value == 12 else (ask.value, self.version)
            for ask in asks
        ]


def score(asks: Sequence[Ask]) -> list[tuple[int, str] | Exception]:
    return asks[0].model.score(asks)


def asks() -> tuple[Model, Model, list[Ask]]:
    old, new = Model("v1"), Model("v2")
    return old, new, [Ask(old if i % 3 else new, i if i != 7 else -1) for i in range(30)]


def check_answers(old: Model, new: Model, asked: list[Ask], answers: list[Any]) -> None:
    failed = [i for i, got in enumerate(answers) if got == "model failed"]
    assert 7 in failed
    assert answers[12] == "12 refused"  # its own error; the rest of its batch is scored
    assert sum(old.calls) + sum(new.calls) == 30
    for i, (ask, got) in enumerate(zip(asked, answers, strict=True)):
        if i not in failed and i != 12:
            assert got == (ask.value, ask.model.version)  # its own row, its version
    assert len(failed) in old.calls + new.calls  # exactly the requests of the failing call


def test_a_model_error_fails_its_call_and_versions_never_mix() -> None:
    batcher: Batcher[Ask, tuple[int, str]] = Batcher(score, 0.05, max_rows=1_000)
    old, new, asked = asks()

    def ask(item: Ask) -> Any:
        try:
            return batcher.score(item)
        except (RuntimeError, InferenceRequestError) as exc:
            return str(exc)

    with ThreadPoolExecutor(30) as pool:
        answers = list(pool.map(ask, asked))
    check_answers(old, new, asked, answers)


def test_the_loop_batcher_batches_one_turn_of_the_loop() -> None:
    batcher: LoopBatcher[Ask, tuple[int, str]] = LoopBatcher(score, max_rows=1_000)
    old, new, asked = asks()

    async def ask(item: Ask) -> Any:
        try:
            return await batcher.score(item)
        except (RuntimeError, InferenceRequestError) as exc:
            return str(exc)

    async def all_at_once() -> list[Any]:
        return await asyncio.gather(*(ask(item) for item in asked))

    answers = asyncio.run(all_at_once())
    check_answers(old, new, asked, answers)
    assert batcher.stats.calls == len(old.calls) + len(new.calls) < 30
    assert batcher.stats.largest > 1

    big = Ask(old, 5, rows=1_000)  # a batch already: scored at once, not queued
    assert asyncio.run(batcher.score(big)) == (5, "v1")


def test_a_wrong_value_fails_only_its_own_request(served: Served) -> None:
    """One request's NaN in a batch of 20: its error names its own row 0; the others are
    answered as alone."""
    from airflow_mlops.serving.requests import check_request, score_requests

    state = served.server.state
    assert state is not None
    rows = served.features.slice(0, 20)
    inputs = [raw_inputs(rows.slice(i, 1)) for i in range(20)]
    income = next(t for t in inputs[5] if t.name == "income")
    inputs[5] = tuple(replace(t, data=[float("nan")]) if t is income else t for t in inputs[5])
    results = score_requests([check_request(state, request) for request in inputs])
    assert isinstance(results[5], InferenceRequestError)
    assert "'income'" in str(results[5])
    assert "at row 0" in str(results[5])
    for i, result in enumerate(results):
        if i != 5:
            alone = score_requests([check_request(state, inputs[i])])[0]
            assert not isinstance(result, Exception)
            assert not isinstance(alone, Exception)
            assert result.columns == alone.columns
            assert result.features.equals(alone.features)


def test_requests_on_the_event_loop_share_calls_and_get_their_own_answers(
    served: Served, batched: ModelServer
) -> None:
    asked = requests(served)
    alone = [answer(served.server, request) for request in asked]

    async def ask(request: InferenceRequest) -> InferenceResponse | str:
        try:
            return await batched.infer_async(MODEL_NAME, None, request)
        except InferenceRequestError as exc:
            return f"refused: {exc}"

    async def all_at_once() -> list[Any]:
        return await asyncio.gather(*(ask(request) for request in asked))

    before = batched.batching.calls
    assert asyncio.run(all_at_once()) == alone
    assert batched.batching.calls - before < len(asked) // 4
