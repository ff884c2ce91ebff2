"""The gRPC front end over the real :class:`ModelServer` (the session's ``served`` world: the
demo champion and a published ``customer_features`` partition, batch-scored), driven by
``tritonclient.grpc``: a served score is the batch-scored row, by key and by raw features."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import tritonclient.grpc as triton

from airflow_mlops.demo.credit_model import INPUT_CONTRACT, MODEL_NAME
from airflow_mlops.demo.stack import free_port
from tests.serving.conftest import PARTITION, SCORES
from tests.serving.grpc_client import call_error, server_process

KEYS = [5, 17, 64, 1_000, 11_999]
NUMPY = {"INT64": np.int64, "FP64": np.float64, "BYTES": np.object_}


@pytest.fixture(scope="module")
def model_client(repo, served):
    port = free_port()
    args = ("model", str(port), served.store.root, served.registry.root)
    with server_process(repo, *args, ports=(port,)):
        with triton.InferenceServerClient(f"127.0.0.1:{port}") as client:
            yield client


@pytest.fixture(scope="module")
def batch_rows(served):
    scores = served.store.read_partition(SCORES, PARTITION)
    return scores.filter(pc.is_in(scores["customer_id"], pa.array(KEYS))).sort_by("customer_id")


def tensor(name, datatype, values):
    array = np.asarray(values, dtype=NUMPY[datatype])
    return triton.InferInput(name, [len(array)], datatype).set_data_from_numpy(array)


def test_metadata_lists_the_contract_and_the_key(model_client, served):
    assert model_client.is_server_ready()
    assert model_client.is_model_ready(MODEL_NAME)
    metadata = model_client.get_model_metadata(MODEL_NAME)
    assert [i.name for i in metadata.inputs] == [*INPUT_CONTRACT.names, "customer_id"]
    assert [o.name for o in metadata.outputs] == ["default_probability", "decision", "error"]
    assert list(metadata.versions) == [served.server.state.model.version]


def test_key_lookup_and_raw_features_give_the_batch_scores(model_client, served, batch_rows):
    expected = batch_rows.column("default_probability").to_numpy()
    by_key = model_client.infer(MODEL_NAME, [tensor("customer_id", "INT64", KEYS)])
    assert np.array_equal(by_key.as_numpy("default_probability"), expected)
    decisions = [d.decode() for d in by_key.as_numpy("decision")]
    assert decisions == batch_rows.column("decision").to_pylist()

    metadata = model_client.get_model_metadata(MODEL_NAME)
    datatypes = {i.name: i.datatype for i in metadata.inputs}
    rows = served.features.filter(pc.is_in(served.features["customer_id"], pa.array(KEYS)))
    rows = rows.sort_by("customer_id")
    inputs = []
    for name in INPUT_CONTRACT.names:
        values = rows.column(name).to_pylist()
        if datatypes[name] == "BYTES":
            values = [v.encode() for v in values]
        elif datatypes[name] == "FP64":
            values = [np.nan if v is None else v for v in values]
        inputs.append(tensor(name, datatypes[name], values))
    by_features = model_client.infer(MODEL_NAME, inputs, request_id="raw-1")
    assert by_features.get_response().id == "raw-1"
    assert np.array_equal(by_features.as_numpy("default_probability"), expected)


def test_unknown_key_is_a_row_error_not_a_failure(model_client):
    result = model_client.infer(
        MODEL_NAME,
        [tensor("customer_id", "INT64", [5, 987_654])],
        outputs=[
            triton.InferRequestedOutput("default_probability"),
            triton.InferRequestedOutput("error"),
        ],
    )
    probability = result.as_numpy("default_probability")
    assert not np.isnan(probability[0])
    assert np.isnan(probability[1])
    errors = [e.decode() for e in result.as_numpy("error")]
    assert errors[0] == ""
    assert "987654" in errors[1]


def test_errors_of_the_real_server(model_client, served):
    version = served.server.state.model.version
    assert call_error(lambda: model_client.infer(MODEL_NAME, [], model_version="999")) == (
        "StatusCode.NOT_FOUND",
        f"Model {MODEL_NAME!r} version '999' is not served; this server serves version "
        f"{version} (alias 'champion'). Ask for {version} or for no version.",
    )
    assert call_error(
        lambda: model_client.infer(MODEL_NAME, [tensor("income", "FP64", [1.0])])
    ) == (
        "StatusCode.INVALID_ARGUMENT",
        f"Input 'debt' is missing: model {MODEL_NAME!r} needs 10 more input(s) (debt, age, "
        "history_score, debt_to_income, txn_count_7d, txn_amount_7d, txn_count_30d, "
        "txn_amount_30d, txn_max_amount_30d, region). Send every input of its contract, or "
        "only 'customer_id' to look them up.",
    )
