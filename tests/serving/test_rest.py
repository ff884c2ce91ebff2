"""serving/rest.py (and rest_messages, rest_predict) through FastAPI's TestClient over a fake
InferenceService: every route, every error class with its status and message, auth."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from tritonclient.http import InferenceServerClient, InferInput, InferRequestedOutput

from airflow_mlops.contract import FeatureContract
from airflow_mlops.exceptions import (
    InferenceRequestError,
    ModelNotFoundError,
    ServingUnavailableError,
)
from airflow_mlops.models.records import ModelOutput
from airflow_mlops.serving.protocol import (
    InferenceRequest,
    InferenceResponse,
    ModelMetadata,
    ServedContract,
    ServerMetadata,
    Tensor,
    TensorMetadata,
)
from airflow_mlops.serving.rest import MAX_BODY_BYTES, BodyLimit, create_app

NAME, VERSION, TOKEN = "credit_risk", "v0002", "s3cret-token"
FEATURES = FeatureContract.from_dict(
    {
        "customer_id": ("int64", False),
        "income": ("float64", False),
        "region": ("string", False),
        "debt_to_income": "float64",
    }
)
OUTPUT = ModelOutput("customer_id", 0.3, "default_probability", "decision", "decline", "approve")
KNOWN_KEYS = {1: 50_000.0, 2: 10_000.0}


@dataclass
class FakeService:
    """Scores ``income`` as 1000 / income; keys 1 and 2 are in its "table"."""

    loaded: bool = True
    requests: list[InferenceRequest] = field(default_factory=list)

    def live(self) -> bool:
        return True

    def ready(self) -> bool:
        return self.loaded

    def _check(self, name: str, version: str | None) -> None:
        if name != NAME or version not in (None, VERSION):
            raise ModelNotFoundError(f"Model {name!r} version {version!r} is not served.")
        if not self.loaded:
            raise ServingUnavailableError("No model is loaded yet.")

    def model_ready(self, name: str, version: str | None = None) -> bool:
        if name != NAME or version not in (None, VERSION):
            raise ModelNotFoundError(f"Model {name!r} version {version!r} is not served.")
        return self.loaded

    def server_metadata(self) -> ServerMetadata:
        return ServerMetadata("airflow-mlops", "1.2.3")

    def model_metadata(self, name: str, version: str | None = None) -> ModelMetadata:
        self._check(name, version)
        inputs = (TensorMetadata("income", "FP64", (-1,)), TensorMetadata("region", "BYTES", (-1,)))
        outputs = (TensorMetadata("default_probability", "FP64", (-1,)),)
        return ModelMetadata(NAME, (VERSION,), "sklearn", inputs, outputs)

    def served_contract(self) -> ServedContract:
        return ServedContract(
            NAME,
            FEATURES.select(["income", "region", "debt_to_income"]),
            FEATURES.fields[0],
            OUTPUT,
        )

    def infer(self, name: str, version: str | None, request: InferenceRequest) -> InferenceResponse:
        self._check(name, version)
        self.requests.append(request)
        given = {t.name: list(t.data) for t in request.inputs}
        if "income" in given:
            incomes = given["income"]
        elif "customer_id" in given:
            incomes = [KNOWN_KEYS.get(k, math.nan) for k in given["customer_id"]]
        else:
            raise InferenceRequestError("Missing input 'income'.", input_name="income")
        scores = [1000.0 / x for x in incomes]
        outputs = [
            Tensor("default_probability", "FP64", (len(scores),), np.array(scores)),
            Tensor(
                "decision",
                "BYTES",
                (len(scores),),
                [b"decline" if s > 0.3 else b"approve" for s in scores],
            ),
        ]
        if "income" not in given:
            errors = [
                "" if k in KNOWN_KEYS else f"customer_id {k} is not in the table"
                for k in given["customer_id"]
            ]
            outputs.append(Tensor("error", "BYTES", (len(scores),), errors))
        if request.outputs is not None:
            outputs = [o for o in outputs if o.name in request.outputs]
        return InferenceResponse(NAME, VERSION, tuple(outputs), id=request.id)


@pytest.fixture
def service() -> FakeService:
    return FakeService()


@pytest.fixture
def client(service: FakeService) -> TestClient:
    return TestClient(create_app(service), raise_server_exceptions=False)


def infer_body(**extra: Any) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": "income", "shape": [2], "datatype": "FP64", "data": [4000.0, 2000.0]},
            {"name": "region", "shape": [2, 1], "datatype": "BYTES", "data": [["n"], ["s"]]},
        ],
        **extra,
    }


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        pytest.param("/v2/health/live", 200, {"live": True}, id="live"),
        pytest.param("/v2/health/ready", 200, {"ready": True}, id="ready"),
        pytest.param(
            "/v2", 200, {"name": "airflow-mlops", "version": "1.2.3", "extensions": []}, id="server"
        ),
        pytest.param(
            "/v2/models/credit_risk/ready", 200, {"name": NAME, "ready": True}, id="m-ready"
        ),
        pytest.param(
            "/v2/models/credit_risk/versions/v0002/ready",
            200,
            {"name": NAME, "ready": True},
            id="version-ready",
        ),
    ],
)
def test_health_and_server_routes(client, path, status, body):
    response = client.get(path)
    assert (response.status_code, response.json()) == (status, body)


@pytest.mark.parametrize(
    "path", ["/v2/models/credit_risk", "/v2/models/credit_risk/versions/v0002"]
)
def test_model_metadata(client, path):
    assert client.get(path).json() == {
        "name": NAME,
        "versions": [VERSION],
        "platform": "sklearn",
        "inputs": [
            {"name": "income", "datatype": "FP64", "shape": [-1]},
            {"name": "region", "datatype": "BYTES", "shape": [-1]},
        ],
        "outputs": [{"name": "default_probability", "datatype": "FP64", "shape": [-1]}],
    }


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        pytest.param(
            "get", "/v2/models/other", "Model 'other' version None is not served.", id="meta"
        ),
        pytest.param(
            "get",
            "/v2/models/credit_risk/versions/v0009/ready",
            "Model 'credit_risk' version 'v0009' is not served.",
            id="ready",
        ),
        pytest.param(
            "post",
            "/v2/models/credit_risk/versions/v0001/infer",
            "Model 'credit_risk' version 'v0001' is not served.",
            id="infer",
        ),
        pytest.param(
            "get",
            "/v3/models",
            "No route GET /v3/models. The server answers the Open Inference Protocol under /v2 "
            "(the routes are listed at /docs).",
            id="route",
        ),
    ],
)
def test_not_found_is_404(client, method, path, message):
    response = client.request(method, path, json=infer_body())
    assert (response.status_code, response.json()) == (404, {"error": message})


def test_infer_flattens_nested_data_echoes_id_and_returns_outputs(client, service):
    response = client.post("/v2/models/credit_risk/infer", json=infer_body(id="req-7"))
    assert response.status_code == 200
    assert response.json() == {
        "model_name": NAME,
        "model_version": VERSION,
        "id": "req-7",
        "outputs": [
            {"name": "default_probability", "datatype": "FP64", "shape": [2], "data": [0.25, 0.5]},
            {"name": "decision", "datatype": "BYTES", "shape": [2], "data": ["approve", "decline"]},
        ],
    }
    (request,) = service.requests
    region = request.inputs[1]
    assert (region.name, region.shape, list(region.data)) == ("region", (2, 1), ["n", "s"])
    assert request.outputs is None


def test_infer_passes_the_requested_outputs_and_versioned_route(client, service):
    body = infer_body(outputs=[{"name": "decision"}], parameters={"trace": True})
    response = client.post("/v2/models/credit_risk/versions/v0002/infer", json=body)
    assert [o["name"] for o in response.json()["outputs"]] == ["decision"]
    assert "id" not in response.json()
    assert service.requests[0].outputs == ("decision",)
    assert service.requests[0].parameters == {"trace": True}


def test_a_missing_key_gives_null_score_and_a_row_error(client):
    body = {"inputs": [{"name": "customer_id", "shape": [2], "datatype": "INT64", "data": [1, 42]}]}
    outputs = client.post("/v2/models/credit_risk/infer", json=body).json()["outputs"]
    assert outputs[0]["data"] == [0.02, None]
    assert outputs[2]["data"] == ["", "customer_id 42 is not in the table"]


def test_binary_tensor_data_as_tritonclient_sends_it(client, service):
    income = InferInput("income", [3], "FP64")
    income.set_data_from_numpy(np.array([1000.0, 2000.0, 4000.0]))
    region = InferInput("region", [3], "BYTES")
    region.set_data_from_numpy(np.array([b"north", "süd".encode(), b""], dtype=object))
    outputs = [InferRequestedOutput("default_probability", binary_data=False)]
    body, json_size = InferenceServerClient.generate_request_body(
        [income, region], outputs=outputs, request_id="bin-1"
    )
    response = client.post(
        "/v2/models/credit_risk/infer",
        content=body,
        headers={"Inference-Header-Content-Length": str(json_size)},
    )
    assert response.json()["outputs"][0]["data"] == [1.0, 0.5, 0.25]
    assert response.json()["id"] == "bin-1"
    assert list(service.requests[0].inputs[1].data) == ["north", "süd", ""]


@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        pytest.param(
            b"{not json",
            {},
            "The request body is not valid JSON (Expecting property "
            "name enclosed in double quotes: line 1 column 2 (char 1)). Send an Open "
            'Inference Protocol inference request: {"inputs": [{"name", "shape", '
            '"datatype", "data"}]}.',
            id="json",
        ),
        pytest.param(
            {"inputs": [{"name": "income", "datatype": "FP64", "data": [1.0]}]},
            {},
            "Invalid request body: Object missing required field `shape` - at `$.inputs[0]`.",
            id="no-shape",
        ),
        pytest.param(
            {"inputs": [{"name": "income", "shape": [-1], "datatype": "FP64", "data": [1]}]},
            {},
            "Invalid request body: Expected `int` >= 0 - at `$.inputs[0].shape[0]`.",
            id="negative-shape",
        ),
        pytest.param(
            {"inputs": []},
            {},
            "Invalid request body: Expected `array` of length >= 1 - at `$.inputs`.",
            id="no-inputs",
        ),
        pytest.param(
            {"inputs": [{"name": "income", "shape": [1], "datatype": "FP64"}]},
            {},
            "Input 'income' has no 'data' (and no binary_data_size parameter). Give its "
            "values, flattened or nested in row-major order.",
            id="no-data",
        ),
        pytest.param(
            {"inputs": [{"name": "region", "shape": [1], "datatype": "BYTES", "data": ["x"]}]},
            {},
            "Missing input 'income'.",
            id="service",
        ),
        pytest.param(
            b'{"inputs": []}',
            {"Inference-Header-Content-Length": "99"},
            "The Inference-Header-Content-Length header must be the JSON part's length, "
            "an integer in [0, 14]. Got '99' instead.",
            id="binary-header",
        ),
        pytest.param(
            json.dumps(
                {
                    "inputs": [
                        {
                            "name": "income",
                            "shape": [2],
                            "datatype": "FP64",
                            "parameters": {"binary_data_size": 12},
                        }
                    ]
                }
            ).encode()
            + bytes(12),
            "json-size",
            "Input 'income': 12 byte(s) of binary data is not a whole number of FP64 values "
            "(8 byte(s) each).",
            id="binary-size",
        ),
    ],
)
def test_bad_requests_are_400_with_a_message(client, body, headers, message):
    if headers == "json-size":
        headers = {"Inference-Header-Content-Length": str(len(body) - 12)}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post("/v2/models/credit_risk/infer", content=content, headers=headers)
    assert (response.status_code, response.json()) == (400, {"error": message})


def test_an_oversized_body_is_413(client):
    response = client.post("/v2/models/credit_risk/infer", content=b" " * (MAX_BODY_BYTES + 1))
    assert response.status_code == 413
    assert response.json() == {
        "error": "The request body has 16,777,217 bytes (or more), over the server's limit of "
        "16,777,216. Split the rows into several requests."
    }


def test_a_streamed_body_over_the_limit_is_413(service):
    app = create_app(service)
    small = TestClient(BodyLimit(app, limit=10))
    response = small.post("/v2/models/credit_risk/infer", content=iter([b"x" * 8, b"x" * 8]))
    assert (response.status_code, response.json()["error"][:34]) == (
        413,
        "The request body has 16 bytes (or ",
    )


def test_not_loaded_is_503(client, service):
    service.loaded = False
    assert client.get("/v2/health/ready").status_code == 503
    assert client.get("/v2/models/credit_risk/ready").json() == {"name": NAME, "ready": False}
    response = client.post("/v2/models/credit_risk/infer", json=infer_body())
    assert (response.status_code, response.json()) == (503, {"error": "No model is loaded yet."})


def test_an_unexpected_failure_is_a_json_500(client, service, monkeypatch, caplog):
    monkeypatch.setattr(service, "server_metadata", lambda: 1 / 0)
    response = client.get("/v2")
    assert (response.status_code, response.json()) == (
        500,
        {"error": "Internal server error (ZeroDivisionError); see its log."},
    )
    assert "GET /v2 failed" in caplog.text


ROUTES = [
    ("get", "/v2/health/ready"),
    ("get", "/v2"),
    ("get", "/v2/models/credit_risk"),
    ("get", "/v2/models/credit_risk/versions/v0002"),
    ("get", "/v2/models/credit_risk/ready"),
    ("get", "/v2/models/credit_risk/versions/v0002/ready"),
    ("post", "/v2/models/credit_risk/infer"),
    ("post", "/v2/models/credit_risk/versions/v0002/infer"),
    ("post", "/v2/models/credit_risk/predict"),
    ("get", "/openapi.json"),
    ("get", "/v2/unknown"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize(
    ("authorization", "what"),
    [
        pytest.param(None, "no Authorization header", id="none"),
        pytest.param("Bearer wrong", "a wrong bearer token", id="wrong"),
        pytest.param(TOKEN, "a wrong bearer token", id="no-scheme"),
    ],
)
def test_every_route_but_live_needs_the_token(service, method, path, authorization, what):
    client = TestClient(create_app(service, token=TOKEN))
    headers = {} if authorization is None else {"Authorization": authorization}
    response = client.request(method, path, json=infer_body(), headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {
        "error": f"The request has {what}. Send 'Authorization: Bearer <token>' with the "
        "server's token (only /v2/health/live is open)."
    }


def test_with_the_token_routes_answer_and_live_is_open(service):
    client = TestClient(create_app(service, token=TOKEN))
    assert client.get("/v2/health/live").status_code == 200
    good = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/v2/health/ready", headers=good).status_code == 200
    response = client.post("/v2/models/credit_risk/infer", json=infer_body(), headers=good)
    assert response.status_code == 200


def test_openapi_lists_the_contract_fields(client):
    document = client.get("/openapi.json").json()
    assert "/v2/models/credit_risk/predict" in document["paths"]
    row = document["components"]["schemas"]["credit_risk_row"]
    assert row["additionalProperties"] is False
    properties = row["properties"]
    assert list(properties) == ["customer_id", "income", "region", "debt_to_income"]
    assert properties["income"]["type"] == "number"
    assert properties["region"]["type"] == "string"
    assert properties["customer_id"]["type"] == "integer"
    assert {"type": "null"} in properties["debt_to_income"]["anyOf"]
    assert "InferRequestBody" in document["components"]["schemas"]


def test_predict_one_row_of_features(client, service):
    row = {"income": 2000.0, "region": "north", "debt_to_income": None}
    response = client.post("/v2/models/credit_risk/predict", json=row)
    assert response.json() == {
        "model_name": NAME,
        "model_version": VERSION,
        "threshold": 0.3,
        "predictions": [{"default_probability": 0.5, "decision": "decline"}],
    }
    names = [(t.name, t.datatype, list(t.data)) for t in service.requests[0].inputs]
    assert names == [
        ("income", "FP64", [2000.0]),
        ("region", "BYTES", ["north"]),
        ("debt_to_income", "FP64", [None]),
    ]


def test_predict_by_key_lists_each_row(client):
    response = client.post(
        "/v2/models/credit_risk/predict", json=[{"customer_id": 1}, {"customer_id": 42}]
    )
    assert response.json()["predictions"] == [
        {"customer_id": 1, "default_probability": 0.02, "decision": "approve", "error": ""},
        {
            "customer_id": 42,
            "default_probability": None,
            "decision": "approve",
            "error": "customer_id 42 is not in the table",
        },
    ]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        pytest.param(
            {"income": None, "region": "n"},
            "Invalid request body: [0].income: Input should be a valid number (got None).",
            id="null",
        ),
        pytest.param(
            [{"income": 1.0, "regio": "n"}],
            "Invalid request body: [0].regio: Extra inputs are not permitted (got 'n').",
            id="unknown-field",
        ),
        pytest.param(
            [{"income": 1.0, "region": "n", "debt_to_income": 0.1}, {"income": 2.0, "region": "s"}],
            "Row 1 has no 'debt_to_income'. Give every input of the "
            "model's contract, or only 'customer_id'.",
            id="missing",
        ),
        pytest.param([], "The request has no rows. Send one row or a list of rows.", id="empty"),
        pytest.param(
            "x",
            "Invalid request body: body: Input should be a valid list (got 'x').",
            id="not-a-row",
        ),
        pytest.param(
            b"{bad",
            "Invalid request body: not valid JSON (Expecting property name "
            "enclosed in double quotes at character 1).",
            id="json",
        ),
    ],
)
def test_predict_bad_rows_are_400(client, body, message):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = client.post(
        "/v2/models/credit_risk/predict",
        content=content,
        headers={"Content-Type": "application/json"},
    )
    assert (response.status_code, response.json()) == (400, {"error": message})


def test_nan_and_infinity_literals_are_read_as_pythons_json_writes_them() -> None:
    """msgspec refuses them; the parser falls back to ``json`` so such clients still work (the
    values are then checked against the contract like any other)."""
    from airflow_mlops.serving.rest_messages import parse_infer_request

    body = b'{"inputs": [{"name": "x", "shape": [2], "datatype": "FP64", "data": [NaN, Infinity]}]}'
    (tensor,) = parse_infer_request(body).inputs
    assert math.isnan(tensor.data[0])
    assert tensor.data[1] == math.inf
