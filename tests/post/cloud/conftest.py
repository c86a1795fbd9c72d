"""Fixtures: the real local servers of the cloud import tests (see cloud_servers.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cloud_servers import AKID, HERE, SECRET, free_port, server


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's real S3 server (a separate process)."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with server([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], "moto server",
                port=port, log=log):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def ec2_url(moto_url: str) -> Iterator[str]:
    """The EC2 VM Import contract stub, reading imported objects from the moto server."""
    with server([sys.executable, str(HERE / "ec2_contract_stub.py"), "--s3-endpoint", moto_url,
                 "--key", f"{AKID}:{SECRET}"], "EC2 contract stub", port_line=r"PORT (\d+)") as port:
        yield f"http://127.0.0.1:{port}"



@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, moto_url: str, ec2_url: str, tmp_path: Path) -> dict[str, str]:
    """boto3's standard settings pointing at the local servers; no file or metadata lookup leaves the test."""
    env = {"AWS_ACCESS_KEY_ID": AKID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": "us-east-1",
           "AWS_ENDPOINT_URL_S3": moto_url, "AWS_ENDPOINT_URL_EC2": ec2_url, "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_CONFIG_FILE": str(tmp_path / "aws-config"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-creds"),
           "AWS_POLL_DELAY_SECONDS": "0.02"}
    for name in ("AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
