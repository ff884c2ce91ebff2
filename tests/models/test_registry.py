"""ModelRegistry: versioned scikit-learn pipelines, verified before they are unpickled."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import io
import json
import logging
import re
import threading
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pyarrow.fs as pafs
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from airflow_mlops.contract import FeatureContract
from airflow_mlops.exceptions import (
    ArgumentError,
    ChecksumMismatchError,
    ModelLoadError,
    ModelNotFoundError,
    ModelVersionMismatchError,
    StoreCorruptionError,
)
from airflow_mlops.io.parquet import file_sha256
from airflow_mlops.models.layout import ALIASES_DIR
from airflow_mlops.models.records import library_versions
from airflow_mlops.models.registry import LoadedModel, ModelRegistry

CONTRACT = FeatureContract.from_dict(
    {"income": "float64", "age": "int64", "txn_count_7d": "int64", "region": "string"}
)
OUTPUT = {
    "score": "default_probability",
    "threshold": 0.3,
    "positive": "decline",
    "negative": "approve",
    "entity_key": "customer_id",
}


#: a runtime check as TrainModelOperator records it
RUNTIMES = {
    "tl2cgen": {
        "verified": True,
        "tolerance": 1e-12,
        "rows_checked": 4000,
        "max_abs_diff": 2.2e-16,
        "decisions_differing": 0,
        "reason": "4000 rows (with missing-value copies) within 1e-12 of scikit-learn",
    }
}


@functools.cache
def training_frame(rows: int = 500) -> tuple[pd.DataFrame, np.ndarray]:
    """Synthetic customers and whether they defaulted (deterministic)."""
    rng = np.random.default_rng(42)
    frame = pd.DataFrame(
        {
            "income": rng.normal(50_000, 15_000, rows),
            "age": rng.integers(18, 80, rows),
            "txn_count_7d": rng.poisson(6, rows),
            "region": rng.choice(["north", "south", "east", "west"], rows),
        }
    )
    risk = -frame["income"] / 20_000 + frame["txn_count_7d"] / 4 + (frame["region"] == "south")
    labels = (risk + rng.normal(0, 0.5, rows) > risk.median()).to_numpy(dtype=int)
    return frame, labels


@functools.cache
def fitted_pipeline(max_iter: int = 20) -> Pipeline:
    """StandardScaler + OneHotEncoder → HistGradientBoostingClassifier, fitted on a frame."""
    frame, labels = training_frame()
    prepare = ColumnTransformer(
        [
            ("numeric", StandardScaler(), ["income", "age", "txn_count_7d"]),
            ("category", OneHotEncoder(handle_unknown="ignore"), ["region"]),
        ]
    )
    model = Pipeline(
        [("prepare", prepare), ("classify", HistGradientBoostingClassifier(max_iter=max_iter))]
    )
    return model.fit(frame, labels)


def register(registry: ModelRegistry, name: str = "credit", **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("input_contract", CONTRACT)
    kwargs.setdefault("output", OUTPUT)
    return registry.register(name, kwargs.pop("model", fitted_pipeline()), **kwargs)


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    return ModelRegistry(str(tmp_path / "models"))


def artifact(registry: ModelRegistry, version: str, name: str = "credit") -> Path:
    return Path(registry.root) / name / version / "model.joblib"


def rewrite_record(registry: ModelRegistry, version: str, **changes: Any) -> None:
    path = Path(registry.root) / "credit" / version / "model.json"
    record = json.loads(path.read_text())
    for key, value in changes.items():
        if isinstance(value, dict):
            record[key].update(value)
        else:
            record[key] = value
    path.write_text(json.dumps(record))


@pytest.fixture
def joblib_load_forbidden(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: object, **kwargs: object) -> None:
        pytest.fail("joblib.load was called on an artifact that failed verification")

    monkeypatch.setattr(joblib, "load", forbidden)


# -- round trip and records -------------------------------------------------------------


@pytest.mark.parametrize(
    "root",
    [
        pytest.param("{tmp}/models", id="local-path"),
        pytest.param("file://{tmp}/models", id="file-uri"),
    ],
)
def test_round_trip_gives_identical_probabilities(tmp_path: Path, root: str) -> None:
    registry = ModelRegistry(root.format(tmp=tmp_path))
    frame, _ = training_frame()

    register(registry, aliases=["champion"])
    loaded = registry.load("credit")

    assert isinstance(loaded, LoadedModel)
    assert (loaded.name, loaded.version) == ("credit", "v0001")
    assert loaded.record == registry.record("credit", "v0001")
    np.testing.assert_array_equal(
        loaded.model.predict_proba(frame), fitted_pipeline().predict_proba(frame)
    )
    assert (tmp_path / "models" / "credit" / "v0001" / "model.joblib").is_file()


def test_object_store_code_path(tmp_path: Path) -> None:
    """A non-local pyarrow filesystem: no flock, listing-based numbering, one PUT per JSON."""
    (tmp_path / "bucket").mkdir()
    bucket = pafs.SubTreeFileSystem(str(tmp_path / "bucket"), pafs.LocalFileSystem())
    registry = ModelRegistry("models", filesystem=bucket)
    frame, _ = training_frame()

    register(registry, aliases=["champion"])
    register(registry, aliases=["champion"])
    registry.rollback("credit", "champion")

    assert registry.list_versions("credit") == ["v0001", "v0002"]
    assert registry.aliases("credit") == {"champion": "v0001"}
    np.testing.assert_array_equal(
        registry.load("credit").model.predict_proba(frame), fitted_pipeline().predict_proba(frame)
    )
    assert not (tmp_path / "bucket" / "models" / "credit" / ".registry.lock").exists()


def test_record_fields(registry: ModelRegistry) -> None:
    training = {"table": "customer_features", "partitions": ["2026-01-03", "2026-01-04"]}

    record = register(
        registry,
        metrics={"roc_auc": 0.91, "n_test": 100},
        params={"max_iter": 20},
        training_data=training,
        tags={"owner": "risk-team"},
        runtimes=RUNTIMES,
    )

    sha, size = file_sha256(pafs.LocalFileSystem(), str(artifact(registry, "v0001")))
    assert record == registry.record("credit", "v0001")
    assert (record["name"], record["version"]) == ("credit", "v0001")
    assert (record["sha256"], record["size"]) == (sha, size)
    created = dt.datetime.fromisoformat(record["created_at"])
    assert created.utcoffset() == dt.timedelta(0)
    assert record["libraries"] == library_versions()
    assert set(record["libraries"]) == {"python", "sklearn", "joblib", "numpy"}
    assert FeatureContract.from_json(json.dumps(record["input_contract"])) == CONTRACT
    assert record["output"] == OUTPUT
    assert record["metrics"] == {"roc_auc": 0.91, "n_test": 100.0}
    assert record["params"] == {"max_iter": 20}
    assert record["training_data"] == training
    assert record["tags"] == {"owner": "risk-team"}
    assert record["runtimes"] == RUNTIMES
    assert record["model_class"] == (
        "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier"
    )


def test_plain_estimator_without_feature_names_is_accepted(registry: ModelRegistry) -> None:
    frame, labels = training_frame()
    numeric = frame[["income", "age"]].to_numpy()
    model = HistGradientBoostingClassifier(max_iter=5).fit(numeric, labels)

    record = register(registry, model=model)

    assert record["model_class"].endswith(".HistGradientBoostingClassifier")
    np.testing.assert_array_equal(
        registry.load("credit", version="v0001").model.predict_proba(numeric),
        model.predict_proba(numeric),
    )


def test_runtimes_default_to_empty_and_older_records_without_them_load(
    registry: ModelRegistry,
) -> None:
    assert register(registry)["runtimes"] == {}
    path = Path(registry.root) / "credit" / "v0001" / "model.json"
    older = {k: v for k, v in json.loads(path.read_text()).items() if k != "runtimes"}
    path.write_text(json.dumps(older))

    loaded = registry.load("credit", version="v0001")

    assert "runtimes" not in loaded.record
    assert loaded.record == registry.record("credit", "v0001")


def test_artifact_bytes_are_the_verified_artifact(registry: ModelRegistry) -> None:
    register(registry)
    frame, _ = training_frame()

    payload = registry.artifact_bytes("credit", "v0001")

    assert payload == artifact(registry, "v0001").read_bytes()
    assert hashlib.sha256(payload).hexdigest() == registry.record("credit", "v0001")["sha256"]
    np.testing.assert_array_equal(
        joblib.load(io.BytesIO(payload)).predict_proba(frame),
        fitted_pipeline().predict_proba(frame),
    )


def test_register_logs_one_line(registry: ModelRegistry, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="airflow_mlops.models.registry"):
        record = register(registry, aliases=["challenger"])

    assert [r.getMessage() for r in caplog.records] == [
        f"Registered model 'credit' version v0001 ({record['model_class']}, {record['size']} "
        f"bytes, sha256 {record['sha256']}), aliases challenger"
    ]


# -- versions ---------------------------------------------------------------------------


def test_versions_are_numbered_in_order(registry: ModelRegistry) -> None:
    versions = [register(registry)["version"] for _ in range(3)]
    register(registry, "fraud")

    assert versions == ["v0001", "v0002", "v0003"]
    assert registry.list_versions("credit") == versions
    assert registry.list_models() == ["credit", "fraud"]


def test_a_version_without_record_is_not_listed_nor_reused(registry: ModelRegistry) -> None:
    register(registry)
    crashed = Path(registry.root) / "credit" / "v0002"
    crashed.mkdir()
    (crashed / "model.joblib").write_bytes(b"half an artifact")

    assert registry.list_versions("credit") == ["v0001"]
    assert register(registry)["version"] == "v0003"
    assert registry.list_versions("credit") == ["v0001", "v0003"]
    assert not crashed.exists()  # the next register deleted what the killed one left


@pytest.mark.parametrize(
    "action",
    [
        pytest.param(lambda r: r.promote("credit", "champion", "v0001"), id="promote"),
        pytest.param(lambda r: r.rollback("credit", "champion"), id="rollback"),
        pytest.param(lambda r: register(r, aliases=["challenger"]), id="register"),
    ],
)
def test_alias_writes_delete_temp_alias_files_of_killed_writers(
    registry: ModelRegistry, action: Any
) -> None:
    register(registry, aliases=["champion"])
    register(registry, aliases=["champion"])
    aliases = Path(registry.root) / "credit" / "_aliases"
    (aliases / ".champion.json.tmp-0badc0de").write_text('{"version": ')
    (aliases / ".challenger.json.tmp-0badc0de").write_text("")

    action(registry)

    expected = sorted(f"{alias}.json" for alias in registry.aliases("credit"))
    assert sorted(p.name for p in aliases.iterdir()) == expected


def test_concurrent_registers_get_distinct_versions(registry: ModelRegistry) -> None:
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append(register(registry)["version"]))
        for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == ["v0001", "v0002", "v0003", "v0004"]
    assert registry.list_versions("credit") == sorted(results)


# -- aliases ----------------------------------------------------------------------------


def test_promote_and_rollback_keep_history(registry: ModelRegistry) -> None:
    register(registry, aliases=["champion"])
    register(registry, aliases=["challenger"])
    register(registry)

    assert registry.promote("credit", "champion", "v0002") == {
        "name": "credit",
        "alias": "champion",
        "version": "v0002",
        "history": ["v0001", "v0002"],
    }
    registry.promote("credit", "champion", "v0003")
    registry.promote("credit", "champion", "v0003")  # already current: no new history entry
    assert registry.aliases("credit") == {"challenger": "v0002", "champion": "v0003"}
    assert registry.load("credit").version == "v0003"

    state = registry.rollback("credit", "champion")

    assert state == {
        "name": "credit",
        "alias": "champion",
        "version": "v0002",
        "history": ["v0001", "v0002"],
    }
    assert registry.resolve("credit", "champion") == "v0002"
    alias_file = Path(registry.root) / "credit" / "_aliases" / "champion.json"
    assert json.loads(alias_file.read_text()) == {"version": "v0002", "history": ["v0001", "v0002"]}
    assert registry.rollback("credit", "champion")["version"] == "v0001"


def test_rollback_without_history_is_refused(registry: ModelRegistry) -> None:
    register(registry, aliases=["champion"])
    register(registry)

    with pytest.raises(
        ModelNotFoundError,
        match=re.escape(
            "Alias 'champion' of model 'credit' has no earlier version to roll back to: it has "
            "only pointed at v0001. Promote a version explicitly instead (versions: v0001, v0002)."
        ),
    ):
        registry.rollback("credit", "champion")


def test_promote_and_rollback_log_one_line_each(
    registry: ModelRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    register(registry, aliases=["champion"])
    register(registry)
    caplog.clear()

    with caplog.at_level(logging.INFO, logger="airflow_mlops.models.registry"):
        registry.promote("credit", "champion", "v0002")
        registry.rollback("credit", "champion")

    assert [r.getMessage() for r in caplog.records] == [
        "Promoted model 'credit' alias 'champion' to v0002 (was v0001)",
        "Rolled back model 'credit' alias 'champion' from v0002 to v0001",
    ]


@pytest.mark.parametrize(
    ("action", "message"),
    [
        pytest.param(
            lambda r: r.promote("credit", "champion", "v0009"),
            "Model 'credit' has no version v0009 in the registry at {root}. Versions: v0001.",
            id="promote-missing-version",
        ),
        pytest.param(
            lambda r: r.load("credit"),
            "Model 'credit' has no alias 'champion'. Aliases: challenger=v0001; versions: "
            "v0001. Promote a version to it or pass a version.",
            id="load-default-alias-unset",
        ),
        pytest.param(
            lambda r: r.rollback("credit", "prod"),
            "Model 'credit' has no alias 'prod'. Aliases: challenger=v0001",
            id="rollback-unknown-alias",
        ),
        pytest.param(
            lambda r: r.load("fraud", version="v0001"),
            "No model 'fraud' in the registry at {root}. Models: credit.",
            id="unknown-model",
        ),
        pytest.param(
            lambda r: r.record("credit", "v0002"),
            "Model 'credit' has no version v0002 in the registry at {root}. Versions: v0001.",
            id="unknown-version",
        ),
    ],
)
def test_missing_things_are_named(registry: ModelRegistry, action: Any, message: str) -> None:
    register(registry, aliases=["challenger"])

    with pytest.raises(ModelNotFoundError, match=re.escape(message.format(root=registry.root))):
        action(registry)


# -- safe loading -----------------------------------------------------------------------


def flip_one_byte(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]


@pytest.mark.parametrize(
    ("damage", "what"),
    [
        pytest.param(flip_one_byte, "modified", id="one-byte-flipped"),
        pytest.param(lambda data: data[: len(data) // 2], "truncated or extended", id="truncated"),
        pytest.param(lambda data: data + b"\0", "truncated or extended", id="extended"),
    ],
)
@pytest.mark.usefixtures("joblib_load_forbidden")
def test_damaged_artifact_is_never_unpickled(
    registry: ModelRegistry, damage: Any, what: str
) -> None:
    record = register(registry, aliases=["champion"])
    path = artifact(registry, "v0001")
    path.write_bytes(damage(path.read_bytes()))
    actual = hashlib.sha256(path.read_bytes()).hexdigest()

    with pytest.raises(ChecksumMismatchError) as info:
        registry.load("credit")

    assert str(info.value) == (
        f"The artifact of model 'credit' version v0001 at {path} was {what} after "
        f"registration: its SHA-256 is {actual} ({path.stat().st_size} bytes), the record says "
        f"{record['sha256']} ({record['size']} bytes). It was not loaded. Restore the artifact "
        "from a backup or re-register the model."
    )
    assert (info.value.path, info.value.expected, info.value.actual) == (
        str(path),
        record["sha256"],
        actual,
    )
    assert not info.value.retryable
    with pytest.raises(ChecksumMismatchError):
        registry.artifact_bytes("credit", "v0001")


def test_missing_artifact(registry: ModelRegistry) -> None:
    register(registry)
    register(registry)
    artifact(registry, "v0002").unlink()

    with pytest.raises(
        ModelNotFoundError,
        match=re.escape(
            f"Model 'credit' version v0002 has a record but its artifact "
            f"{artifact(registry, 'v0002')} is missing. Restore the artifact or re-register the "
            "model (registered versions: v0001, v0002)."
        ),
    ):
        registry.load("credit", version="v0002")


def test_damaged_record(registry: ModelRegistry) -> None:
    register(registry)
    (Path(registry.root) / "credit" / "v0001" / "model.json").write_text('{"name": "credit"')

    with pytest.raises(ModelLoadError, match=re.escape("is damaged")):
        registry.load("credit", version="v0001")


def test_damaged_alias_is_a_non_retryable_corruption_error(registry: ModelRegistry) -> None:
    register(registry, aliases=["champion"])
    alias = Path(registry.root) / "credit" / ALIASES_DIR / "champion.json"
    alias.write_text('{"version": "v0001", "hist')

    with pytest.raises(StoreCorruptionError, match=re.escape(f"The alias file {alias}")) as info:
        registry.load("credit")
    assert not info.value.retryable


def replace_artifact(registry: ModelRegistry, payload: bytes) -> None:
    """Swap v0001's artifact for ``payload`` and re-record its checksum (a valid record)."""
    artifact(registry, "v0001").write_bytes(payload)
    rewrite_record(registry, "v0001", sha256=hashlib.sha256(payload).hexdigest(), size=len(payload))


