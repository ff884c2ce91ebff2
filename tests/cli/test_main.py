from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from airflow_mlops.cli.main import ROOT_ENV, main
from airflow_mlops.store.feature_store import FeatureStore

DAY = "2026-01-05"


def batch(rows: int) -> pa.RecordBatch:
    return pa.record_batch({"customer_id": list(range(rows))})


@pytest.fixture
def store(tmp_path: Path) -> FeatureStore:
    store = FeatureStore(str(tmp_path / "store"))
    store.publish_partition("customers", "2026-01-04", [batch(2)])
    store.publish_partition("customers", DAY, [batch(3)])
    store.publish_partition("customers", DAY, [batch(1234)])
    return store


def run(
    capsys: pytest.CaptureFixture[str], store: FeatureStore, *args: str
) -> tuple[int, str, str]:
    code = main(["--root", store.root, *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_tables(capsys: pytest.CaptureFixture[str], store: FeatureStore) -> None:
    code, out, _ = run(capsys, store, "tables")

    assert code == 0
    assert out == f"customers  2 partition(s), latest {DAY}\n"


def test_partitions_json(capsys: pytest.CaptureFixture[str], store: FeatureStore) -> None:
    code, out, _ = run(capsys, store, "partitions", "customers", "--json")

    assert code == 0
    assert [(r["partition"], r["row_count"]) for r in json.loads(out)] == [
        ("2026-01-04", 2),
        (DAY, 1234),
    ]


def test_versions_marks_current(capsys: pytest.CaptureFixture[str], store: FeatureStore) -> None:
    old, new = store.list_versions("customers", DAY)

    code, out, _ = run(capsys, store, "versions", "customers", DAY)

    assert code == 0
    assert out.splitlines()[0].startswith(f"  {old}  3 rows  created ")
    assert out.splitlines()[1].startswith(f"* {new}  1,234 rows  created ")


def test_manifest_is_pretty_json(capsys: pytest.CaptureFixture[str], store: FeatureStore) -> None:
    old = store.list_versions("customers", DAY)[0]

    code, out, _ = run(capsys, store, "manifest", "customers", DAY, "--version", old)

    assert code == 0
    assert out.startswith('{\n  "table": "customers"')
    assert json.loads(out) == store.manifest("customers", DAY, version=old)


def test_rollback_and_forward(capsys: pytest.CaptureFixture[str], store: FeatureStore) -> None:
    old, new = store.list_versions("customers", DAY)

    code, out, _ = run(capsys, store, "rollback", "customers", DAY)
    assert code == 0
    assert out.startswith(f"Rolled back customers {DAY} to {old}  3 rows")
    assert store.read_partition("customers", DAY).num_rows == 3

    code, out, _ = run(capsys, store, "rollback", "customers", DAY, "--to", new, "--json")
    assert code == 0
    assert json.loads(out)["version"] == new
    assert store.read_partition("customers", DAY).num_rows == 1234


def test_verify(capsys: pytest.CaptureFixture[str], store: FeatureStore) -> None:
    code, out, _ = run(capsys, store, "verify", "customers", DAY, "--json")
    assert code == 0
    assert json.loads(out)["ok"] is True

    manifest = store.manifest("customers", DAY)
    part = Path(store.partition_path("customers", DAY)) / manifest["files"][0]["path"]
    part.write_bytes(part.read_bytes() + b"\0")
    code, out, err = run(capsys, store, "verify", "customers", DAY)
    assert code == 2
    assert out == ""
    assert "failed verification" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("versions", "customers", "2026-02-01"), "Latest partitions: ", id="no-day"),
        pytest.param(("manifest", "orders", DAY), "No table 'orders'", id="no-table"),
        pytest.param(("versions", "a b", DAY), "Got 'a b' instead.", id="bad-table"),
        pytest.param(("versions", "customers", "tomorrow"), "YYYY-MM-DD", id="bad-day"),
    ],
)
def test_errors_exit_2(
    capsys: pytest.CaptureFixture[str], store: FeatureStore, args: tuple[str, ...], message: str
) -> None:
    code, out, err = run(capsys, store, *args)

    assert code == 2
    assert out == ""
    assert re.search(re.escape(message), err)


def test_root_from_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, store: FeatureStore
) -> None:
    monkeypatch.setenv(ROOT_ENV, store.root)

    assert main(["tables"]) == 0
    assert capsys.readouterr().out.startswith("customers")


def test_missing_root_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ROOT_ENV, raising=False)

    with pytest.raises(SystemExit) as info:
        main(["tables"])

    assert info.value.code == 2
    assert f"pass --root or set ${ROOT_ENV}" in capsys.readouterr().err


def test_installed_entry_point(store: FeatureStore) -> None:
    script = Path(sys.executable).parent / "airflow-mlops"

    result = subprocess.run(
        [str(script), "--root", store.root, "partitions", "customers"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1].startswith(f"{DAY}  v")


def test_python_dash_m(store: FeatureStore) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "airflow_mlops", "--root", store.root, "tables", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)[0]["table"] == "customers"


def test_clean_staging_command(tmp_path, capsys):
    from airflow_mlops.cli.main import main
    from airflow_mlops.store.feature_store import FeatureStore

    store = FeatureStore(str(tmp_path))
    path = store.staging_path("dag", "run", "x.parquet")
    import os

    os.makedirs(os.path.dirname(path))
    with open(path, "wb") as handle:
        handle.write(b"x")
    assert main(["--root", str(tmp_path), "clean-staging", "--older-than-days", "1"]) == 0
    assert "Nothing staged is older than 1 day(s)." in capsys.readouterr().out
    assert main(["--root", str(tmp_path), "clean-staging", "--older-than-days", "0"]) == 0
    assert "removed" in capsys.readouterr().out
    assert not os.path.exists(path)
