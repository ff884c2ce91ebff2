"""demo.stack's S3 server: started under the workdir, recorded in the state, stopped by PID.

The rest of the stack (PostgreSQL, Redis, Airflow) is driven by tests/deployment.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

import pyarrow.fs as pafs
import pytest

from airflow_mlops.demo import stack

if TYPE_CHECKING:
    from pathlib import Path


def test_the_object_store_runs_under_the_workdir_until_stop(tmp_path: Path) -> None:
    (tmp_path / stack.OBJECT_STORE / "data").mkdir(parents=True)
    (tmp_path / stack.OBJECT_STORE / "data" / "left-over").touch()
    recorded = stack.start_object_store(tmp_path)
    pid = recorded.pop("pid")
    state = {"pids": {stack.OBJECT_STORE: pid}, stack.OBJECT_STORE: recorded}
    (tmp_path / "stack.json").write_text(json.dumps(state))
    try:
        options = recorded["storage_options"]
        assert options["AWS_ENDPOINT_URL"] == recorded["endpoint"]
        assert recorded["endpoint"].startswith("http://127.0.0.1:")
        assert options["AWS_SECRET_ACCESS_KEY"] != "airflow-mlops-secret"  # a fresh one
        fs = pafs.S3FileSystem(
            access_key=options["AWS_ACCESS_KEY_ID"],
            secret_key=options["AWS_SECRET_ACCESS_KEY"],
            endpoint_override=options["AWS_ENDPOINT_URL"],
            scheme="http",
        )
        assert fs.get_file_info(pafs.FileSelector("")) == []  # started empty
        assert not (tmp_path / stack.OBJECT_STORE / "data" / "left-over").exists()
        assert recorded["log"] == str(tmp_path / stack.OBJECT_STORE / "weed.log")
    finally:
        assert stack.stop(tmp_path) == [stack.OBJECT_STORE]
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
    assert [path for path in recorded["sockets"] if os.path.lexists(path)] == []
    assert not (tmp_path / "stack.json").exists()
