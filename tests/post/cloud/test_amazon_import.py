"""amazon-import against moto's S3 server (bytes read back) and the EC2 VM Import contract stub."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cloud_servers import Chains, ec2_calls, s3_bucket, s3_client

from factory.artifact.exporters import ExportOptions, export
from factory.artifact.model import Artifact, Firmware, Hardware
from factory.errors import FactoryError
from factory.post import PostContext, run_chains
from factory.post.cloud.s3upload import MIB, upload


def test_import_image_renames_tags_shares_and_copies_to_regions_and_records_the_amis(
        aws_env: dict[str, str], moto_url: str, ec2_url: str, artifact: Artifact, ctx: PostContext,
        chains: Chains, tmp_path: Path) -> None:
    s3 = s3_bucket(moto_url, "images-e2e")
    body = '''
      post-processors {
        post-processor "amazon-import" {
          s3_bucket_name = "images-e2e"
          s3_key_name    = "imports/{{.BuildName}}.{{.Format}}"
          skip_clean     = true
          ami_name       = "debian-factory"
          ami_description = "built by factory"
          ami_regions    = ["eu-west-1"]
          tags           = { team = "images", os = "debian" }
          ami_users      = ["123456789012"]
          ami_groups     = ["all"]
          ami_org_arns   = ["arn:aws:organizations::123456789012:organization/o-abc"]
          upload_part_size = "5M"
        }
        post-processor "manifest" { output = "manifest.json" }
      }'''
    # The upload is the disk as a streamOptimized VMDK, byte for byte what the exporter writes.
    expected = export(artifact.files[0], "vmdk", tmp_path / "expected" / "cloud.vmdk", hardware=artifact.hardware,
                      options=ExportOptions(name="cloud"))[0]
    out = run_chains(chains(body), artifact, ctx)
    got = s3.get_object(Bucket="images-e2e", Key="imports/cloud.vmdk")["Body"].read()
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(expected.read_bytes()).hexdigest()
    (imp,) = ec2_calls(ec2_url, "ImportImage")
    assert imp["params"]["DiskContainer.1.Format"] == "VMDK"
    assert imp["params"]["DiskContainer.1.UserBucket.S3Key"] == "imports/cloud.vmdk"
    assert imp["params"]["BootMode"] == "legacy-bios" and imp["params"]["Architecture"] == "x86_64"
    copies = ec2_calls(ec2_url, "CopyImage")
    assert [(c["region"], c["params"]["Name"]) for c in copies] == [("us-east-1", "debian-factory"),
                                                                     ("eu-west-1", "debian-factory")]
    assert len(ec2_calls(ec2_url, "DeregisterImage")) == 1   # the intermediate import-ami-... of the rename
    tags = ec2_calls(ec2_url, "CreateTags")
    assert {c["region"] for c in tags} == {"us-east-1", "eu-west-1"}
    assert {tags[0]["params"]["Tag.1.Key"], tags[0]["params"]["Tag.2.Key"]} == {"team", "os"}
    assert tags[0]["params"]["ResourceId.2"].startswith("snap-")
    shares = [c["params"] for c in ec2_calls(ec2_url, "ModifyImageAttribute") if "LaunchPermission.Add.1.UserId" in
              c["params"]]
    assert len(shares) == 2 and shares[0]["LaunchPermission.Add.2.Group"] == "all"
    assert shares[0]["LaunchPermission.Add.3.OrganizationArn"].endswith("o-abc")
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    amis = dict(pair.split(":") for pair in manifest["builds"][0]["artifact_id"].split(","))
    assert set(amis) == {"eu-west-1", "us-east-1"} and all(a.startswith("ami-") for a in amis.values())
    assert out[-1].artifact_id == manifest["builds"][0]["artifact_id"]
    assert not artifact.files[0].exists()   # Packer's default: the imported input is not kept


def test_import_snapshot_registers_an_uefi_ami_and_cleans_the_object(
        aws_env: dict[str, str], moto_url: str, ec2_url: str, artifact: Artifact, ctx: PostContext,
        chains: Chains, monkeypatch: pytest.MonkeyPatch) -> None:
    s3 = s3_bucket(moto_url, "images-snap")
    monkeypatch.delenv("AWS_ENDPOINT_URL_EC2")    # the option replaces the SDK setting
    efi = Artifact(artifact.builder_id, artifact.build_name, "qemu", artifact.files, disk=artifact.disk,
                   hardware=Hardware(firmware=Firmware.EFI))
    body = f'''
      post-processor "amazon-import" {{
        s3_bucket_name      = "images-snap"
        s3_key_name         = "snap.raw"
        format              = "raw"
        import_method       = "import-snapshot"
        custom_endpoint_ec2 = "{ec2_url}"
        ami_name            = "snap-ami"
        imds_support        = "v2.0"
        keep_input_artifact = true
      }}'''
    (out,) = [a for a in run_chains(chains(body), efi, ctx) if a.builder_id.endswith("amazon-import")]
    (reg,) = ec2_calls(ec2_url, "RegisterImage")
    snaps = ec2_calls(ec2_url, "ImportSnapshot")
    assert snaps[-1]["params"]["DiskContainer.Format"] == "RAW"
    p = reg["params"]
    assert (p["Name"], p["BootMode"], p["EnaSupport"], p["ImdsSupport"]) == ("snap-ami", "uefi", "true", "v2.0")
    assert p["BlockDeviceMapping.1.Ebs.SnapshotId"].startswith("snap-")
    assert out.artifact_id.startswith("us-east-1:ami-") and out.state["region"] == reg["region"] == "us-east-1"
    assert s3.list_objects_v2(Bucket="images-snap").get("KeyCount") == 0   # skip_clean = false
    assert artifact.files[0].exists()


def test_failed_import_task_shows_the_status_message_verbatim(
        aws_env: dict[str, str], moto_url: str, tmp_path: Path, ctx: PostContext, chains: Chains) -> None:
    s3_bucket(moto_url, "images-bad")
    junk = tmp_path / "not-really.vmdk"
    junk.write_bytes(b"this is no disk" * 1000)
    art = Artifact("packer.post-processor.artifice", "debian.qemu.cloud", "qemu", (junk,))
    body = 'post-processor "amazon-import" {\n s3_bucket_name = "images-bad"\n}'
    with pytest.raises(FactoryError) as exc:
        run_chains(chains(body), art, ctx)
    assert "failed with status message: ClientError: Disk validation failed [Unsupported VMDK File Format]" \
        in exc.value.message


def test_missing_bucket_is_named(aws_env: dict[str, str], artifact: Artifact, ctx: PostContext,
                                 chains: Chains) -> None:
    with pytest.raises(FactoryError) as exc:
        run_chains(chains('post-processor "amazon-import" {\n s3_bucket_name = "no-such-bucket"\n}'), artifact, ctx)
    assert "the S3 bucket does not exist" in exc.value.message and "s3://no-such-bucket/" in exc.value.message
    assert "s3_bucket_name" in (exc.value.hint or "")


def test_no_credentials_names_where_they_were_looked_for(aws_env: dict[str, str], artifact: Artifact,
                                                         ctx: PostContext, chains: Chains,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(FactoryError) as exc:
        run_chains(chains('post-processor "amazon-import" {\n s3_bucket_name = "x"\n}'), artifact, ctx)
    assert "no AWS credentials found" in exc.value.message
    hint = exc.value.hint or ""
    assert "AWS_ACCESS_KEY_ID" in hint and aws_env["AWS_SHARED_CREDENTIALS_FILE"] in hint and "'default'" in hint


def test_rejected_credentials_name_their_source(aws_env: dict[str, str], moto_url: str, artifact: Artifact,
                                                ctx: PostContext, chains: Chains,
                                                monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """moto's S3 takes any key; the EC2 stub checks the SigV4 signature and refuses a key it does not know."""
    s3 = s3_bucket(moto_url, "images-creds")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    Path(aws_env["AWS_SHARED_CREDENTIALS_FILE"]).write_text(
        "[build]\naws_access_key_id = AKIAUNKNOWN000000000\naws_secret_access_key = wrong\n")
    body = 'post-processor "amazon-import" {\n s3_bucket_name = "images-creds"\n profile = "build"\n}'
    with pytest.raises(FactoryError) as exc:
        run_chains(chains(body), artifact, ctx)
    msg = exc.value.message
    assert "starting ImportImage: AWS rejected the credentials from the shared credentials file" in msg
    assert aws_env["AWS_SHARED_CREDENTIALS_FILE"] in msg and "(profile 'build'): AuthFailure" in msg
    assert s3.list_objects_v2(Bucket="images-creds").get("KeyCount") == 0   # the upload was cleaned up


