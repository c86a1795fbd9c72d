"""run_chains on chains parsed from real templates: Packer's keep_input_artifact and only/except semantics."""

from __future__ import annotations

from pathlib import Path

import pytest

from factory.artifact.model import Artifact
from factory.errors import FactoryError
from factory.post import PostContext, run_chains


def test_no_post_processors_keep_the_build_artifact(artifact: Artifact, ctx: PostContext) -> None:
    assert run_chains([], artifact, ctx) == [artifact]


def test_converter_alone_deletes_its_input(chains, artifact: Artifact, ctx: PostContext) -> None:  # type: ignore[no-untyped-def]
    out = run_chains(chains('post-processor "compress" { output = "img.qcow2.zst" }'), artifact, ctx)
    assert [a.builder_id for a in out] == ["packer.post-processor.compress"]
    assert not artifact.files[0].exists()                 # Packer: compress does not keep its input
    assert out[0].files[0].exists()


def test_keep_input_artifact_true_keeps_it(chains, artifact: Artifact, ctx: PostContext) -> None:  # type: ignore[no-untyped-def]
    body = 'post-processor "compress" {\n output = "img.zst"\n keep_input_artifact = true\n}'
    out = run_chains(chains(body), artifact, ctx)
    assert artifact.files[0].exists() and out[-1] is artifact


def test_manifest_forces_keep_even_when_told_false(chains, artifact: Artifact, ctx: PostContext) -> None:  # type: ignore[no-untyped-def]
    body = 'post-processor "manifest" {\n keep_input_artifact = false\n}'
    out = run_chains(chains(body), artifact, ctx)
    assert out == [artifact] and artifact.files[0].exists()
    assert (ctx.root / "packer-manifest.json").exists()


def test_chains_only_and_intermediate_artifacts(chains, artifact: Artifact, ctx: PostContext,  # type: ignore[no-untyped-def]
                                                tmp_path: Path) -> None:
    body = '''
  post-processors {
    post-processor "ova" { cpus = 2 }
    post-processor "checksum" { output = "{{.BuildName}}.{{.ChecksumType}}" }
  }
  post-processors {
    post-processor "vmdk" {}
    post-processor "compress" { output = "disk.vmdk.gz" }
  }
  post-processor "manifest" { strip_path = true }
  post-processor "compress" {
    output = "never.tar.zst"
    only   = ["qemu.other"]
  }
'''
    out = run_chains(chains(body), artifact, ctx)
    names = [sorted(f.name for f in a.files) for a in out]
    # chain 1: the OVA is kept (checksum keeps its input) and the checksum file is final; chain 2: the VMDK is
    # deleted after compress; chain 3: manifest keeps the build's disk, which therefore survives.
    assert names == [["packer_cloud_qemu.ova"], ["cloud.sha256"], ["disk.vmdk.gz"], ["cloud.qcow2"]]
    assert not (tmp_path / "packer_cloud_qemu.vmdk").exists()
    assert not (tmp_path / "never.tar.zst").exists()       # only = ["qemu.other"] skipped it
    assert artifact.files[0].exists()
    checksum = (tmp_path / "cloud.sha256").read_text()
    assert checksum.endswith("\tpacker_cloud_qemu.ova\n")


def test_failure_names_the_template_block(chains, artifact: Artifact, ctx: PostContext) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FactoryError, match="cannot tell the compression format") as exc:
        run_chains(chains('post-processor "compress" { output = "x.rar" }'), artifact, ctx)
    assert exc.value.where is not None and exc.value.where.file.endswith("t.pkr.hcl") and exc.value.where.line > 0
    assert artifact.files[0].exists()                     # nothing deleted after a failure
