"""Online equals batch: every customer's served score is the batch-scored row, bit for bit."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest

from airflow_mlops.demo.credit_model import INPUT_CONTRACT, MODEL_NAME
from airflow_mlops.serving.protocol import InferenceRequest, Tensor
from tests.serving.conftest import CUSTOMERS, PARTITION, SCORES

if TYPE_CHECKING:
    import pyarrow as pa

    from tests.serving.conftest import Served

DATATYPES = {"int64": "INT64", "double": "FP64", "string": "BYTES"}
#: request sizes cycled over the partition: single rows, odd sizes around the 64-row block
SIZES = (1, 7, 500, 64, 63, 1000, 129, 3)


def raw_inputs(rows: pa.Table) -> tuple[Tensor, ...]:
    return tuple(
        Tensor(name, DATATYPES[str(rows.schema.field(name).type)], (rows.num_rows,), data)
        for name in INPUT_CONTRACT.names
        for data in [rows.column(name).to_pylist()]
    )


def key_inputs(rows: pa.Table) -> tuple[Tensor, ...]:
    keys = rows.column("customer_id").to_numpy()
    return (Tensor("customer_id", "INT64", (len(keys), 1), keys),)


@pytest.mark.parametrize(
    "ask", [pytest.param(key_inputs, id="key"), pytest.param(raw_inputs, id="raw")]
)
def test_every_served_score_is_the_batch_score(served: Served, ask) -> None:
    batch = served.store.read_partition(SCORES, PARTITION).sort_by("customer_id")
    features = served.features.sort_by("customer_id")
    assert batch.num_rows == features.num_rows == CUSTOMERS >= 10_000
    assert served.runtime["name"] == served.server.state.model.runtime["name"] == "tl2cgen"

    scores: list[float] = []
    decisions: list[str] = []
    start, sizes = 0, iter(SIZES * CUSTOMERS)
    while start < CUSTOMERS:
        rows = features.slice(start, next(sizes))
        response = served.server.infer(MODEL_NAME, None, InferenceRequest(ask(rows)))
        outputs = {tensor.name: tensor.data for tensor in response.outputs}
        scores += outputs["default_probability"]
        decisions += outputs["decision"]
        start += rows.num_rows

    expected = batch.column("default_probability").to_numpy()
    assert np.array_equal(np.asarray(scores), expected)  # ==, not allclose
    assert decisions == batch.column("decision").to_pylist()
