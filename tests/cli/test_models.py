"""``airflow-mlops models``: the model registry from a shell."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import joblib
import pytest

from airflow_mlops.cli.main import main
from airflow_mlops.cli.models import REGISTRY_ENV
from airflow_mlops.models.registry import ModelRegistry
from tests.models.test_registry import CONTRACT, OUTPUT, fitted_pipeline, register


@pytest.fixture
def registry(tmp_path: Path) -> ModelRegistry:
    registry = ModelRegistry(str(tmp_path / "models"))
    register(registry, aliases=["champion"], metrics={"roc_auc": 0.9})
    register(registry, aliases=["challenger"])
    return registry


@pytest.fixture
def artifact_file(tmp_path: Path) -> Path:
    path = tmp_path / "model.joblib"
    joblib.dump(fitted_pipeline(), path)
    return path


@pytest.fixture
def contract_file(tmp_path: Path) -> Path:
    path = tmp_path / "contract.json"
    path.write_text(CONTRACT.to_json())
    return path


def run(
    capsys: pytest.CaptureFixture[str], registry: ModelRegistry, *args: str
) -> tuple[int, str, str]:
    code = main(["models", "--registry", registry.root, *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_list(capsys: pytest.CaptureFixture[str], registry: ModelRegistry) -> None:
    code, out, _ = run(capsys, registry, "list")

    assert code == 0
    assert out == "credit  2 version(s), latest v0002; aliases: challenger=v0002, champion=v0001\n"


def test_list_json_with_registry_after_the_verb(
    capsys: pytest.CaptureFixture[str], registry: ModelRegistry
) -> None:
    code = main(["models", "list", "--json", "--registry", registry.root])

    assert code == 0
    assert json.loads(capsys.readouterr().out) == [
        {
            "name": "credit",
            "versions": ["v0001", "v0002"],
            "aliases": {"challenger": "v0002", "champion": "v0001"},
        }
    ]


@pytest.mark.parametrize(
    ("args", "version"),
    [
        pytest.param((), "v0001", id="default-champion"),
        pytest.param(("--alias", "challenger"), "v0002", id="alias"),
        pytest.param(("--version", "v0002"), "v0002", id="version"),
    ],
)
def test_show_prints_the_record(
    capsys: pytest.CaptureFixture[str], registry: ModelRegistry, args: tuple[str, ...], version: str
) -> None:
    code, out, _ = run(capsys, registry, "show", "credit", *args)

    assert code == 0
    assert out.startswith('{\n  "name": "credit",\n  "version": ')
    assert json.loads(out) == registry.record("credit", version)


@pytest.mark.parametrize(
    "contract_text",
    [
        pytest.param(CONTRACT.to_json(), id="fields-form"),
        pytest.param(
            json.dumps({f.name: [f.type, f.nullable] for f in CONTRACT.fields}), id="mapping-form"
        ),
    ],
)
def test_register(
    capsys: pytest.CaptureFixture[str],
    registry: ModelRegistry,
    artifact_file: Path,
    tmp_path: Path,
    contract_text: str,
) -> None:
    contract = tmp_path / "contract.json"
    contract.write_text(contract_text)
    (tmp_path / "output.json").write_text(json.dumps(OUTPUT))

    code, out, err = run(
        capsys,
        registry,
        "register",
        "credit",
        str(artifact_file),
        "--contract",
        str(contract),
        "--output",
        f"@{tmp_path / 'output.json'}",
        "--metrics",
        '{"roc_auc": 0.93}',
        "--tag",
        "owner=risk",
        "--tag",
        "ticket=ML-1=2",
        "--alias",
        "challenger",
    )

    assert (code, err) == (0, "")
    record = registry.record("credit", "v0003")
    assert out == f"Registered credit v0003 as challenger: sha256 {record['sha256']}\n"
    assert record["output"] == OUTPUT
    assert record["metrics"] == {"roc_auc": 0.93}
    assert record["tags"] == {"owner": "risk", "ticket": "ML-1=2"}
    assert record["input_contract"] == json.loads(CONTRACT.to_json())
    assert registry.aliases("credit")["challenger"] == "v0003"


def test_promote_and_rollback(capsys: pytest.CaptureFixture[str], registry: ModelRegistry) -> None:
    code, out, _ = run(capsys, registry, "promote", "credit", "champion", "v0002")
    assert code == 0
    assert out == "credit alias champion -> v0002 (history: v0001 v0002)\n"

    code, out, _ = run(capsys, registry, "rollback", "credit", "champion")
    assert code == 0
    assert out == "credit alias champion rolled back to v0001 (history: v0001)\n"
    assert registry.resolve("credit", "champion") == "v0001"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ("show", "fraud", "--version", "v0001"), "No model 'fraud' in the registry", id="model"
        ),
        pytest.param(
            ("rollback", "credit", "champion"), "has no earlier version to roll back to", id="rb"
        ),
        pytest.param(
            ("promote", "credit", "champion", "v0007"), "has no version v0007", id="no-version"
        ),
        pytest.param(("show", "../x"), "Got '../x' instead.", id="bad-name"),
        pytest.param(
            ("register", "credit", "missing.joblib", "--contract", "{contract}"),
            "No model file at 'missing.joblib'.",
            id="no-artifact-file",
        ),
        pytest.param(
            ("register", "credit", "{artifact}", "--contract", "{contract}", "--tag", "owner"),
            "--tag takes KEY=VALUE. Got 'owner' instead.",
            id="bad-tag",
        ),
        pytest.param(
            ("register", "credit", "{artifact}", "--contract", "{contract}", "--metrics", "[1]"),
            "--metrics must be a JSON object. Got '[1]' instead.",
            id="metrics-not-an-object",
        ),
        pytest.param(
            ("register", "credit", "{artifact}", "--contract", "nowhere.json"),
            "Could not read the --contract file 'nowhere.json'",
            id="no-contract-file",
        ),
        pytest.param(
            ("register", "credit", "{artifact}", "--contract", "{artifact}"),
            "Could not read the --contract file '{artifact}': not UTF-8 text.",
            id="contract-not-text",
        ),
        pytest.param(
            ("register", "credit", "{artifact}", "--contract", "{contract}", "--output", "{{"),
            "--output must be a JSON object or @file.json",
            id="output-not-json",
        ),
        pytest.param(("show", "credit", "--alias", ""), "Got '' instead.", id="empty-alias"),
    ],
)
def test_errors_exit_2(
    capsys: pytest.CaptureFixture[str],
    registry: ModelRegistry,
    artifact_file: Path,
    contract_file: Path,
    args: tuple[str, ...],
    message: str,
) -> None:
    paths = {"artifact": str(artifact_file), "contract": str(contract_file)}

    code, out, err = run(capsys, registry, *(arg.format(**paths) for arg in args))

    assert code == 2
    assert out == ""
    assert err.startswith("airflow-mlops: error: ")
    assert re.search(re.escape(message.format(**paths)), err)


def test_show_reads_the_record_even_if_the_artifact_is_damaged(
    capsys: pytest.CaptureFixture[str], registry: ModelRegistry
) -> None:
    path = Path(registry.root) / "credit" / "v0001" / "model.joblib"
    path.write_bytes(path.read_bytes()[:100])

    code, out, _ = run(capsys, registry, "show", "credit")

    assert code == 0
    assert json.loads(out)["version"] == "v0001"


def test_registry_root_from_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, registry: ModelRegistry
) -> None:
    monkeypatch.setenv(REGISTRY_ENV, registry.root)

    assert main(["models", "list"]) == 0
    assert capsys.readouterr().out.startswith("credit  2 version(s)")


def test_missing_registry_root_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(REGISTRY_ENV, raising=False)

    with pytest.raises(SystemExit) as info:
        main(["models", "list"])

    assert info.value.code == 2
    assert f"pass models --registry or set ${REGISTRY_ENV}" in capsys.readouterr().err


def test_installed_entry_point(registry: ModelRegistry) -> None:
    script = Path(sys.executable).parent / "airflow-mlops"

    result = subprocess.run(
        [str(script), "models", "--registry", registry.root, "show", "credit", "--alias", "x"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 2
    assert result.stderr == (
        "airflow-mlops: error: Model 'credit' has no alias 'x'. Aliases: challenger=v0002, "
        "champion=v0001; versions: v0001, v0002. Promote a version to it or pass a version.\n"
    )
    listed = subprocess.run(
        [str(script), "models", "--registry", registry.root, "list", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(listed.stdout)[0]["aliases"] == {"challenger": "v0002", "champion": "v0001"}
