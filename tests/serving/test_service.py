"""ModelServer: online equals batch (bit for bit), key lookup, outputs, versions, bad input."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from airflow_mlops.demo.credit_model import INPUT_CONTRACT, MODEL_NAME, OUTPUT
from airflow_mlops.exceptions import (
    ChecksumMismatchError,
    InferenceRequestError,
    ModelNotFoundError,
    ServingUnavailableError,
)
from airflow_mlops.models.layout import ARTIFACT_FILE
from airflow_mlops.models.registry import ModelRegistry
from airflow_mlops.serving.protocol import InferenceRequest, Tensor
from airflow_mlops.serving.service import ModelServer
from airflow_mlops.store.feature_store import FeatureStore
from tests.serving.conftest import (
    CUSTOMERS,
    FEATURES,
    PARTITION,
    SCORES,
    demo_features,
    fitted_champion,
)

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


# -- asking by key, outputs, ids, versions ---------------------------------------------


def infer(served: Served, *inputs: Tensor, **kwargs: Any) -> dict[str, list[Any]]:
    request = InferenceRequest(tuple(inputs), **kwargs)
    response = served.server.infer(MODEL_NAME, None, request)
    return {tensor.name: list(tensor.data) for tensor in response.outputs}


def test_a_missing_key_gets_a_row_error_not_an_exception(served: Served) -> None:
    outputs = infer(served, Tensor("customer_id", "INT64", (3,), [5, 424242, 6]))

    assert outputs["error"] == [
        "",
        "customer_id 424242 is not in customer_features ds=2026-01-30",
        "",
    ]
    assert outputs["decision"][1] == ""
    assert np.isnan(outputs["default_probability"][1])
    assert not np.isnan(outputs["default_probability"][0])
    everyone_missing = infer(served, Tensor("customer_id", "INT64", (1,), [0]))
    assert everyone_missing["error"] == ["customer_id 0 is not in customer_features ds=2026-01-30"]


def test_outputs_are_selected_and_the_id_echoed(served: Served) -> None:
    request = InferenceRequest(
        (Tensor("customer_id", "INT32", (2, 1), [1, 2]),), outputs=("decision",), id="req-7"
    )
    response = served.server.infer(MODEL_NAME, "v0001", request)

    assert (response.model_name, response.model_version, response.id) == (
        MODEL_NAME,
        "v0001",
        "req-7",
    )
    assert [(t.name, t.datatype, t.shape) for t in response.outputs] == [
        ("decision", "BYTES", (2,))
    ]


def test_metadata_lists_the_contract_inputs_and_the_outputs(served: Served) -> None:
    metadata = served.server.model_metadata(MODEL_NAME)

    assert metadata.versions == ("v0001",)
    assert [(t.name, t.datatype, t.shape) for t in metadata.inputs][:3] == [
        ("income", "FP64", (-1,)),
        ("debt", "FP64", (-1,)),
        ("age", "INT64", (-1,)),
    ]
    assert metadata.inputs[-1].name == "customer_id"
    assert [(t.name, t.datatype) for t in metadata.outputs] == [
        ("default_probability", "FP64"),
        ("decision", "BYTES"),
        ("error", "BYTES"),
    ]
    assert served.server.server_metadata().name == "airflow-mlops"
    assert served.server.ready()
    assert served.server.model_ready(MODEL_NAME, "v0001")


@pytest.mark.parametrize(
    ("name", "version", "message"),
    [
        pytest.param(
            "fraud",
            None,
            "No model 'fraud' is served here; this server serves 'credit_risk' version v0001.",
            id="model",
        ),
        pytest.param(
            MODEL_NAME,
            "v0002",
            "Model 'credit_risk' version 'v0002' is not served; this "
            "server serves version v0001 (alias 'champion'). Ask for "
            "v0001 or for no version.",
            id="version",
        ),
    ],
)
def test_another_model_or_version_is_not_found(served: Served, name, version, message) -> None:
    request = InferenceRequest((Tensor("customer_id", "INT64", (1,), [1]),))
    with pytest.raises(ModelNotFoundError, match=re.escape(message)):
        served.server.infer(name, version, request)
    with pytest.raises(ModelNotFoundError, match=re.escape(message)):
        served.server.model_metadata(name, version)


def test_a_server_not_loaded_is_unavailable(served: Served) -> None:
    server = ModelServer(served.store, served.registry, MODEL_NAME, feature_table=FEATURES)
    request = InferenceRequest((Tensor("customer_id", "INT64", (1,), [1]),))

    assert not server.ready()
    assert not server.model_ready(MODEL_NAME)
    message = (
        "Model 'credit_risk' is not loaded yet (alias 'champion'); "
        "retry when /v2/health/ready answers ready."
    )
    with pytest.raises(ServingUnavailableError, match=re.escape(message)):
        server.infer(MODEL_NAME, None, request)


# -- bad input ---------------------------------------------------------------------------


def features_row(served: Served, **replaced: Tensor | None) -> list[Tensor]:
    """Raw inputs of the first customer, with some tensors replaced (None: left out)."""
    inputs = {tensor.name: tensor for tensor in raw_inputs(served.features.slice(0, 1))}
    inputs.update(replaced)
    return [tensor for tensor in inputs.values() if tensor is not None]


BAD_INPUTS = [
    pytest.param(
        {"colour": Tensor("colour", "BYTES", (1,), ["red"])},
        "colour",
        "Input 'colour' is not an input of model 'credit_risk'; its "
        "inputs are income, debt, age, history_score, debt_to_income,"
        " txn_count_7d, txn_amount_7d, txn_count_30d, txn_amount_30d,"
        " txn_max_amount_30d and 1 more, or 'customer_id' alone to "
        "look the features up.",
        id="unknown-input",
    ),
    pytest.param(
        {"age": None, "region": None},
        "age",
        "Input 'age' is missing: model 'credit_risk' needs 2 more "
        "input(s) (age, region). Send every input of its contract, or"
        " only 'customer_id' to look them up.",
        id="missing-input",
    ),
    pytest.param(
        {"age": Tensor("age", "FP64", (1,), [42.0])},
        "age",
        "Input 'age' has datatype 'FP64'; the model's contract "
        "declares it int64: send it as INT8 (or INT16, INT32, INT64, "
        "UINT8, UINT16, UINT32, UINT64).",
        id="datatype",
    ),
    pytest.param(
        {"region": Tensor("region", "INT64", (1,), [3])},
        "region",
        "Input 'region' has datatype 'INT64'; the model's contract "
        "declares it string: send it as BYTES.",
        id="datatype-bytes",
    ),
    pytest.param(
        {"age": Tensor("age", "INT64", (1,), ["forty"])},
        "age",
        "Input 'age' holds values that are not INT64 or do not fit its contract type int64",
        id="values",
    ),
    pytest.param(
        {"age": Tensor("age", "INT64", (1, 2), [40, 41])},
        "age",
        "Input 'age' has shape [1, 2]; inputs are one value per row: send shape [n] or [n, 1].",
        id="shape",
    ),
    pytest.param(
        {"age": Tensor("age", "INT64", (2,), [40])},
        "age",
        "Input 'age' has shape [2] but 1 value(s) in its data; send 2"
        " values (row-major) or fix the shape.",
        id="data-length",
    ),
    pytest.param(
        {"age": Tensor("age", "INT64", (2,), [40, 41])},
        "age",
        "The inputs have different row counts (income has 1, debt has 1, age has 2,",
        id="row-counts",
    ),
    pytest.param(
        {"income": Tensor("income", "FP64", (1,), [float("nan")])},
        "income",
        "Input 'income' has a null or NaN value at row 0; the model's"
        " contract declares it non-nullable: send a value for every "
        "row.",
        id="nan",
    ),
    pytest.param(
        {"age": Tensor("age", "INT64", (1,), [None])},
        "age",
        "Input 'age' has a null value at row 0; the model's contract "
        "declares it non-nullable: send a value for every row.",
        id="null",
    ),
    pytest.param(
        {"debt": Tensor("debt", "FP64", (1,), [float("inf")])},
        "debt",
        "Input 'debt' has an infinite value at row 0; models are not "
        "defined on ±inf (batch scoring refuses them too): send a "
        "finite number.",
        id="infinite",
    ),
]


@pytest.mark.parametrize(("replaced", "input_name", "message"), BAD_INPUTS)
def test_bad_raw_input_is_refused_naming_the_input(
    served: Served, replaced, input_name, message
) -> None:
    with pytest.raises(InferenceRequestError, match=re.escape(message)) as excinfo:
        infer(served, *features_row(served, **replaced))
    assert excinfo.value.input_name == input_name


@pytest.mark.parametrize(
    ("inputs", "outputs", "input_name", "message"),
    [
        pytest.param(
            (Tensor("customer_id", "INT64", (0,), []),),
            None,
            "customer_id",
            "Input 'customer_id' has no rows (shape [0]); send at least one row.",
            id="zero-rows",
        ),
        pytest.param(
            (Tensor("customer_id", "INT64", (10_001,), list(range(10_001))),),
            None,
            "customer_id",
            "Input 'customer_id' has 10001 rows, more than the 10000 one "
            "request may carry; split it into several requests.",
            id="too-many-rows",
        ),
        pytest.param(
            (Tensor("customer_id", "INT64", (1,), [None]),),
            None,
            "customer_id",
            "Input 'customer_id' has a null value at row 0; the model's "
            "contract declares it non-nullable",
            id="null-key",
        ),
        pytest.param(
            (Tensor("customer_id", "INT64", (1,), [1]),),
            ("score",),
            "score",
            "Model 'credit_risk' has no output 'score'; its outputs are "
            "default_probability, decision, error: request those, or omit"
            " 'outputs' for all.",
            id="unknown-output",
        ),
        pytest.param(
            (), None, None, "The request has no inputs; send the model's inputs.", id="no-inputs"
        ),
        pytest.param(
            (Tensor("customer_id", "INT64", (1,), [1]),) * 2,
            None,
            "customer_id",
            "Input 'customer_id' is given twice; send each input once.",
            id="twice",
        ),
    ],
)
def test_bad_key_requests_are_refused(served: Served, inputs, outputs, input_name, message) -> None:
    with pytest.raises(InferenceRequestError, match=re.escape(message)) as excinfo:
        infer(served, *inputs, outputs=outputs)
    assert excinfo.value.input_name == input_name


def test_lossless_widenings_are_accepted(served: Served) -> None:
    row = served.features.slice(0, 1)
    widened = features_row(
        served,
        age=Tensor("age", "INT32", (1,), row.column("age").to_pylist()),
        income=Tensor("income", "INT64", (1,), [int(row.column("income")[0].as_py())]),
        debt=Tensor("debt", "FP32", (1, 1), np.asarray(row.column("debt"), dtype=np.float32)),
        region=Tensor("region", "BYTES", (1,), [row.column("region")[0].as_py().encode()]),
    )
    outputs = infer(served, *widened)
    assert outputs["error"] == [""]
    assert outputs["decision"][0] in {"approve", "decline"}


# -- loading -----------------------------------------------------------------------------


@pytest.fixture
def small_world(tmp_path: Path) -> tuple[FeatureStore, ModelRegistry]:
    """A fresh store and registry with 500 customers and a champion (scikit-learn runtime)."""
    store = FeatureStore(str(tmp_path / "store"))
    registry = ModelRegistry(str(tmp_path / "registry"))
    features = demo_features(500, seed=3)
    store.publish_partition(FEATURES, PARTITION, features.to_batches(), schema=features.schema)
    registry.register(
        MODEL_NAME,
        fitted_champion(features),
        input_contract=INPUT_CONTRACT,
        output=OUTPUT,
        aliases=["champion"],
    )
    return store, registry


def tamper(registry: ModelRegistry, version: str) -> Path:
    artifact = Path(registry.root) / MODEL_NAME / version / ARTIFACT_FILE
    content = bytearray(artifact.read_bytes())
    content[200] ^= 0xFF
    artifact.write_bytes(bytes(content))
    return artifact


def test_a_tampered_artifact_refuses_to_load(small_world) -> None:
    store, registry = small_world
    tamper(registry, "v0001")
    server = ModelServer(store, registry, MODEL_NAME, feature_table=FEATURES)

    with pytest.raises(ChecksumMismatchError, match="was modified after registration"):
        server.load()
    assert not server.ready()


def test_reload_serves_the_new_champion_and_keeps_the_old_one_when_it_is_damaged(
    small_world,
) -> None:
    store, registry = small_world
    server = ModelServer(store, registry, MODEL_NAME, feature_table=FEATURES)
    first = server.load()
    model = fitted_champion(demo_features(400, seed=9))
    registry.register(MODEL_NAME, model, input_contract=INPUT_CONTRACT, output=OUTPUT)

    registry.promote(MODEL_NAME, "champion", "v0002")
    assert server.reload()
    assert server.state is not None
    assert server.state.model.version == "v0002"
    assert server.state is not first
    tamper(registry, "v0001")
    registry.rollback(MODEL_NAME, "champion")
    assert not server.reload()
    assert server.state.model.version == "v0002"
    assert server.describe()["model"]["version"] == "v0002"  # type: ignore[index]


def test_without_a_feature_table_raw_features_are_served_and_keys_refused(small_world) -> None:
    store, registry = small_world
    server = ModelServer(None, registry, MODEL_NAME)
    server.load()
    rows = demo_features(3, seed=4)

    response = server.infer(MODEL_NAME, None, InferenceRequest(raw_inputs(rows)))

    assert [t.name for t in response.outputs] == ["default_probability", "decision"]
    assert response.outputs[0].data == server.state.model.predict(rows)[0].tolist()  # type: ignore[union-attr]
    message = (
        "Input 'customer_id' alone asks for a feature lookup, but "
        "this server serves no feature table"
    )
    with pytest.raises(InferenceRequestError, match=re.escape(message)):
        server.infer(MODEL_NAME, None, InferenceRequest(key_inputs(rows)))


def test_a_server_reads_its_features_from_a_delta_store(served: Served, tmp_path) -> None:
    from airflow_mlops.cli.serve import load_service

    root = str(tmp_path / "delta_store")
    delta = FeatureStore(root, table_format="delta")
    delta.publish_partition(FEATURES, PARTITION, served.features.to_batches())
    config = {
        "root": root,
        "table_format": "delta",
        "registry": served.registry.root,
        "model": MODEL_NAME,
        "alias": "champion",
        "feature_table": FEATURES,
        "key_column": None,
        "partition": None,
    }

    server = load_service(config)

    rows = served.features.slice(100, 50)
    asked = InferenceRequest(key_inputs(rows))
    online = server.infer(MODEL_NAME, None, asked)
    reference = served.server.infer(MODEL_NAME, None, asked)
    assert server.state.index.partition == PARTITION
    assert [t.data for t in online.outputs] == [t.data for t in reference.outputs]
