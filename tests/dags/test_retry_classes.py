"""Retry semantics through Airflow: per error class, the final state and the try number.

The ``retry_classes`` fixture DAG gives every task ``retries=1`` and no retry delay.
A non-retryable error fails its task on try 1 (``AirflowFailException`` at the operator
edge); a retryable one sends it to ``up_for_retry`` and Airflow runs it again (try 2),
where the same trouble fails it for good.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from airflow_mlops.contract import FeatureContract
from airflow_mlops.demo.environment import connection_json
from airflow_mlops.models.registry import ModelRegistry

pytestmark = pytest.mark.airflow

DAY = "2026-01-10"
SECRET = "pw-9f3c1e7d-SECRET"

#: task id → (error class named in the failure, retried?)
EXPECTED = {
    "argument_error": ("ArgumentError", False),
    "partition_error": ("PartitionError", False),
    "contract_error": ("ContractError", False),
    "empty_input_error": ("EmptyInputError", False),
    "source_query_error": ("SourceQueryError", False),
    "source_configuration_error": ("SourceConfigurationError", False),
    "transform_error": ("TransformError", False),
    "store_corruption_ref": ("StoreCorruptionError", False),
    "store_corruption_alias": ("StoreCorruptionError", False),
    "partition_not_found": ("PartitionNotFoundError", False),
    "model_not_found": ("ModelNotFoundError", False),
    "checksum_mismatch": ("ChecksumMismatchError", False),
    "model_load_error": ("ModelLoadError", False),
    "model_version_mismatch": ("ModelVersionMismatchError", False),
    "foreign_arrow_invalid": ("ArrowInvalid", False),
    "foreign_file_not_found": ("FileNotFoundError", False),
    "source_connection_error": ("SourceConnectionError", True),
    "store_io_error": ("OSError", True),
}


def _register(registry: ModelRegistry, name: str) -> Path:
    """A tiny fitted model as ``name`` v0001 (alias champion); its version directory."""
    x = pd.DataFrame({"x": np.linspace(0.0, 1.0, 20)})
    model = LogisticRegression().fit(x, (x["x"] > 0.5).astype(int))
    registry.register(
        name,
        model,
        input_contract=FeatureContract.from_dict({"x": "float64"}),
        output={"score": "p", "threshold": 0.5, "entity_key": "key"},
        aliases=["champion"],
    )
    return Path(registry.root) / name / "v0001"


def _edit_record(version_dir: Path, **changes: object) -> None:
    record = json.loads((version_dir / "model.json").read_text())
    for key, value in changes.items():
        record[key] = {**record[key], **value} if isinstance(value, dict) else value
    (version_dir / "model.json").write_text(json.dumps(record))


@pytest.fixture
def prepared(tmp_path, monkeypatch, small_warehouse):
    """Fresh store and registry, each task's trouble in place; returns the run conf."""
    store_root, registry_root = tmp_path / "store", tmp_path / "registry"
    registry = ModelRegistry(str(registry_root))
    _register(registry, "retry_good")
    _register(registry, "retry_damaged_alias")
    (registry_root / "retry_damaged_alias" / "_aliases" / "champion.json").write_text("{")
    (_register(registry, "retry_tampered") / "model.joblib").write_bytes(b"not the model")
    garbage = b"not a pickle"
    _edit_record(
        _register(registry, "retry_unpicklable"),
        sha256=hashlib.sha256(garbage).hexdigest(),
        size=len(garbage),
    )
    (registry_root / "retry_unpicklable" / "v0001" / "model.joblib").write_bytes(garbage)
    _edit_record(_register(registry, "retry_old_sklearn"), libraries={"sklearn": "0.0.1"})
    refs = store_root / "retry_damaged" / "_refs"
    refs.mkdir(parents=True)
    (refs / f"ds={DAY}.json").write_text('{"current": ')
    not_parquet = tmp_path / "not.parquet"
    not_parquet.write_bytes(b"PAR0 but not Parquet at all")

    connections = {
        "FEATURE_STORE_DEFAULT": connection_json("feature_store", extra={"root": str(store_root)}),
        "RETRY_REGISTRY": connection_json(
            "model_registry",
            extra={"root": str(registry_root), "on_version_mismatch": "refuse"},
        ),
        "RETRY_UNREACHABLE": connection_json(
            "postgres", host="127.0.0.1", port=1, login="postgres", password=SECRET, schema="test"
        ),
        "RETRY_MISSING_SQLITE": connection_json("sqlite", host=str(tmp_path / "absent.db")),
    }
    for conn_id, value in connections.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id}", value)
    return {"partition": DAY, "not_parquet": str(not_parquet)}


def test_each_error_class_fails_fast_or_retries_through_airflow(
    airflow_db, dags_folder, prepared, tmp_path, monkeypatch
):
    from airflow.dag_processing.dagbag import DagBag

    record = tmp_path / "tries.jsonl"
    monkeypatch.setenv("RETRY_CLASSES_RECORD", str(record))
    dag = DagBag(dag_folder=str(dags_folder)).get_dag("retry_classes")
    run = dag.test(
        logical_date=None,
        run_after=dt.datetime(2026, 1, 11, 3, tzinfo=dt.UTC),
        run_conf=prepared,
    )

    tis = {ti.task_id: ti for ti in run.get_task_instances()}
    outcome = {task_id: (tis[task_id].state, tis[task_id].try_number) for task_id in EXPECTED}
    expected = {
        task_id: ("failed", 2 if retried else 1) for task_id, (_, retried) in EXPECTED.items()
    }
    assert outcome == expected
    assert (tis["extract_ok"].state, tis["fill_disk"].state) == ("success", "success")

    # what Airflow's callbacks saw on each try: fail-fast on try 1, or a retry then a failure
    tries: dict[str, list[tuple[int, str, str]]] = {}
    for line in record.read_text().splitlines():
        event = json.loads(line)
        error = event["cause"] if event["error"] == "AirflowFailException" else event["error"]
        tries.setdefault(event["task_id"], []).append(
            (event["try_number"], event["event"], event["error"] + ":" + error)
        )
    assert {task_id: tries.get(task_id) for task_id in EXPECTED} == {
        task_id: (
            [(1, "up_for_retry", f"{error}:{error}"), (2, "failed", f"{error}:{error}")]
            if retried
            else [(1, "failed", f"AirflowFailException:{error}")]
        )
        for task_id, (error, retried) in EXPECTED.items()
    }
