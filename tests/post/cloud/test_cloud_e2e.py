"""`factory build` end to end: a `null` source, `artifice` naming an existing qcow2, and one chain per cloud
(amazon-import, azure-import, googlecompute-import), each followed by `manifest`; all against the local servers
(moto, Azurite, gcp-storage-emulator and the contract stubs), configured only by the SDKs' standard settings
plus the endpoint options."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3
from cloud_servers import AZ_ACCOUNT, AZ_KEY

TEMPLATE = """
source "null" "import" {{
  communicator = "none"
}}
build {{
  sources = ["source.null.import"]
  post-processors {{
    post-processor "artifice" {{ files = ["disk.qcow2"] }}
    post-processor "amazon-import" {{
      s3_bucket_name      = "e2e"
      import_method       = "import-snapshot"
      ami_name            = "e2e"
      keep_input_artifact = true
    }}
    post-processor "manifest" {{ output = "manifest.json" }}
  }}
  post-processors {{
    post-processor "artifice" {{ files = ["disk.qcow2"] }}
    post-processor "azure-import" {{
      resource_group            = "rg"
      location                  = "westeurope"
      storage_account           = "{account}"
      blob_endpoint             = "{azurite}"
      resource_manager_endpoint = "{arm}"
      image_name                = "e2e"
      keep_input_artifact       = true
    }}
    post-processor "manifest" {{ output = "manifest.json" }}
  }}
  post-processors {{
    post-processor "artifice" {{ files = ["disk.qcow2"] }}
    post-processor "googlecompute-import" {{
      project_id          = "factory-test"
      account_file        = "{gcp_account}"
      bucket              = "images"
      image_name          = "e2e"
      compute_endpoint    = "{gce}"
      keep_input_artifact = true
    }}
    post-processor "manifest" {{ output = "manifest.json" }}
  }}
}}
"""


def test_null_source_artifice_then_all_three_imports_recorded_in_the_manifest(
        aws_env: dict[str, str], moto_url: str, azure_env: dict[str, str], azurite_url: str, arm_url: str,
        gcp_account: Path, gce_url: str, tmp_path: Path) -> None:
    boto3.client("s3", endpoint_url=moto_url, region_name="us-east-1").create_bucket(Bucket="e2e")
    from azure.storage.blob import BlobServiceClient

    blobs = BlobServiceClient(azurite_url, credential={"account_name": AZ_ACCOUNT, "account_key": AZ_KEY})
    if not blobs.get_container_client("images").exists():
        blobs.create_container("images")
    disk = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M"], check=True)
    subprocess.run(["qemu-io", "-c", "write -P 0x5a 1M 1M", str(disk)], check=True, capture_output=True)
    (tmp_path / "t.pkr.hcl").write_text(TEMPLATE.format(account=AZ_ACCOUNT, azurite=azurite_url, arm=arm_url,
                                                        gcp_account=gcp_account, gce=gce_url))
    env = {**os.environ, "AZURE_STORAGE_KEY": AZ_KEY, "COLUMNS": "300"}
    proc = subprocess.run([sys.executable, "-m", "factory", "build", "t.pkr.hcl"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    ids = [b["artifact_id"] for b in json.loads((tmp_path / "manifest.json").read_text())["builds"]]
    assert len(ids) == 3
    assert ids[0].startswith("us-east-1:ami-")
    assert ids[1] == f"/subscriptions/{azure_env['AZURE_SUBSCRIPTION_ID']}/resourceGroups/rg/providers/" \
                     "Microsoft.Compute/images/e2e"
    assert ids[2] == "https://www.googleapis.com/compute/v1/projects/factory-test/global/images/e2e"
    assert f"us-east-1: {ids[0].split(':')[1]}" in out          # each import prints its result
    assert f"Azure image: {ids[1]}" in out and f"Created GCE image e2e: {ids[2]}" in out
    assert disk.exists()