def test_verified_object_without_predict_proba_is_refused(registry: ModelRegistry) -> None:
    register(registry)
    buffer = io.BytesIO()
    joblib.dump(StandardScaler(), buffer)
    replace_artifact(registry, buffer.getvalue())

    with pytest.raises(
        ModelLoadError,
        match=re.escape(
            "Model 'credit' version v0001 loaded as a StandardScaler, which has no predict_proba."
        ),
    ):
        registry.load("credit", version="v0001")


def test_verified_bytes_that_do_not_unpickle(registry: ModelRegistry) -> None:
    register(registry)
    replace_artifact(registry, b"not a pickle")

    with pytest.raises(ModelLoadError, match=re.escape("passed its checksum but could not be")):
        registry.load("credit", version="v0001")


@pytest.mark.parametrize(
    ("saved", "different"),
    [
        pytest.param({"sklearn": "0.24.2"}, "sklearn 0.24.2", id="sklearn"),
        pytest.param({"joblib": "0.9.0"}, "joblib 0.9.0", id="joblib"),
        pytest.param({"python": "3.9.18"}, "python 3.9.18", id="python-minor"),
    ],
)
def test_library_version_mismatch_refuse(
    registry: ModelRegistry, saved: dict[str, str], different: str
) -> None:
    register(registry)
    rewrite_record(registry, "v0001", libraries=saved)
    lib = next(iter(saved))
    refusing = ModelRegistry(registry.root, on_version_mismatch="refuse")

    message = re.escape(
        f"Model 'credit' version v0001 was saved with {different} (running "
        f"{library_versions()[lib]}). Its predictions may differ or loading may fail: "
        "retrain and re-register it with the running versions, or pin them."
    )

    with pytest.raises(ModelVersionMismatchError, match=message):
        refusing.load("credit", version="v0001")
    with pytest.raises(ModelVersionMismatchError, match=message):
        refusing.artifact_bytes("credit", "v0001")


