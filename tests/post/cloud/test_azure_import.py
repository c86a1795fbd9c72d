"""azure-import against Azurite (page blobs read back) and the ARM compute-images contract stub."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from cloud_servers import AZ_ACCOUNT, AZ_KEY, Chains, stub_calls

from factory.artifact.exporters import export
from factory.artifact.model import Artifact, Firmware, Hardware
from factory.errors import FactoryError
from factory.post import PostContext, run_chains

RG = "images-rg"


def _container(azurite_url: str, name: str) -> Any:
    from azure.storage.blob import BlobServiceClient

    svc = BlobServiceClient(azurite_url, credential={"account_name": AZ_ACCOUNT, "account_key": AZ_KEY})
    container = svc.get_container_client(name)
    if not container.exists():
        container.create_container()
    return container


def _block(azurite_url: str, container: str, extra: str = "") -> str:
    return f'''
      post-processors {{
        post-processor "azure-import" {{
          resource_group      = "{RG}"
          location            = "westeurope"
          storage_account     = "{AZ_ACCOUNT}"
          storage_account_key = "{AZ_KEY}"
          blob_endpoint       = "{azurite_url}"
          container           = "{container}"
          blob_name           = "{{{{.BuildName}}}}.vhd"
          {extra}
        }}
        post-processor "manifest" {{ output = "manifest.json" }}
      }}'''


def test_fixed_vhd_uploaded_as_page_blob_without_zero_ranges_then_managed_image(
        azure_env: dict[str, str], azurite_url: str, arm_url: str, artifact: Artifact, ctx: PostContext,
        chains: Chains, tmp_path: Path) -> None:
    container = _container(azurite_url, "vhds")
    vhd = export(artifact.files[0], "vhd", tmp_path / "disk.vhd")[0]
    art = Artifact("factory.qemu", artifact.build_name, "qemu", (vhd,))
    arm = f'resource_manager_endpoint = "{arm_url}"\n image_name = "debian-factory"\n keep_input_artifact = true'
    out = run_chains(chains(_block(azurite_url, "vhds", arm)), art, ctx)
    blob = container.get_blob_client("cloud.vhd")
    assert blob.download_blob().readall() == vhd.read_bytes()
    # Only the chunks holding data were written: 1-3 MiB, 200 MiB, and the footer's chunk (of 257 MiB).
    written = sum(r.end + 1 - r.start for r in blob.list_page_ranges())
    assert 3 << 20 <= written <= 3 * 4 << 20
    (put,) = [c for c in stub_calls(arm_url) if c["path"].endswith("/images/debian-factory")]
    disk = put["body"]["properties"]["storageProfile"]["osDisk"]
    assert disk == {"osType": "Linux", "osState": "Generalized", "blobUri": blob.url}
    assert put["body"]["properties"]["hyperVGeneration"] == "V1"
    image_id = f"/subscriptions/{azure_env['AZURE_SUBSCRIPTION_ID']}/resourceGroups/{RG}/providers/" \
               "Microsoft.Compute/images/debian-factory"
    assert [a.artifact_id for a in out if a.builder_id.endswith("azure-import")] == [image_id]
    assert json.loads((tmp_path / "manifest.json").read_text())["builds"][0]["artifact_id"] == image_id


def test_gallery_version_from_a_qcow2_build_replicates_to_the_regions(
        azure_env: dict[str, str], azurite_url: str, arm_url: str, artifact: Artifact, ctx: PostContext,
        chains: Chains) -> None:
    container = _container(azurite_url, "gallery")
    extra = f'''resource_manager_endpoint = "{arm_url}"
          gallery_name = "factorygallery"
          gallery_image_name = "debian"
          gallery_image_version = "1.0.0"
          replication_regions = ["northeurope", "westeurope"]
          skip_clean = false'''
    out = run_chains(chains(_block(azurite_url, "gallery", extra)), artifact, ctx)
    (put,) = [c for c in stub_calls(arm_url) if "/versions/1.0.0" in c["path"]]
    props = put["body"]["properties"]
    assert [r["name"] for r in props["publishingProfile"]["targetRegions"]] == ["westeurope", "northeurope"]
    source = props["storageProfile"]["osDiskImage"]["source"]
    assert source["uri"].endswith("/gallery/cloud.vhd")
    assert source["storageAccountId"].endswith(f"/storageAccounts/{AZ_ACCOUNT}")
    assert out[-1].artifact_id.endswith("/galleries/factorygallery/images/debian/versions/1.0.0")
    assert not container.get_blob_client("cloud.vhd").exists()      # skip_clean = false


def test_missing_gallery_definition_shows_arm_s_message(azure_env: dict[str, str], azurite_url: str,
                                                        arm_url: str, artifact: Artifact, ctx: PostContext,
                                                        chains: Chains) -> None:
    _container(azurite_url, "nodef")
    extra = f'''resource_manager_endpoint = "{arm_url}"
          gallery_name = "factorygallery"
          gallery_image_name = "ubuntu"
          gallery_image_version = "1.0.0"'''
    with pytest.raises(FactoryError) as exc:
        run_chains(chains(_block(azurite_url, "nodef", extra)), artifact, ctx)
    assert "creating the image failed" in exc.value.message
    assert "'Microsoft.Compute/galleries/factorygallery/images/ubuntu' under resource group" in exc.value.message


def test_wrong_storage_key_names_its_source(azure_env: dict[str, str], azurite_url: str, artifact: Artifact,
                                           ctx: PostContext, chains: Chains) -> None:
    _container(azurite_url, "keys")
    body = _block(azurite_url, "keys", "skip_image = true").replace(AZ_KEY, "d3JvbmcK" * 11)
    with pytest.raises(FactoryError) as exc:
        run_chains(chains(body), artifact, ctx)
    assert "Azure Storage rejected the credentials from the storage_account_key option" in exc.value.message
    assert "AZURE_STORAGE_CONNECTION_STRING" in (exc.value.hint or "")


def test_missing_container_is_named(azure_env: dict[str, str], azurite_url: str, artifact: Artifact,
                                    ctx: PostContext, chains: Chains) -> None:
    with pytest.raises(FactoryError) as exc:
        run_chains(chains(_block(azurite_url, "no-such-container", "skip_image = true")), artifact, ctx)
    assert "container 'no-such-container' does not exist" in exc.value.message


def test_options_reach_arm_windows_v2_image_in_another_subscription(
        azure_env: dict[str, str], azurite_url: str, arm_url: str, artifact: Artifact, ctx: PostContext,
        chains: Chains) -> None:
    _container(azurite_url, "win")
    sub = "00000000-0000-0000-0000-0000000000aa"
    extra = f'''resource_manager_endpoint = "{arm_url}"
          subscription_id    = "{sub}"
          image_name         = "windows-factory"
          os_type            = "Windows"
          hyper_v_generation = "V2"
          upload_concurrency = 1
          location           = "northeurope"'''
    out = run_chains(chains(_block(azurite_url, "win", extra).replace('location            = "westeurope"', "")),
                     artifact, ctx)
    (put,) = [c for c in stub_calls(arm_url) if c["path"].endswith("/images/windows-factory")]
    assert put["path"].startswith(f"/subscriptions/{sub}/resourceGroups/{RG}/")     # the option, not the env
    props = put["body"]["properties"]
    assert (put["body"]["location"], props["hyperVGeneration"], props["storageProfile"]["osDisk"]["osType"]) == \
        ("northeurope", "V2", "Windows")
    assert out[0].artifact_id == put["path"]


def test_efi_build_makes_a_v2_image(azure_env: dict[str, str], azurite_url: str, arm_url: str, artifact: Artifact,
                                    ctx: PostContext, chains: Chains) -> None:
    _container(azurite_url, "efi")
    efi = Artifact(artifact.builder_id, artifact.build_name, "qemu", artifact.files, disk=artifact.disk,
                   hardware=Hardware(firmware=Firmware.EFI))
    extra = f'resource_manager_endpoint = "{arm_url}"\n image_name = "efi-factory"'
    run_chains(chains(_block(azurite_url, "efi", extra)), efi, ctx)
    (put,) = [c for c in stub_calls(arm_url) if c["path"].endswith("/images/efi-factory")]
    assert put["body"]["properties"]["hyperVGeneration"] == "V2"


def test_gallery_in_its_own_resource_group(azure_env: dict[str, str], azurite_url: str, arm_url: str,
                                           artifact: Artifact, ctx: PostContext, chains: Chains) -> None:
    _container(azurite_url, "galrg")
    extra = f'''resource_manager_endpoint = "{arm_url}"
          gallery_name           = "factorygallery"
          gallery_resource_group = "galleries-rg"
          gallery_image_name     = "debian"
          gallery_image_version  = "2.0.0"'''
    run_chains(chains(_block(azurite_url, "galrg", extra)), artifact, ctx)
    (put,) = [c for c in stub_calls(arm_url) if "/versions/2.0.0" in c["path"]]
    assert "/resourceGroups/galleries-rg/providers/Microsoft.Compute/galleries/factorygallery/" in put["path"]
    # the storage account stays in resource_group
    source = put["body"]["properties"]["storageProfile"]["osDiskImage"]["source"]
    assert f"/resourceGroups/{RG}/providers/Microsoft.Storage/" in source["storageAccountId"]


def test_image_operation_that_ends_failed_shows_arm_s_message_verbatim(
        azure_env: dict[str, str], azurite_url: str, arm_url: str, artifact: Artifact, ctx: PostContext,
        chains: Chains) -> None:
    _container(azurite_url, "failimg")
    extra = f'resource_manager_endpoint = "{arm_url}"\n image_name = "nowhere"'
    body = _block(azurite_url, "failimg", extra).replace('"westeurope"', '"marsnorth"')
    with pytest.raises(FactoryError) as exc:
        run_chains(chains(body), artifact, ctx)
    assert "creating the image failed" in exc.value.message
    assert ("The provided location 'marsnorth' is not available for resource type 'Microsoft.Compute/images'. "
            "List of available regions for the resource type is 'eastus,northeurope,westeurope'.") \
        in exc.value.message


def test_gallery_version_whose_replication_fails_shows_arm_s_message_verbatim(
        azure_env: dict[str, str], azurite_url: str, arm_url: str, artifact: Artifact, ctx: PostContext,
        chains: Chains) -> None:
    _container(azurite_url, "failgal")
    extra = f'''resource_manager_endpoint = "{arm_url}"
          gallery_name          = "factorygallery"
          gallery_image_name    = "debian"
          gallery_image_version = "3.0.0"
          replication_regions   = ["eastus", "marsnorth"]'''
    with pytest.raises(FactoryError) as exc:
        run_chains(chains(_block(azurite_url, "failgal", extra)), artifact, ctx)
    assert "Replication failed in this region 'marsnorth'. The region is not one of " \
           "'eastus,northeurope,westeurope'." in exc.value.message


_PAGE_UPLOADER = """
import sys
from pathlib import Path
from azure.storage.blob import BlobClient
from factory.post.cloud.azure import upload_page_blob
url, account, key, path = sys.argv[1:]
blob = BlobClient(url, "resume", "big.vhd", credential={"account_name": account, "account_key": key})
upload_page_blob(blob, Path(path), 1, print)
"""


def test_page_blob_upload_killed_halfway_resumes_without_resending_chunks(azurite_url: str,
                                                                          tmp_path: Path) -> None:
    from factory.post.cloud.azure import PAGE_CHUNK, upload_page_blob

    container = _container(azurite_url, "resume")
    src = tmp_path / "big.vhd"
    src.write_bytes(os.urandom(24 * PAGE_CHUNK))          # 24 chunks of data, none of them zero
    blob = container.get_blob_client("big.vhd")
    proc = subprocess.Popen([sys.executable, "-c", _PAGE_UPLOADER, azurite_url, AZ_ACCOUNT, AZ_KEY, str(src)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def written() -> int:
        try:
            return sum(r.end + 1 - r.start for r in blob.list_page_ranges()) // PAGE_CHUNK
        except Exception:            # not created yet
            return 0

    deadline = time.monotonic() + 120
    while written() < 4 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    present, settled = written(), time.monotonic()
    while time.monotonic() - settled < 1.5:   # a page write already sent may still land at Azurite
        time.sleep(0.1)
        if (now := written()) != present:
            present, settled = now, time.monotonic()
    assert 4 <= present < 24, present
    lines: list[str] = []
    stats = upload_page_blob(blob, src, 2, lines.append)
    assert (stats.resumed_chunks, stats.sent_chunks) == (present, 24 - present)
    assert stats.sent_bytes == (24 - present) * PAGE_CHUNK
    assert any(f"{present} of 24 chunk(s) already there" in line for line in lines)
    assert blob.download_blob().readall() == src.read_bytes()
    # A new conversion of the same disk differs only in the VHD footer (time stamp, unique id): it resumes,
    # and the footer's chunk is sent again.
    with open(src, "r+b") as fh:
        fh.seek(-512, os.SEEK_END)
        fh.write(os.urandom(512))
    footer = upload_page_blob(blob, src, 2, lines.append)
    assert (footer.resumed_chunks, footer.sent_chunks) == (23, 1)
    assert blob.download_blob().readall() == src.read_bytes()
    # A different file under the same name is not resumed into: the blob is made anew.
    src.write_bytes(os.urandom(24 * PAGE_CHUNK))
    again = upload_page_blob(blob, src, 2, lines.append)
    assert (again.resumed_chunks, again.sent_chunks) == (0, 24)
    assert blob.download_blob().readall() == src.read_bytes()
