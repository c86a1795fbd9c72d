"""vagrant-cloud against a contract stub of the Vagrant Cloud API (tests/post/vagrant_cloud_contract_stub.py):
the box made by the real vagrant post-processor is published, released, and cleaned up after a failure."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from vagrant_cloud_contract_stub import TOKEN, CloudState, vagrant_cloud_stub

from factory.artifact.model import Artifact
from factory.errors import FactoryError
from factory.post import PostContext, run_chains
from factory.post.export import host_architecture
from factory.template.model import PostProcessorSpec

Chains = Callable[[str], list[list[PostProcessorSpec]]]


def cloud_block(stub: CloudState, extra: str = "") -> str:
    return f'''
    post-processor "vagrant-cloud" {{
      box_tag             = "acme/debian"
      version             = "1.2.3"
      version_description = "nightly"
      access_token        = "{TOKEN}"
      vagrant_cloud_url   = "{stub.base}/api/v2"
      {extra}
    }}'''


def chain(stub: CloudState, extra: str = "") -> str:
    return 'post-processors {\n    post-processor "vagrant" {}' + cloud_block(stub, extra) + "\n  }"


def test_box_from_the_vagrant_post_processor_is_uploaded_directly_and_released(
        chains: Chains, artifact: Artifact, ctx: PostContext, tmp_path: Path) -> None:
    with vagrant_cloud_stub() as stub:
        stub.add_box("acme/debian")
        outs = run_chains(chains(chain(stub)), artifact, ctx)
    box = tmp_path / f"packer_cloud_libvirt_{host_architecture()}.box"
    version = stub.boxes["acme/debian"]["versions"]["1.2.3"]
    assert version["status"] == "active" and version["description"] == "nightly"
    provider = version["providers"][("libvirt", host_architecture())]   # from the box's metadata.json
    assert provider["hosted"] and provider["sha256"] == hashlib.sha256(box.read_bytes()).hexdigest()
    (out,) = [o for o in outs if o.builder_id == "pearkes.post-processor.vagrant-cloud"]
    assert out.artifact_id == "acme/debian/libvirt" and out.state["version"] == "1.2.3"
    assert box in [f for o in outs for f in o.files]  # the box is kept, as Packer keeps it
    api = [(m, p) for m, p, _ in stub.requests if not p.startswith("/storage/")]
    assert all(authed for m, p, authed in stub.requests if not p.startswith("/storage/"))
    assert [m for m, _ in api] == ["GET", "POST", "POST", "GET", "PUT", "PUT"]
    assert api[3][1].endswith(f"/provider/libvirt/{host_architecture()}/upload/direct")
    assert api[-1][1].endswith("/1.2.3/release")
    assert not any(authed for _, p, authed in stub.requests if p.startswith("/storage/"))  # token stays home


def make_box(tmp_path: Path, metadata: dict[str, str]) -> Artifact:
    box = tmp_path / "handmade.box"
    with tarfile.open(box, "w:gz") as tar:
        raw = json.dumps(metadata).encode()
        info = tarfile.TarInfo("metadata.json")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
    return Artifact("packer.post-processor.artifice", "b.qemu.x", "qemu", (box,))


def test_no_direct_upload_no_release_and_the_architecture_from_metadata(
        chains: Chains, ctx: PostContext, tmp_path: Path) -> None:
    boxed = make_box(tmp_path, {"provider": "virtualbox", "architecture": "arm64"})
    with vagrant_cloud_stub() as stub:
        stub.add_box("acme/debian")
        (spec,) = chains(cloud_block(stub, "no_direct_upload = true\n no_release = true\n"
                                            'box_checksum = "sha256:abc"\n default_architecture = "arm64"'))
        run_chains([spec], boxed, ctx)
    version = stub.boxes["acme/debian"]["versions"]["1.2.3"]
    provider = version["providers"][("virtualbox", "arm64")]
    assert version["status"] == "unreleased" and provider["hosted"]
    assert provider["checksum_type"] == "sha256" and provider["checksum"] == "abc" and provider["default_architecture"]
    assert any(p.endswith("/provider/virtualbox/arm64/upload") for _, p, _ in stub.requests)


def test_box_download_url_registers_the_url_without_uploading(chains: Chains, ctx: PostContext,
                                                               tmp_path: Path) -> None:
    boxed = make_box(tmp_path, {"provider": "libvirt"})
    with vagrant_cloud_stub() as stub:
        stub.add_box("acme/debian")
        url = 'box_download_url = "https://boxes.example/{{.Provider}}-{{.Architecture}}.box"'
        (spec,) = chains(cloud_block(stub, url))
        run_chains([spec], boxed, ctx)
    provider = stub.boxes["acme/debian"]["versions"]["1.2.3"]["providers"][("libvirt", "amd64")]
    assert provider["url"] == "https://boxes.example/libvirt-amd64.box"
    assert not stub.storage and not any("/upload" in p for _, p, _ in stub.requests)


def test_a_failed_upload_deletes_the_provider_and_version_it_created(chains: Chains, ctx: PostContext,
                                                                     tmp_path: Path) -> None:
    boxed = make_box(tmp_path, {"provider": "libvirt"})
    with vagrant_cloud_stub() as stub:
        stub.add_box("acme/debian")
        stub.reject_storage = True
        (spec,) = chains(cloud_block(stub))
        with pytest.raises(FactoryError, match=r"uploading handmade\.box failed with HTTP 403"):
            run_chains([spec], boxed, ctx)
    assert stub.boxes["acme/debian"]["versions"] == {}
    assert [m for m, _, _ in stub.requests][-2:] == ["DELETE", "DELETE"]


def test_missing_box_wrong_token_and_wrong_input_are_clear_errors(chains: Chains, ctx: PostContext,
                                                                  artifact: Artifact, tmp_path: Path) -> None:
    boxed = make_box(tmp_path, {"provider": "libvirt"})
    with vagrant_cloud_stub() as stub:
        (spec,) = chains(cloud_block(stub))
        with pytest.raises(FactoryError, match=r"GET box/acme/debian failed with HTTP 404: Resource not found"):
            run_chains([spec], boxed, ctx)
        stub.add_box("acme/debian")
        (bad,) = chains(cloud_block(stub).replace(TOKEN, "wrong-token-1"))
        with pytest.raises(FactoryError, match="HTTP 401: Invalid access token"):
            run_chains([bad], boxed, ctx)
        with pytest.raises(FactoryError, match="is not a Vagrant box"):
            run_chains([spec], artifact, ctx)
    assert "wrong-token-1" not in "".join(str(r) for r in stub.requests)


def test_the_default_endpoint_needs_a_token(chains: Chains, ctx: PostContext, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VAGRANT_CLOUD_TOKEN", raising=False)
    monkeypatch.delenv("ATLAS_TOKEN", raising=False)
    (spec,) = chains('post-processor "vagrant-cloud" {\n box_tag = "a/b"\n version = "1"\n}')
    with pytest.raises(FactoryError, match="access_token must be set"):
        run_chains([spec], make_box(tmp_path, {"provider": "libvirt"}), ctx)
