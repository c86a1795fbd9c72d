"""Fixtures: the real local servers of the cloud import tests (see cloud_servers.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cloud_servers import (
    AKID,
    AZ_ACCOUNT,
    AZ_IDENTITY_HEADER,
    AZ_KEY,
    HERE,
    PROFILE_AKID,
    PROFILE_SECRET,
    SECRET,
    azurite_bin,
    free_port,
    server,
)


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's real S3 (and STS) server (a separate process); its request recorder writes into a temp dir."""
    port = free_port()
    d = tmp_path_factory.mktemp("moto")
    with server([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], "moto server",
                port=port, log=d / "moto.log", env={"MOTO_RECORDER_FILEPATH": str(d / "recording.jsonl")}):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def ec2_url(moto_url: str) -> Iterator[str]:
    """The EC2 VM Import contract stub, reading imported objects from the moto server."""
    argv = [sys.executable, str(HERE / "ec2_contract_stub.py"), "--s3-endpoint", moto_url,
            "--key", f"{AKID}:{SECRET}", "--key", f"{PROFILE_AKID}:{PROFILE_SECRET}"]
    with server(argv, "EC2 contract stub", port_line=r"PORT (\d+)") as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, moto_url: str, ec2_url: str, tmp_path: Path) -> dict[str, str]:
    """boto3's standard settings pointing at the local servers (STS: moto's); no file or metadata lookup leaves
    the test."""
    env = {"AWS_ACCESS_KEY_ID": AKID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": "us-east-1",
           "AWS_ENDPOINT_URL_S3": moto_url, "AWS_ENDPOINT_URL_EC2": ec2_url, "AWS_ENDPOINT_URL_STS": moto_url,
           "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_CONFIG_FILE": str(tmp_path / "aws-config"), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "aws-creds"),
           "AWS_POLL_DELAY_SECONDS": "0.02"}
    for name in ("AWS_PROFILE", "AWS_DEFAULT_REGION", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture(scope="module")
def azurite_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Azurite's blob service (npm), a separate process; the URL includes the account (path style)."""
    data = tmp_path_factory.mktemp("azurite")
    argv = [azurite_bin(), "--disableTelemetry", "--loose", "--skipApiVersionCheck", "--blobHost", "127.0.0.1",
            "--blobPort", "0", "--location", str(data)]
    with server(argv, "Azurite", port_line=r"listens on http://127\.0\.0\.1:(\d+)") as port:
        yield f"http://127.0.0.1:{port}/{AZ_ACCOUNT}"


@pytest.fixture(scope="module")
def arm_url(azurite_url: str) -> Iterator[str]:
    """The ARM compute-images contract stub, checking source blobs in Azurite."""
    argv = [sys.executable, str(HERE / "arm_contract_stub.py"), "--blob-endpoint", azurite_url, "--account",
            AZ_ACCOUNT, "--key", AZ_KEY, "--identity-header", AZ_IDENTITY_HEADER, "--gallery-image",
            "factorygallery/debian"]
    with server(argv, "ARM contract stub", port_line=r"PORT (\d+)") as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def azure_env(monkeypatch: pytest.MonkeyPatch, arm_url: str) -> dict[str, str]:
    """azure-identity's managed identity (App Service flavour) served by the ARM stub; nothing else configured."""
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE",
                 "AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_KEY", "MSI_ENDPOINT", "MSI_SECRET"):
        monkeypatch.delenv(name, raising=False)
    env = {"IDENTITY_ENDPOINT": f"{arm_url}/msi/token", "IDENTITY_HEADER": AZ_IDENTITY_HEADER,
           "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000001"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture(scope="module")
def gcp_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A fresh RSA key pair: (private PEM, public PEM), for a service-account key file the tests write."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    d = tmp_path_factory.mktemp("gcpkey")
    (d / "private.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
    (d / "public.pem").write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                                 serialization.PublicFormat.SubjectPublicKeyInfo))
    return d / "private.pem", d / "public.pem"


@pytest.fixture(scope="module")
def gcs_url() -> Iterator[str]:
    """gcp-storage-emulator (PyPI), a separate process, in memory."""
    port = free_port()
    argv = [str(Path(sys.executable).parent / "gcp-storage-emulator"), "start", "--host", "127.0.0.1", "--port",
            str(port), "--in-memory", "--default-bucket", "images", "--quiet"]
    with server(argv, "gcp-storage-emulator", port=port):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def gce_url(gcs_url: str, gcp_key: tuple[Path, Path]) -> Iterator[str]:
    """The Compute Engine images contract stub (and OAuth token endpoint)."""
    argv = [sys.executable, str(HERE / "gce_contract_stub.py"), "--gcs-endpoint", gcs_url, "--public-key",
            str(gcp_key[1])]
    with server(argv, "GCE contract stub", port_line=r"PORT (\d+)") as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def gcp_account(monkeypatch: pytest.MonkeyPatch, gcs_url: str, gce_url: str, gcp_key: tuple[Path, Path],
                tmp_path: Path) -> Path:
    """A service-account key file whose token_uri is the stub's; Cloud Storage at the emulator (the SDK's
    STORAGE_EMULATOR_HOST); metadata-server probes aimed at a closed loopback port."""
    import json

    account = tmp_path / "account.json"
    account.write_text(json.dumps({
        "type": "service_account", "project_id": "factory-test", "private_key_id": "k1",
        "private_key": gcp_key[0].read_text(), "client_email": "builder@factory-test.iam.gserviceaccount.com",
        "client_id": "1", "token_uri": f"{gce_url}/token"}))
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_url)
    monkeypatch.setenv("GCE_METADATA_HOST", "127.0.0.1:9")
    monkeypatch.setenv("GCE_METADATA_IP", "127.0.0.1:9")
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    return account
