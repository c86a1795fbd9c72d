"""Starting real local servers for the cloud import tests, each its own process on 127.0.0.1:
moto's S3 server, Azurite's blob service, gcp-storage-emulator, and the contract stubs of the control planes
(EC2 VM Import, ARM compute images, Compute Engine images) in this folder. Nothing leaves loopback."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
AZ_ACCOUNT = "devstoreaccount1"    # Azurite's well-known development account and key
AZ_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
AZ_IDENTITY_HEADER = "factory-test-identity-header"
AKID, SECRET = "AKIAFACTORYTEST00001", "factory-test-secret-key/0123456789abcdefghij"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on {port} in {timeout}s")


@contextlib.contextmanager
def server(argv: list[str], what: str, *, port: int | None = None, port_line: str | None = None,
           env: dict[str, str] | None = None, log: Path | None = None) -> Iterator[int]:
    """Run argv until the block ends; the port is given (and awaited) or read from a line of its output."""
    out: IO[bytes] | int = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE if port_line else out, stderr=out,
                            env={**os.environ, **(env or {})})
    try:
        if port_line:
            assert proc.stdout is not None
            for raw in proc.stdout:
                match = re.search(port_line, raw.decode(errors="replace"))
                if match:
                    port = int(match.group(1))
                    break
        assert port is not None, f"{what} printed no port"
        wait_port(port, proc, what)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if log:
            out.close()  # type: ignore[union-attr]


def s3_client(moto_url: str) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1", aws_access_key_id=AKID,
                        aws_secret_access_key=SECRET)

def ec2_calls(ec2_url: str) -> list[dict[str, Any]]:
    import json
    import urllib.request

    with urllib.request.urlopen(f"{ec2_url}/_stub/calls") as resp:
        calls: list[dict[str, Any]] = json.load(resp)
    return calls

def azurite_bin() -> str:
    """Azurite installed by `make deps` (npm, package.json at the top of the tree)."""
    local = ROOT / "node_modules" / ".bin" / "azurite-blob"
    found = str(local) if local.exists() else shutil.which("azurite-blob")
    assert found, "azurite-blob not installed: run `make deps` (npm install)"
    return found
