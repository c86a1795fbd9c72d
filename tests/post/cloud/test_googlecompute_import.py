"""googlecompute-import against gcp-storage-emulator (resumable upload read back) and the GCE images contract
stub (images.insert, operation polling, OAuth token exchange)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from cloud_servers import Chains, stub_calls

from factory.artifact.exporters import export
from factory.artifact.model import Artifact, Firmware, Hardware
from factory.errors import FactoryError
from factory.post import PostContext, run_chains


def _object(gcs_url: str, bucket: str, name: str) -> bytes | None:
    try:
        with urllib.request.urlopen(f"{gcs_url}/storage/v1/b/{bucket}/o/{name}?alt=media") as resp:
            return bytes(resp.read())
    except OSError:
        return None


def _block(account: Path, gce_url: str, extra: str = "") -> str:
    return f'''
      post-processors {{
        post-processor "googlecompute-import" {{
          project_id       = "factory-test"
          account_file     = "{account}"
          bucket           = "images"
          image_name       = "debian-factory"
          compute_endpoint = "{gce_url}"
          upload_chunk_size = "1M"
          {extra}
        }}
        post-processor "manifest" {{ output = "manifest.json" }}
      }}'''


def test_tarball_resumable_upload_then_image_with_features_and_labels(
        gcp_account: Path, gcs_url: str, gce_url: str, artifact: Artifact, ctx: PostContext, chains: Chains,
        tmp_path: Path) -> None:
    raw = tmp_path / "random.raw"        # incompressible data, so the tarball needs several upload requests
    with open(raw, "wb") as fh:
        fh.truncate(64 << 20)
        fh.seek(1 << 20)
        fh.write(os.urandom(3 << 20))
    tarball = export(raw, "gce", tmp_path / "disk.tar.gz")[0]
    art = Artifact("factory.qemu", artifact.build_name, "qemu", (tarball,), hardware=Hardware(firmware=Firmware.EFI))
    extra = '''gcs_object_name = "uploads/{{.BuildName}}.tar.gz"
          skip_clean = true
          keep_input_artifact = true
          image_family = "debian-12"
          image_description = "built by factory"
          image_labels = { team = "images" }
          image_guest_os_features = ["GVNIC"]
          image_storage_locations = ["eu"]'''
    out = run_chains(chains(_block(gcp_account, gce_url, extra)), art, ctx)
    got = _object(gcs_url, "images", "uploads%2Fcloud.tar.gz")
    assert got is not None and hashlib.sha256(got).digest() == hashlib.sha256(tarball.read_bytes()).digest()
    assert len(got) > 3 << 20          # four resumable requests of 1 MiB
    (call,) = stub_calls(gce_url)
    body = call["body"]
    assert body["rawDisk"]["source"] == "https://storage.googleapis.com/images/uploads/cloud.tar.gz"
    assert [f["type"] for f in body["guestOsFeatures"]] == ["GVNIC", "UEFI_COMPATIBLE"]
    assert (body["family"], body["labels"], body["storageLocations"]) == ("debian-12", {"team": "images"}, ["eu"])
    link = "https://www.googleapis.com/compute/v1/projects/factory-test/global/images/debian-factory"
    assert [a.artifact_id for a in out if a.builder_id.endswith("googlecompute-import")] == [link]
    assert json.loads((tmp_path / "manifest.json").read_text())["builds"][0]["artifact_id"] == link


def test_qcow2_build_is_packaged_and_the_object_cleaned(gcp_account: Path, gcs_url: str, gce_url: str,
                                                        artifact: Artifact, ctx: PostContext, chains: Chains) -> None:
    body = _block(gcp_account, gce_url, 'gcs_object_name = "clean.tar.gz"').replace('"debian-factory"', '"from-qcow2"')
    out = run_chains(chains(body), artifact, ctx)
    assert out[0].artifact_id.endswith("/global/images/from-qcow2")
    assert _object(gcs_url, "images", "clean.tar.gz") is None


def test_invalid_image_fails_with_the_operation_s_message(gcp_account: Path, gce_url: str, tmp_path: Path,
                                                         ctx: PostContext, chains: Chains) -> None:
    bogus = tmp_path / "bogus.tar.gz"
    bogus.write_bytes(b"\x1f\x8b" + b"not really gzip" * 10)
    art = Artifact("packer.post-processor.artifice", "debian.qemu.cloud", "qemu", (bogus,))
    with pytest.raises(FactoryError) as exc:
        run_chains(chains(_block(gcp_account, gce_url, 'gcs_object_name = "bogus.tar.gz"')), art, ctx)
    assert "creating image debian-factory failed: INVALID_IMAGE_FILE: The image file " \
           "https://storage.googleapis.com/images/bogus.tar.gz is not a gzip'd tar archive holding disk.raw." \
        in exc.value.message


def test_missing_bucket_is_named(gcp_account: Path, gce_url: str, artifact: Artifact, ctx: PostContext,
                                 chains: Chains) -> None:
    body = _block(gcp_account, gce_url).replace('bucket           = "images"', 'bucket = "no-such-bucket"')
    with pytest.raises(FactoryError) as exc:
        run_chains(chains(body), artifact, ctx)
    assert "the bucket 'no-such-bucket' does not exist" in exc.value.message


def test_key_the_token_endpoint_rejects_names_the_account_file(gcp_account: Path, gce_url: str, artifact: Artifact,
                                                               ctx: PostContext, chains: Chains,
                                                               tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(dict(json.loads(gcp_account.read_text()), private_key=other)))
    with pytest.raises(FactoryError) as exc:
        run_chains(chains(_block(forged, gce_url)), artifact, ctx)
    assert f"Google rejected the credentials from account_file {forged}" in exc.value.message
    assert "Invalid JWT Signature" in exc.value.message


def test_no_credentials_names_where_they_were_looked_for(gcp_account: Path, gce_url: str, artifact: Artifact,
                                                         ctx: PostContext, chains: Chains) -> None:
    body = _block(gcp_account, gce_url).replace(f'account_file     = "{gcp_account}"', "")
    with pytest.raises(FactoryError) as exc:
        run_chains(chains(body), artifact, ctx)
    assert "no Google credentials found" in exc.value.message
    assert "GOOGLE_APPLICATION_CREDENTIALS" in (exc.value.hint or "")


_GCS_UPLOADER = """
import sys
from pathlib import Path
from google.auth.credentials import AnonymousCredentials
from google.auth.transport.requests import AuthorizedSession
from google.cloud import storage
from factory.post.cloud.gcsupload import resumable_upload
path, root = Path(sys.argv[1]), Path(sys.argv[2])
client = storage.Client(project="factory-test", credentials=AnonymousCredentials())
blob = client.bucket("images").blob("resume.tar.gz")
resumable_upload(blob, AuthorizedSession(AnonymousCredentials()), path, root, 256 << 10, "application/gzip", print)
"""


def test_resumable_upload_killed_halfway_sends_only_the_missing_bytes(gcp_account: Path, gcs_url: str,
                                                                      tmp_path: Path) -> None:
    """gcp-storage-emulator answers the session status query (`Content-Range: bytes */SIZE` -> 308 + Range) as
    GCS does; a second run asks it and sends the rest."""
    import requests
    from google.auth.credentials import AnonymousCredentials
    from google.auth.transport.requests import AuthorizedSession
    from google.cloud import storage  # type: ignore[attr-defined]

    from factory.post.cloud.gcsupload import resumable_upload, state_path

    src = tmp_path / "big.tar.gz"
    src.write_bytes(os.urandom(12 << 20))                  # 48 requests of 256 KiB
    size, root = src.stat().st_size, tmp_path / "root"
    state = state_path(root, "images", "resume.tar.gz")
    proc = subprocess.Popen([sys.executable, "-c", _GCS_UPLOADER, str(src), str(root)], env=os.environ.copy(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stored() -> int:
        try:
            url = json.loads(state.read_text())["url"]
        except (OSError, ValueError):
            return 0
        resp = requests.put(url, data=b"", headers={"Content-Range": f"bytes */{size}"}, timeout=10)
        match = re.fullmatch(r"bytes=0-(\d+)", resp.headers.get("Range", ""))
        return int(match.group(1)) + 1 if resp.status_code == 308 and match else 0

    deadline = time.monotonic() + 120
    while stored() < 2 << 20 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    present = stored()
    assert 2 << 20 <= present < size, present
    assert oct(state.stat().st_mode & 0o777) == "0o600"       # the session URI authorizes the upload
    lines: list[str] = []
    client = storage.Client(project="factory-test", credentials=AnonymousCredentials())
    stats = resumable_upload(client.bucket("images").blob("resume.tar.gz"), AuthorizedSession(AnonymousCredentials()),
                             src, root, 256 << 10, "application/gzip", lines.append)
    assert (stats.resumed_bytes, stats.sent_bytes) == (present, size - present)
    assert any(f"{present} of {size} bytes already there" in line for line in lines)
    got = _object(gcs_url, "images", "resume.tar.gz")
    assert got is not None and hashlib.sha256(got).digest() == hashlib.sha256(src.read_bytes()).digest()
    assert not state.exists() and not state.parent.exists()      # nothing left behind once done


def test_impersonated_service_account_inserts_the_image_with_architecture_and_description(
        gcp_account: Path, gce_url: str, artifact: Artifact, ctx: PostContext, chains: Chains) -> None:
    extra = f'''impersonate_service_account = "importer@factory-test.iam.gserviceaccount.com"
          iam_endpoint       = "{gce_url}"
          image_architecture = "ARM64"
          image_description  = "impersonated import"
          gcs_object_name    = "arm.tar.gz"'''
    body = _block(gcp_account, gce_url, extra).replace('"debian-factory"', '"as-importer"')
    run_chains(chains(body), artifact, ctx)
    (call,) = [c for c in stub_calls(gce_url) if c["body"]["name"] == "as-importer"]
    assert call["principal"] == "importer@factory-test.iam.gserviceaccount.com"
    assert (call["body"]["architecture"], call["body"]["description"]) == ("ARM64", "impersonated import")
