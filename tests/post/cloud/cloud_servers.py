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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from factory.template.model import PostProcessorSpec

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
AZ_ACCOUNT = "devstoreaccount1"    # Azurite's well-known development account and key
AZ_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
AZ_IDENTITY_HEADER = "factory-test-identity-header"
AKID, SECRET = "AKIAFACTORYTEST00001", "factory-test-secret-key/0123456789abcdefghij"
PROFILE_AKID, PROFILE_SECRET = "AKIAFACTORYPROFILE01", "factory-profile-secret-key/0123456789abcdef"
# chains(build_body): the post-processor chains of a template with that build body (tests/post/conftest.py)
Chains = Callable[[str], list[list[PostProcessorSpec]]]


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


def s3_bucket(moto_url: str, name: str) -> Any:
    """A new bucket on the moto server; the S3 client that made it."""
    s3 = s3_client(moto_url)
    s3.create_bucket(Bucket=name)
    return s3


def stub_calls(url: str) -> list[dict[str, Any]]:
    """The calls a contract stub accepted (its GET /_stub/calls), oldest first."""
    import json
    import urllib.request

    with urllib.request.urlopen(f"{url}/_stub/calls") as resp:
        calls: list[dict[str, Any]] = json.load(resp)
    return calls


def ec2_calls(ec2_url: str, action: str | None = None) -> list[dict[str, Any]]:
    """The EC2 stub's accepted calls, of one action if given."""
    return [c for c in stub_calls(ec2_url) if action is None or c["action"] == action]


def moto_recording(moto_url: str, verb: str) -> list[dict[str, Any]]:
    """moto's request recorder (its own HTTP API): verb is start, stop or download; download returns the
    recorded requests (method, url, headers, body as text) since start."""
    import base64
    import json
    import urllib.request

    if verb != "download":
        if verb == "start":
            urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/recorder/reset-recording",
                                                          method="POST")).close()
        urllib.request.urlopen(urllib.request.Request(f"{moto_url}/moto-api/recorder/{verb}-recording",
                                                      method="POST")).close()
        return []
    with urllib.request.urlopen(f"{moto_url}/moto-api/recorder/download-recording") as resp:
        entries = [json.loads(line) for line in resp.read().decode().splitlines() if line.strip()]
    for e in entries:
        if e.get("body_encoded"):
            e["body"] = base64.b64decode(e["body"]).decode("latin-1")
    return entries

def azurite_bin() -> str:
    """Azurite installed by `make deps` (npm, package.json at the top of the tree)."""
    local = ROOT / "node_modules" / ".bin" / "azurite-blob"
    found = str(local) if local.exists() else shutil.which("azurite-blob")
    assert found, "azurite-blob not installed: run `make deps` (npm install)"
    return found
