"""amazon-import's options, each proved where it lands: on moto's S3 server (object metadata, the requests its
recorder saw), moto's STS (the role sessions it issued) and the EC2 VM Import contract stub (the documented
parameters of each call, and the access key that signed it)."""

from __future__ import annotations

import dataclasses
import json
import sys
import urllib.request
import warnings
from pathlib import Path
from typing import Any

import boto3
import pytest
from cloud_servers import (
    AKID,
    HERE,
    PROFILE_AKID,
    PROFILE_SECRET,
    SECRET,
    Chains,
    ec2_calls,
    free_port,
    moto_recording,
    s3_bucket,
    server,
)

from factory.artifact.model import Artifact
from factory.errors import FactoryError
from factory.post import PostContext, run_chains


def _import(chains: Chains, body: str, artifact: Artifact, ctx: PostContext) -> Artifact:
    (out,) = [a for a in run_chains(chains(body), artifact, ctx) if a.builder_id.endswith("amazon-import")]
    return out


def _run(chains: Chains, body: str, artifact: Artifact, ctx: PostContext,
         ec2_url: str) -> tuple[Artifact, list[dict[str, Any]]]:
    """Import; the result and the EC2 calls the import made."""
    before = len(ec2_calls(ec2_url))
    out = _import(chains, body, artifact, ctx)
    return out, ec2_calls(ec2_url)[before:]


