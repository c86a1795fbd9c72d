"""Exports and Vagrant boxes as post-processors, from template blocks."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest

from factory.artifact.model import Artifact
from factory.errors import FactoryError
from factory.post import PostContext, run_chains
from factory.post.export import host_architecture


def test_ova_alias_with_hardware_override(chains, artifact: Artifact, ctx: PostContext,  # type: ignore[no-untyped-def]
                                          tmp_path: Path) -> None:
    body = 'post-processor "ova" {\n cpus = 4\n memory = 4096\n firmware = "efi"\n output = "vm/{{.BuildName}}.ova"\n}'
    out = run_chains(chains(body), artifact, ctx)
    ova = tmp_path / "vm" / "cloud.ova"
    assert out[0].files == (ova,) and not artifact.files[0].exists()
    with tarfile.open(ova) as tar:
        assert tar.getnames() == ["cloud.ovf", "cloud.mf", "cloud-disk1.vmdk"]
        descriptor = tar.extractfile("cloud.ovf").read().decode()  # type: ignore[union-attr]
    assert "<rasd:VirtualQuantity>4</rasd:VirtualQuantity>" in descriptor
    assert "<rasd:VirtualQuantity>4096</rasd:VirtualQuantity>" in descriptor and 'vmw:value="efi"' in descriptor


def test_export_needs_a_format_and_refuses_a_contradiction(chains, artifact: Artifact,  # type: ignore[no-untyped-def]
                                                           ctx: PostContext) -> None:
    with pytest.raises(FactoryError, match="`format` is required"):
        run_chains(chains('post-processor "export" {}'), artifact, ctx)
    with pytest.raises(FactoryError, match="contradicts"):
        run_chains(chains('post-processor "vhd" { format = "ova" }'), artifact, ctx)


def test_vagrant_box_for_the_qemu_builder(chains, artifact: Artifact, ctx: PostContext,  # type: ignore[no-untyped-def]
                                          tmp_path: Path) -> None:
    (tmp_path / "README").write_text("box readme\n")
    body = 'post-processor "vagrant" {\n include = ["README"]\n keep_input_artifact = true\n}'
    out = run_chains(chains(body), artifact, ctx)
    box = tmp_path / f"packer_cloud_libvirt_{host_architecture()}.box"   # current packer-plugin-vagrant's default
    assert out[0].files == (box,) and artifact.files[0].exists()
    with tarfile.open(box) as tar:
        assert tar.getnames() == ["metadata.json", "Vagrantfile", "box.img", "README"]
        meta = json.loads(tar.extractfile("metadata.json").read())  # type: ignore[union-attr]
    assert meta == {"format": "qcow2", "provider": "libvirt", "virtual_size": 1, "architecture": host_architecture()}


def test_export_chain_feeds_the_exported_disk_on(chains, artifact: Artifact, ctx: PostContext,  # type: ignore[no-untyped-def]
                                                 tmp_path: Path) -> None:
    body = '''
  post-processors {
    post-processor "export" { format = "raw" }
    post-processor "vhd" { output = "azure.vhd" }
  }
'''
    out = run_chains(chains(body), artifact, ctx)
    assert [f.name for a in out for f in a.files] == ["azure.vhd"]
    assert not (tmp_path / "packer_cloud_qemu.raw").exists()


def test_vagrant_architecture_names_the_box_and_is_recorded(chains, artifact: Artifact,  # type: ignore[no-untyped-def]
                                                            ctx: PostContext, tmp_path: Path) -> None:
    body = 'post-processor "vagrant" {\n architecture = "arm64"\n output = "b-{{ .Architecture }}.box"\n}'
    (out,) = run_chains(chains(body), artifact, ctx)
    assert out.files == (tmp_path / "b-arm64.box",)
    with tarfile.open(out.files[0]) as tar:
        assert json.loads(tar.extractfile("metadata.json").read())["architecture"] == "arm64"  # type: ignore[union-attr]


def test_a_missing_vagrantfile_template_is_refused_at_validate_unless_generated(chains, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)   # Packer reads the path relative to the directory it runs in
    with pytest.raises(FactoryError, match="vagrantfile_template 'tpl/Vagrantfile' does not exist"):
        chains('post-processor "vagrant" {\n vagrantfile_template = "tpl/Vagrantfile"\n}')
    chains('post-processor "vagrant" {\n vagrantfile_template = "tpl/Vagrantfile"\n'
           ' vagrantfile_template_generated = true\n}')
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "Vagrantfile").write_text("# box defaults\n")
    chains('post-processor "vagrant" {\n vagrantfile_template = "tpl/Vagrantfile"\n}')
