"""azure-import against Azurite (page blobs read back) and the ARM compute-images contract stub."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cloud_servers import AZ_ACCOUNT, AZ_KEY

from factory.artifact.exporters import export
from factory.artifact.model import Artifact
from factory.errors import FactoryError
from factory.post import PostContext, run_chains
from factory.template.model import PostProcessorSpec

Chains = Callable[[str], list[list[PostProcessorSpec]]]
RG = "images-rg"


def _container(azurite_url: str, name: str) -> Any:
    from azure.storage.blob import BlobServiceClient

    svc = BlobServiceClient(azurite_url, credential={"account_name": AZ_ACCOUNT, "account_key": AZ_KEY})
    container = svc.get_container_client(name)
    if not container.exists():
        container.create_container()
    return container


def _puts(arm_url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{arm_url}/_stub/calls") as resp:
        return list(json.load(resp))


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
    (put,) = [c for c in _puts(arm_url) if c["path"].endswith("/images/debian-factory")]
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
    (put,) = [c for c in _puts(arm_url) if "/versions/1.0.0" in c["path"]]
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