def _of(calls: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    return [c for c in calls if c["action"] == action]


def _without_key_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY: the credentials must come from where the test says."""
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")


def _sts_sessions(moto_url: str) -> list[dict[str, Any]]:
    """The role sessions moto's STS issued (its state API)."""
    with urllib.request.urlopen(f"{moto_url}/moto-api/data.json") as resp:
        return list(json.load(resp)["sts"]["AssumedRole"])


def test_assume_role_credentials_sign_every_s3_and_ec2_call(aws_env: dict[str, str], moto_url: str, ec2_url: str,
                                                            artifact: Artifact, ctx: PostContext,
                                                            chains: Chains) -> None:
    s3_bucket(moto_url, "images-role")
    body = '''post-processor "amazon-import" {
      s3_bucket_name = "images-role"
      s3_key_name    = "role.vmdk"
      assume_role    = { role_arn = "arn:aws:iam::123456789012:role/vmimport-builder",
                         session_name = "factory-ci", external_id = "ext-42", duration_seconds = "900" }
    }'''
    moto_recording(moto_url, "start")
    try:
        _, ec2 = _run(chains, body, artifact, ctx, ec2_url)
    finally:
        moto_recording(moto_url, "stop")
    (role,) = [r for r in _sts_sessions(moto_url) if r["session_name"] == "factory-ci"]
    assert (role["role_arn"], role["external_id"]) == ("arn:aws:iam::123456789012:role/vmimport-builder", "ext-42")
    recorded = moto_recording(moto_url, "download")
    (assume,) = [r for r in recorded if "Action=AssumeRole" in (r.get("body") or "")]
    assert f"Credential={AKID}/" in assume["headers"]["Authorization"]     # the base credentials ask for the role
    # factory's S3 requests (the EC2 stub's own reads of the object sign with its key, "stub")
    s3 = [r for r in recorded if "/images-role" in r["url"] and "Credential=stub/" not in r["headers"]["Authorization"]]
    assert {r["method"] for r in s3} >= {"POST", "PUT", "DELETE"}   # create/complete, parts, clean-up
    for r in s3:
        assert f"Credential={role['access_key_id']}/" in r["headers"]["Authorization"], r["url"]
        assert r["headers"]["X-Amz-Security-Token"] == role["session_token"]
    assert {c["action"] for c in ec2} >= {"ImportImage", "DescribeImportImageTasks"}
    assert all(c["akid"] == role["access_key_id"] and c["session_token"] for c in ec2)


def test_session_token_option_signs_the_calls(aws_env: dict[str, str], moto_url: str, ec2_url: str,
                                              artifact: Artifact, ctx: PostContext, chains: Chains,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    s3_bucket(moto_url, "images-token")
    creds = boto3.client("sts", endpoint_url=moto_url, region_name="us-east-1").assume_role(
        RoleArn="arn:aws:iam::123456789012:role/ci", RoleSessionName="token-option")["Credentials"]
    _without_key_env(monkeypatch)
    body = f'''post-processor "amazon-import" {{
      s3_bucket_name = "images-token"
      access_key     = "{creds['AccessKeyId']}"
      secret_key     = "{creds['SecretAccessKey']}"
      token          = "{creds['SessionToken']}"
      import_method  = "import-snapshot"
    }}'''
    _, ec2 = _run(chains, body, artifact, ctx, ec2_url)
    assert ec2 and all(c["akid"] == creds["AccessKeyId"] and c["session_token"] for c in ec2)


def test_profile_of_a_named_shared_credentials_file_and_region(aws_env: dict[str, str], moto_url: str,
                                                                ec2_url: str, artifact: Artifact, ctx: PostContext,
                                                                chains: Chains, monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    """The key pair comes from [build] of the file the option names (AWS_SHARED_CREDENTIALS_FILE names an empty
    one); the EC2 stub knows that key and records it."""
    s3_bucket(moto_url, "images-profile")
    _without_key_env(monkeypatch)
    creds = tmp_path / "team-credentials"
    creds.write_text(f"[build]\naws_access_key_id = {PROFILE_AKID}\naws_secret_access_key = {PROFILE_SECRET}\n")
    body = f'''post-processor "amazon-import" {{
      s3_bucket_name          = "images-profile"
      profile                 = "build"
      shared_credentials_file = "{creds}"
      region                  = "eu-west-1"
    }}'''
    out, ec2 = _run(chains, body, artifact, ctx, ec2_url)
    assert ec2 and all(c["akid"] == PROFILE_AKID and not c["session_token"] for c in ec2)
    assert {c["region"] for c in ec2} == {"eu-west-1"}
    assert out.artifact_id.startswith("eu-west-1:ami-")


@pytest.mark.parametrize(("encryption", "key"), [("AES256", None),
                                                 ("aws:kms", "arn:aws:kms:us-east-1:123456789012:key/factory")])
def test_s3_encryption_is_set_on_the_uploaded_object(aws_env: dict[str, str], moto_url: str, artifact: Artifact,
                                                     ctx: PostContext, chains: Chains, encryption: str,
                                                     key: str | None) -> None:
    bucket = "images-sse-" + encryption.replace(":", "").lower()
    s3 = s3_bucket(moto_url, bucket)
    body = f'''post-processor "amazon-import" {{
      s3_bucket_name    = "{bucket}"
      s3_key_name       = "kept.vmdk"
      s3_encryption     = "{encryption}"
      {f's3_encryption_key = "{key}"' if key else ""}
      skip_clean        = true
      upload_concurrency = 2
    }}'''
    _import(chains, body, artifact, ctx)
    head = s3.head_object(Bucket=bucket, Key="kept.vmdk")
    assert head["ServerSideEncryption"] == encryption
    assert head.get("SSEKMSKeyId") == key


def test_import_image_sends_encryption_license_platform_boot_mode_and_role(
        aws_env: dict[str, str], moto_url: str, ec2_url: str, artifact: Artifact, ctx: PostContext,
        chains: Chains) -> None:
    s3_bucket(moto_url, "images-params")
    body = '''post-processor "amazon-import" {
      s3_bucket_name = "images-params"
      ami_encrypt    = true
      ami_kms_key    = "alias/factory-imports"
      license_type   = "BYOL"
      platform       = "linux"
      boot_mode      = "uefi"
      architecture   = "arm64"
      role_name      = "factory-vmimport"
      ami_name       = "encrypted"
      ami_ou_arns    = ["arn:aws:organizations::123456789012:ou/o-abc/ou-xyz"]
    }'''
    _, ec2 = _run(chains, body, artifact, ctx, ec2_url)
    (imp,) = _of(ec2, "ImportImage")
    p = imp["params"]
    assert (p["Encrypted"], p["KmsKeyId"], p["LicenseType"], p["Platform"]) == \
        ("true", "alias/factory-imports", "BYOL", "linux")
    assert (p["BootMode"], p["Architecture"], p["RoleName"]) == ("uefi", "arm64", "factory-vmimport")
    (copy,) = _of(ec2, "CopyImage")     # the rename keeps the AMI encrypted with the same key
    assert (copy["params"]["Encrypted"], copy["params"]["KmsKeyId"]) == ("true", "alias/factory-imports")
    (share,) = _of(ec2, "ModifyImageAttribute")
    assert share["params"]["LaunchPermission.Add.1.OrganizationalUnitArn"].endswith("ou-xyz")


def test_import_snapshot_registers_with_architecture_device_and_ena(
        aws_env: dict[str, str], moto_url: str, ec2_url: str, artifact: Artifact, ctx: PostContext,
        chains: Chains) -> None:
    s3_bucket(moto_url, "images-register")
    body = '''post-processor "amazon-import" {
      s3_bucket_name   = "images-register"
      import_method    = "import-snapshot"
      ami_encrypt      = true
      architecture     = "arm64"
      root_device_name = "/dev/sda1"
      ena_support      = false
      ami_description  = "arm64 snapshot import"
    }'''
    _, ec2 = _run(chains, body, artifact, ctx, ec2_url)
    (snap,) = _of(ec2, "ImportSnapshot")
    assert snap["params"]["Encrypted"] == "true" and "KmsKeyId" not in snap["params"]
    (reg,) = _of(ec2, "RegisterImage")
    p = reg["params"]
    assert (p["Architecture"], p["BootMode"], p["EnaSupport"]) == ("arm64", "uefi", "false")  # arm64 boots uefi
    assert p["RootDeviceName"] == p["BlockDeviceMapping.1.DeviceName"] == "/dev/sda1"
    assert p["Description"] == "arm64 snapshot import"


def test_aws_polling_gives_up_after_max_attempts(aws_env: dict[str, str], moto_url: str, artifact: Artifact,
                                                 ctx: PostContext, chains: Chains,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    s3_bucket(moto_url, "images-poll")
    monkeypatch.delenv("AWS_POLL_DELAY_SECONDS")
    body = '''post-processor "amazon-import" {
      s3_bucket_name = "images-poll"
      aws_polling    = { delay_seconds = "0.01", max_attempts = "1" }
    }'''
    with pytest.raises(FactoryError) as exc:
        _import(chains, body, artifact, ctx)
    assert "did not complete in 1 polls" in exc.value.message and "max_attempts" in (exc.value.hint or "")


def test_insecure_skip_tls_verify_accepts_a_self_signed_endpoint(aws_env: dict[str, str], artifact: Artifact,
                                                                 ctx: PostContext, chains: Chains,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's server with its own self-signed certificate (`--ssl`), and an EC2 stub reading from it."""
    port = free_port()
    with server([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port), "--ssl"], "moto TLS",
                port=port):
        https = f"https://127.0.0.1:{port}"
        with server([sys.executable, str(HERE / "ec2_contract_stub.py"), "--s3-endpoint", https, "--key",
                     f"{AKID}:{SECRET}"], "EC2 contract stub", port_line=r"PORT (\d+)") as ec2_port:
            monkeypatch.setenv("AWS_ENDPOINT_URL_S3", https)
            monkeypatch.setenv("AWS_ENDPOINT_URL_EC2", f"http://127.0.0.1:{ec2_port}")
            with warnings.catch_warnings():  # the test's own unverified request: not what is under test
                warnings.simplefilter("ignore")
                boto3.client("s3", region_name="us-east-1", verify=False).create_bucket(Bucket="tls")
            body = 'post-processor "amazon-import" {\n s3_bucket_name = "tls"\n keep_input_artifact = true\n}'
            with pytest.raises(FactoryError) as exc:
                _import(chains, body, artifact, ctx)
            assert "certificate verify failed" in exc.value.message
            said: list[str] = []
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("default")
                out = _import(chains, body.replace("}", " insecure_skip_tls_verify = true\n}"), artifact,
                              dataclasses.replace(ctx, emit=said.append))
            assert out.artifact_id.startswith("us-east-1:ami-")
            assert ec2_calls(f"http://127.0.0.1:{ec2_port}", "ImportImage")
            # One notice of factory's, not urllib3's InsecureRequestWarning on stderr for every endpoint.
            assert not [w for w in caught if "Unverified HTTPS" in str(w.message)]
            assert any("not verified (insecure_skip_tls_verify)" in line for line in said)


def test_uefi_preferred_is_refused_for_import_image_before_any_upload(chains: Chains) -> None:
    with pytest.raises(FactoryError) as exc:
        chains('post-processor "amazon-import" {\n s3_bucket_name = "b"\n boot_mode = "uefi-preferred"\n}')
    assert "uefi-preferred" in exc.value.message and "import-snapshot" in (exc.value.hint or "")
