"""serving/metrics.py: Prometheus metrics and access logs, through the REST app (TestClient
over the fake service of ``test_rest``) and a gRPC server process over the fake service of
``grpc_server_process``."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from airflow_mlops.demo.stack import free_port
from airflow_mlops.serving.metrics import ACCESS_LOGGER, ServingMetrics
from airflow_mlops.serving.rest import create_app
from tests.serving.grpc_client import raw_inputs, server_process
from tests.serving.test_rest import NAME, TOKEN, VERSION, FakeService

#: Feature values no log line may contain.
SECRET_INCOME, SECRET_REGION = 12345.678, "zebra-region"
ACCESS_FIELDS = {
    "protocol",
    "route",
    "method",
    "model",
    "version",
    "status",
    "rows",
    "latency_ms",
    "request_id",
}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of an exposition, by name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, metric: str, **labels: str) -> float:
    """The sample ``metric`` whose labels include ``labels`` (0 when absent)."""
    wanted = set(labels.items())
    found = [v for (n, ls), v in samples(text).items() if n == metric and wanted <= ls]
    assert len(found) <= 1, f"{metric} {labels} matches {len(found)} samples"
    return found[0] if found else 0.0


def body(rows: int = 2) -> dict[str, object]:
    return {
        "inputs": [
            {"name": "income", "shape": [rows], "datatype": "FP64", "data": [SECRET_INCOME] * rows},
            {
                "name": "region",
                "shape": [rows],
                "datatype": "BYTES",
                "data": [SECRET_REGION] * rows,
            },
        ]
    }


class DescribedService(FakeService):
    """The fake service with a ``describe()`` as a hot-swapping ``ModelServer`` gives."""

    def describe(self) -> dict[str, object]:
        return {
            "ready": self.loaded,
            "model": {"name": NAME, "version": VERSION, "alias": "champion", "runtime": "tree"},
            "features": {
                "table": "customer_features",
                "partition": "2026-11-30",
                "version": 4,
                "rows": 12_000,
            },
            "swaps": 3,
            "refusals": 1,
            "batching": {"wait_ms": 2.0, "max_rows": 256, "calls": 4, "requests": 9, "largest": 3},
        }


@pytest.fixture
def client() -> TestClient:
    return TestClient(create_app(DescribedService()), raise_server_exceptions=False)


INFER = f"/v2/models/{NAME}/infer"
INFER_ROUTE = "/v2/models/{name}/infer"


def test_counters_and_histograms_move_with_requests_and_errors(client):
    before = client.get("/metrics")
    assert before.status_code == 200
    assert before.headers["content-type"].startswith("text/plain")
    assert client.post(INFER, json=body(2)).status_code == 200
    assert client.post(INFER, json=body(5)).status_code == 200
    assert client.post("/v2/models/nope/infer", json=body()).status_code == 404
    assert client.post(INFER, json={"inputs": "x"}).status_code == 400
    text = client.get("/metrics").text
    ok = {"protocol": "rest", "route": INFER_ROUTE, "model": NAME, "version": VERSION}
    assert value(text, "airflow_mlops_serving_requests_total", **ok, outcome="ok") == 2
    assert (
        value(text, "airflow_mlops_serving_requests_total", route=INFER_ROUTE, outcome="error") == 2
    )
    for code in ("404", "400"):
        assert value(text, "airflow_mlops_serving_request_errors_total", code=code) == 1
    assert value(text, "airflow_mlops_serving_request_duration_seconds_count", **ok) == 2
    rows = {"protocol": "rest", "model": NAME, "version": VERSION}
    assert value(text, "airflow_mlops_serving_request_rows_count", **rows) == 2
    assert value(text, "airflow_mlops_serving_request_rows_sum", **rows) == 7
    assert value(text, "airflow_mlops_serving_request_rows_bucket", **rows, le="2.0") == 1
    # the first scrape is counted too, by its route
    assert value(text, "airflow_mlops_serving_requests_total", route="/metrics") == 1


def test_the_server_state_comes_from_describe_at_scrape_time(client):
    text = client.get("/metrics").text
    assert value(text, "airflow_mlops_serving_ready") == 1
    model = {"name": NAME, "version": VERSION, "alias": "champion", "runtime": "tree"}
    assert value(text, "airflow_mlops_serving_model_info", **model) == 1
    assert value(text, "airflow_mlops_serving_features_info", partition="2026-11-30") == 1
    assert value(text, "airflow_mlops_serving_feature_rows") == 12_000
    assert value(text, "airflow_mlops_serving_swaps_total") == 3
    assert value(text, "airflow_mlops_serving_refusals_total") == 1
    assert value(text, "airflow_mlops_serving_batch_calls_total") == 4
    assert value(text, "airflow_mlops_serving_batched_requests_total") == 9
    assert value(text, "airflow_mlops_serving_batch_largest_requests") == 3


def test_a_failing_describe_leaves_its_metrics_out_not_the_scrape(caplog):
    def broken() -> dict[str, object]:
        raise RuntimeError("boom")

    metrics = ServingMetrics(broken)
    with caplog.at_level(logging.ERROR):
        text = metrics.exposition()[0].decode()
    assert "airflow_mlops_serving_ready" not in text
    assert "describe() failed" in caplog.text


def test_each_app_has_its_own_registry():
    first, second = (TestClient(create_app(FakeService())) for _ in range(2))
    first.post(INFER, json=body())
    text = second.get("/metrics").text
    assert value(text, "airflow_mlops_serving_requests_total", route=INFER_ROUTE) == 0


def test_metrics_need_the_token_unless_open():
    closed = TestClient(create_app(FakeService(), token=TOKEN))
    assert closed.get("/metrics").status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    assert closed.get("/metrics", headers=auth).status_code == 200
    opened = TestClient(create_app(FakeService(), token=TOKEN, open_metrics=True))
    assert opened.get("/metrics").status_code == 200
    refused = opened.get("/v2", headers={})
    assert refused.status_code == 401
    assert "(only /metrics and /v2/health/live are open)" in refused.json()["error"]
    text = opened.get("/metrics").text
    assert value(text, "airflow_mlops_serving_request_errors_total", code="401") == 1


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == ACCESS_LOGGER]


def test_one_access_line_per_request_without_feature_values(client, caplog):
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        response = client.post(INFER, json=body(3), headers={"x-request-id": "req-42"})
        client.post(
            f"/v2/models/{NAME}/predict",
            json={"income": SECRET_INCOME, "region": SECRET_REGION, "debt_to_income": 0.25},
        )
        client.post("/v2/models/nope/infer", json=body())
    assert response.headers["x-request-id"] == "req-42"
    lines = access_lines(caplog)
    assert [line["status"] for line in lines] == [200, 200, 404]
    assert all(set(line) == ACCESS_FIELDS for line in lines)
    assert lines[0] | {"latency_ms": 0} == {
        "protocol": "rest",
        "route": INFER_ROUTE,
        "method": "POST",
        "model": NAME,
        "version": VERSION,
        "status": 200,
        "rows": 3,
        "latency_ms": 0,
        "request_id": "req-42",
    }
    assert lines[1]["rows"] == 1
    assert len(str(lines[2]["request_id"])) == 32  # assigned
    logged = caplog.text + json.dumps(lines)
    assert str(SECRET_INCOME) not in logged
    assert SECRET_REGION not in logged


def test_no_access_log_when_switched_off(caplog):
    metrics = ServingMetrics(access_log=False)
    client = TestClient(create_app(FakeService(), metrics=metrics))
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        client.post(INFER, json=body())
    assert access_lines(caplog) == []
    assert (
        value(
            metrics.exposition()[0].decode(),
            "airflow_mlops_serving_requests_total",
            route=INFER_ROUTE,
        )
        == 1
    )


def test_grpc_calls_are_counted_timed_and_logged(repo, tmp_path):
    import tritonclient.grpc as triton
    from tritonclient.utils import InferenceServerException

    port, metrics_port, log_file = free_port(), free_port(), tmp_path / "access.log"
    args = ("metrics", str(port), str(metrics_port), str(log_file))
    with server_process(repo, *args, ports=(port,)):
        with triton.InferenceServerClient(f"127.0.0.1:{port}") as client:
            assert client.is_server_live()
            client.infer(
                "credit",
                raw_inputs(
                    income=(SECRET_INCOME,) * 3, age=(30,) * 3, region=(SECRET_REGION.encode(),) * 3
                ),
            )
            with pytest.raises(InferenceServerException):
                client.infer("unknown", raw_inputs())
            with pytest.raises(InferenceServerException):
                client.infer("broken", raw_inputs())
        text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    infer = "/inference.GRPCInferenceService/ModelInfer"
    ok = {"protocol": "grpc", "route": infer, "model": "credit", "version": "3"}
    assert value(text, "airflow_mlops_serving_requests_total", **ok, outcome="ok") == 1
    assert value(text, "airflow_mlops_serving_request_duration_seconds_count", **ok) == 1
    assert value(text, "airflow_mlops_serving_request_rows_sum", protocol="grpc") == 3
    for code in ("NOT_FOUND", "INTERNAL"):
        assert (
            value(text, "airflow_mlops_serving_request_errors_total", route=infer, code=code) == 1
        )
    lines = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [line["status"] for line in lines] == ["OK", "OK", "NOT_FOUND", "INTERNAL"]
    assert (lines[1]["rows"], lines[1]["version"]) == (3, "3")
    assert str(SECRET_INCOME) not in log_file.read_text()
    assert SECRET_REGION not in log_file.read_text()


@pytest.mark.parametrize(
    ("flags", "access_log", "open_metrics"),
    [
        pytest.param([], True, False, id="defaults"),
        pytest.param(["--no-access-log", "--open-metrics"], False, True, id="switched"),
    ],
)
def test_serve_flags(flags, access_log, open_metrics):
    from airflow_mlops.cli.main import build_parser

    args = build_parser().parse_args(["serve", "credit_risk", *flags])
    assert (args.access_log, args.open_metrics) == (access_log, open_metrics)
