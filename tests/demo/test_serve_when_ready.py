"""``airflow_mlops.demo.serve_when_ready``: the stack's serving process waits for a champion."""

from __future__ import annotations

import subprocess
import sys

import pytest

from airflow_mlops.demo.serve_when_ready import alias_exists, main


def test_an_empty_registry_has_no_champion(tmp_path):
    assert not alias_exists(str(tmp_path / "registry"), "credit_risk", "champion")
    assert not (tmp_path / "registry").exists()  # looking creates nothing


def test_it_wants_a_serve_command(capsys):
    with pytest.raises(SystemExit):
        main(["--", "--root", "/tmp/store", "tables"])
    assert "airflow-mlops serve" in capsys.readouterr().err


def test_it_waits_and_says_so_until_stopped(tmp_path, repo):
    command = [
        *(sys.executable, "-m", "airflow_mlops.demo.serve_when_ready", "--poll", "0.05"),
        *("--", "--root", str(tmp_path / "store"), "serve", "credit_risk"),
        *("--registry", str(tmp_path / "registry")),
    ]
    process = subprocess.Popen(command, cwd=repo, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert "waiting for credit_risk@champion" in line
        assert process.poll() is None
    finally:
        process.terminate()
        process.communicate(timeout=10)