def test_library_version_mismatch_warns_and_logs(
    registry: ModelRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    register(registry)
    rewrite_record(registry, "v0001", libraries={"sklearn": "0.24.2"})
    message = f"was saved with sklearn 0.24.2 (running {library_versions()['sklearn']})"

    with pytest.warns(UserWarning, match=re.escape(message)) as recorded:
        loaded = registry.load("credit", version="v0001")

    assert loaded.version == "v0001"
    assert recorded[0].filename == __file__
    with pytest.warns(UserWarning, match=re.escape(message)) as recorded:
        registry.artifact_bytes("credit", "v0001")
    assert recorded[0].filename == __file__
    assert [r.levelname for r in caplog.records if message in r.getMessage()] == ["WARNING"] * 2


def test_library_version_mismatch_ignored(registry: ModelRegistry) -> None:
    register(registry)
    rewrite_record(registry, "v0001", libraries={"sklearn": "0.24.2", "python": "3.9.0"})

    loaded = ModelRegistry(registry.root, on_version_mismatch="ignore").load(
        "credit", version="v0001"
    )

    assert loaded.version == "v0001"


def test_python_patch_release_is_not_a_mismatch(registry: ModelRegistry) -> None:
    register(registry)
    major, minor, _ = library_versions()["python"].split(".")
    rewrite_record(registry, "v0001", libraries={"python": f"{major}.{minor}.999"})

    refusing = ModelRegistry(registry.root, on_version_mismatch="refuse")

    assert refusing.load("credit", version="v0001").version == "v0001"


# -- arguments --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("contract", "difference"),
    [
        pytest.param(
            {"income": "float64", "age": "int64", "region": "string"},
            "not in the contract: txn_count_7d",
            id="contract-misses-a-column",
        ),
        pytest.param(
            {
                "income": "float64",
                "age": "int64",
                "txn_count_7d": "int64",
                "region": "string",
                "tenure": "int64",
            },
            "not used by the model: tenure",
            id="contract-has-an-extra-column",
        ),
        pytest.param(
            {"age": "int64", "income": "float64", "txn_count_7d": "int64", "region": "string"},
            "same columns in another order: model income, age, txn_count_7d, region, "
            "contract age, income, txn_count_7d, region",
            id="another-order",
        ),
    ],
)
def test_feature_names_must_match_the_contract(
    registry: ModelRegistry, contract: dict[str, str], difference: str
) -> None:
    with pytest.raises(
        ArgumentError,
        match=re.escape(
            f"The model's feature_names_in_ do not match its input_contract ({difference}). "
            "Declare the contract with the columns the model was fitted on, in that order."
        ),
    ):
        register(registry, input_contract=FeatureContract.from_dict(contract))
    assert registry.list_models() == []


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("../x", id="parent-traversal"),
        pytest.param("a..b", id="double-dot"),
        pytest.param("a/b", id="slash"),
        pytest.param("", id="empty"),
        pytest.param("1credit", id="leading-digit"),
        pytest.param("x" * 129, id="too-long"),
    ],
)
def test_bad_names_are_refused(registry: ModelRegistry, name: str) -> None:
    register(registry)
    expected = re.escape(f"and '_.-' (at most 128 characters, no '..'). Got {name!r} instead.")

    with pytest.raises(ArgumentError, match=f"^A model name must .*{expected}"):
        register(registry, name)
    with pytest.raises(ArgumentError, match=f"^An alias name must .*{expected}"):
        register(registry, aliases=[name])
    with pytest.raises(ArgumentError, match=f"^An alias name must .*{expected}"):
        registry.promote("credit", name, "v0001")
    assert registry.list_versions("credit") == ["v0001"]