_UPLOADER = """
import sys, boto3
from pathlib import Path
from factory.post.cloud.s3upload import upload
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1")
upload(s3, Path(sys.argv[2]), "images-resume", "big.raw", part_size=5 << 20, concurrency=1, emit=print)
"""


def _random_file(path: Path, mib: int) -> str:
    digest = hashlib.sha256()
    with open(path, "wb") as fh:
        for _ in range(mib):
            block = os.urandom(MIB)
            digest.update(block)
            fh.write(block)
    return digest.hexdigest()


def test_upload_killed_halfway_resumes_without_resending_parts(aws_env: dict[str, str], moto_url: str,
                                                              tmp_path: Path) -> None:
    s3 = s3_bucket(moto_url, "images-resume")
    src = tmp_path / "big.raw"
    sha = _random_file(src, 100)                    # 20 parts of 5 MiB
    proc = subprocess.Popen([sys.executable, "-c", _UPLOADER, moto_url, str(src)], env=os.environ.copy(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def listed() -> list[dict[str, Any]]:
        ups = s3.list_multipart_uploads(Bucket="images-resume").get("Uploads", [])
        return list(s3.list_parts(Bucket="images-resume", Key="big.raw", UploadId=ups[0]["UploadId"])
                    .get("Parts", [])) if ups else []

    deadline = time.monotonic() + 120
    while len(listed()) < 4 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # moto may still store the part whose body it had whole when the uploader died: count once the list is still,
    # for 2 s (moto serves each request in a thread of its own; on a loaded host one still storing a 5 MiB part
    # can take longer than the 0.5 s between two listings).
    parts, settled, give_up = listed(), time.monotonic(), time.monotonic() + 30
    while time.monotonic() - settled < 2 and time.monotonic() < give_up:
        time.sleep(0.25)
        if (again := listed()) != parts:
            parts, settled = again, time.monotonic()
    # A part cut off by the kill may be stored short; only parts whose ETag is the MD5 of the local bytes count.
    data = src.read_bytes()
    present = sum(p["ETag"].strip('"') == hashlib.md5(data[(p["PartNumber"] - 1) * 5 * MIB:][:5 * MIB]).hexdigest()
                  for p in parts)
    assert 3 <= present < 20, present
    lines: list[str] = []
    stats = upload(s3_client(moto_url), src, "images-resume", "big.raw", part_size=5 * MIB, emit=lines.append)
    assert stats.resumed_parts == present and stats.sent_parts == 20 - present
    assert stats.sent_bytes == (20 - present) * 5 * MIB
    assert any(f"{present} part(s) already uploaded" in line for line in lines)
    got = s3.get_object(Bucket="images-resume", Key="big.raw")["Body"].read()
    assert hashlib.sha256(got).hexdigest() == sha
    assert not s3.list_multipart_uploads(Bucket="images-resume").get("Uploads")


def test_failed_upload_is_aborted_leaving_no_parts(aws_env: dict[str, str], moto_url: str, tmp_path: Path) -> None:
    """The input shrinks right after the upload was planned (the window CI once hit, where a second stat made a
    negative part length and a bare EINVAL): factory stops at the first short part with an error naming the file,
    and aborts the multipart upload on the real (moto) S3."""
    s3 = s3_bucket(moto_url, "images-abort")
    src = tmp_path / "shrinks.raw"
    _random_file(src, 60)
    client = s3_client(moto_url)
    create = client.create_multipart_upload

    def create_then_shrink(**kwargs: Any) -> Any:
        created = create(**kwargs)
        os.truncate(src, 7 * MIB)
        return created

    client.create_multipart_upload = create_then_shrink
    errors: list[BaseException] = []
    try:
        upload(client, src, "images-abort", "k", part_size=5 * MIB, concurrency=1, emit=print)
    except Exception as exc:
        errors.append(exc)
    assert len(errors) == 1 and isinstance(errors[0], FactoryError), errors
    assert f"{src} changed while it was read" in errors[0].message and "it is 7340032 bytes now" in errors[0].message
    assert not s3.list_multipart_uploads(Bucket="images-abort").get("Uploads")
    assert s3.list_objects_v2(Bucket="images-abort").get("KeyCount") == 0
