"""Micro-batching: concurrent 1-row requests share model calls, each answered exactly as alone."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pytest

from airflow_mlops.demo.credit_model import MODEL_NAME, OUTPUT
from airflow_mlops.exceptions import InferenceRequestError
from airflow_mlops.serving.batching import Batcher
from airflow_mlops.serving.protocol import InferenceRequest, InferenceResponse
from airflow_mlops.serving.service import ModelServer
from tests.serving.conftest import FEATURES, PARTITION, SCORES
from tests.serving.test_service import key_inputs, raw_inputs

if TYPE_CHECKING:
    from collections.abc import Callable

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


class Model:
    """A stand-in ``ServedModel``: scores the row's value, fails on a negative one."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.calls: list[int] = []

    def predict(self, features: pa.Table) -> tuple[np.ndarray, pa.Array]:
        values = features.column("x").to_numpy()
        self.calls.append(len(values))
        if (values < 0).any():
            raise RuntimeError("model failed")
        return values.astype(np.float64), pa.array([self.version] * len(values))


def test_a_model_error_fails_its_call_and_versions_never_mix() -> None:
    batcher = Batcher(0.05, max_rows=1_000)
    old, new = Model("v1"), Model("v2")
    asks = [(old if i % 3 else new, i if i != 7 else -1) for i in range(30)]

    def ask(item: tuple[Model, int]) -> Any:
        model, value = item
        try:
            scores, versions = batcher.predict(model, pa.table({"x": [value]}))  # type: ignore[arg-type]
        except RuntimeError as exc:
            return str(exc)
        return scores.tolist(), versions.to_pylist()

    with ThreadPoolExecutor(30) as pool:
        answers = list(pool.map(ask, asks))
    failed = [i for i, got in enumerate(answers) if got == "model failed"]
    assert 7 in failed
    assert sum(old.calls) + sum(new.calls) == 30
    for i, ((model, value), got) in enumerate(zip(asks, answers, strict=True)):
        if i not in failed:
            assert got == ([float(value)], [model.version])  # its own row, its model's version
    failed_call = len(failed)
    assert failed_call in old.calls + new.calls  # exactly the requests of the failing call
