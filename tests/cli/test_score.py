"""``airflow-mlops score``: usage and argument errors (the run: tests/scoring/test_job.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from airflow_mlops.cli.main import main
from airflow_mlops.cli.models import REGISTRY_ENV

if TYPE_CHECKING:
    from pathlib import Path

ARGS = ["customer_features", "2026-01-04", "credit", "customer_scores"]


def run(capsys: pytest.CaptureFixture[str], tmp_path: Path, *args: str) -> tuple[int, str]:
    root, registry = str(tmp_path / "store"), str(tmp_path / "models")
    code = main(["--root", root, "score", "--registry", registry, *ARGS, *args])
    return code, capsys.readouterr().err


def test_missing_registry_root_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(REGISTRY_ENV, raising=False)

    with pytest.raises(SystemExit) as info:
        main(["--root", str(tmp_path), "score", *ARGS])

    assert info.value.code == 2
    assert f"pass score --registry or set ${REGISTRY_ENV}" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(
            ("--version", "v0001", "--workers", "0"),
            "The 'workers' parameter of ScoringRequest must be an int >= 1. Got 0 instead.",
            id="workers",
        ),
        pytest.param(
            ("--version", "v0001", "--challenger", "c", "--shadow-table", "customer_scores"),
            "ScoringRequest needs distinct tables",
            id="shadow-over-scores",
        ),
        pytest.param((), "No model 'credit' in the registry at", id="unknown-model"),
    ],
)
def test_errors_print_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    code, err = run(capsys, tmp_path, *args)

    assert code == 2
    assert err.startswith("airflow-mlops: error: ")
    assert message in err