@pytest.mark.parametrize(
    "version",
    [pytest.param("../v0001", id="traversal"), pytest.param("1", id="bare-number")],
)
def test_bad_versions_are_refused(registry: ModelRegistry, version: str) -> None:
    with pytest.raises(
        ArgumentError,
        match=re.escape(
            f"A model version looks like 'v0001' (v and at least 4 digits). Got {version!r}"
        ),
    ):
        registry.load("credit", version=version)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(
            {"model": LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])},
            "The 'model' parameter of ModelRegistry.register must be a fitted classifier or "
            "pipeline with predict_proba. Got a LinearRegression instead.",
            id="no-predict-proba",
        ),
        pytest.param(
            {"input_contract": {"income": "float64"}},
            "The 'input_contract' parameter of ModelRegistry.register must be a "
            "FeatureContract. Got dict instead.",
            id="contract-not-a-feature-contract",
        ),
        pytest.param(
            {"metrics": {"auc": "high"}},
            "The 'metrics' parameter of ModelRegistry.register must map names to numbers. "
            "Not numbers: auc='high'.",
            id="metric-not-a-number",
        ),
        pytest.param(
            {"tags": {"owner": 7}},
            "The 'tags' parameter of ModelRegistry.register must map names to strings. "
            "Not strings: owner=7.",
            id="tag-not-a-string",
        ),
        pytest.param(
            {"output": {"threshold": object}},
            "The 'output' parameter of ModelRegistry.register must be a JSON-serialisable",
            id="output-not-json",
        ),
        pytest.param(
            {"runtimes": {"tl2cgen": {"max_abs_diff": object}}},
            "The 'runtimes' parameter of ModelRegistry.register must be a JSON-serialisable",
            id="runtimes-not-json",
        ),
        pytest.param(
            {"aliases": "champion"},
            "The 'aliases' parameter of ModelRegistry.register must be a list of names. "
            "Got the string 'champion' instead; write ['champion'].",
            id="aliases-as-a-string",
        ),
    ],
)
def test_bad_register_arguments_are_refused(
    registry: ModelRegistry, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ArgumentError, match=re.escape(message)):
        register(registry, **kwargs)
    assert registry.list_models() == []


def test_version_and_alias_together_are_refused(registry: ModelRegistry) -> None:
    with pytest.raises(
        ArgumentError,
        match=re.escape("Pass either version or alias to load model 'credit', not both."),
    ):
        registry.load("credit", version="v0001", alias="champion")


@pytest.mark.parametrize(
    "mode",
    [pytest.param("explode", id="unknown"), pytest.param("WARN", id="wrong-case")],
)
def test_bad_on_version_mismatch_is_refused(tmp_path: Path, mode: str) -> None:
    with pytest.raises(
        ArgumentError,
        match=re.escape(
            "The 'on_version_mismatch' parameter of ModelRegistry must be one of 'warn', "
            f"'refuse', 'ignore'. Got {mode!r} instead."
        ),
    ):
        ModelRegistry(str(tmp_path), on_version_mismatch=mode)


def test_empty_registry_lists_nothing(registry: ModelRegistry) -> None:
    assert registry.list_models() == []
    assert registry.list_versions("credit") == []
    assert registry.aliases("credit") == {}
