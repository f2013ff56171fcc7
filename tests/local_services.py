"""Local stand-ins for what a cluster reaches over the network: free ports, and moto's S3 server.

One place for the S3 endpoint every object-storage test uses, so they all point pyarrow, boto3 and
Ray workers at it the same way a cluster's instance role would (AWS_* env, no profile).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest


def free_port() -> int:
    """A TCP port nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def moto_s3(monkeypatch: pytest.MonkeyPatch, *buckets: str) -> Iterator[object]:
    """moto's S3 server over HTTP on localhost with ``buckets`` created; yields a boto3 client.

    The endpoint and dummy keys go into the environment through ``monkeypatch`` (undone with it),
    where pyarrow's S3FileSystem, boto3 and child processes read them.
    """
    moto_server = pytest.importorskip("moto.server", reason="moto[server] not installed")
    boto3 = pytest.importorskip("boto3")
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        for key, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_EC2_METADATA_DISABLED": "true",
        }.items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("AWS_PROFILE", raising=False)
        client = boto3.client("s3")
        for bucket in buckets:
            client.create_bucket(Bucket=bucket)
        yield client
    finally:
        server.stop()


def kill_cluster(temp_dir: str) -> None:
    """Stop exactly the processes of one test Ray cluster (their command lines name its temp dir):
    ``ray stop`` would stop every cluster on a shared machine. SIGKILL after 5 s: a test cluster
    keeps nothing worth a longer wait."""
    import psutil

    procs = [p for p in psutil.process_iter(["cmdline"]) if temp_dir in " ".join(p.info["cmdline"] or [])]
    for p in procs:
        try:
            p.terminate()
        except psutil.Error:
            pass
    _, alive = psutil.wait_procs(procs, timeout=5)
    for p in alive:
        try:
            p.kill()
        except psutil.Error:
            pass
