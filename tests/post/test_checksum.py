"""checksum: Packer's file names and `<hex>\\t<name>` lines, every algorithm, one read per file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from factory.artifact import export
from factory.artifact.model import Artifact
from factory.errors import FactoryError
from factory.post import PostContext
from factory.post import checksum as checksum_mod
from factory.post.checksum import Checksum
from factory.schema.post_processors import ChecksumPostProcessor


def test_default_name_and_all_types(artifact: Artifact, ctx: PostContext, tmp_path: Path) -> None:
    types = ["md5", "sha1", "sha224", "sha256", "sha384", "sha512"]
    result = Checksum().process(ChecksumPostProcessor(checksum_types=types), artifact, ctx)
    data = artifact.files[0].read_bytes()
    assert [f.name for f in result.artifact.files] == [f"packer_cloud_qemu_{t}.checksum" for t in types]
    for t, f in zip(types, result.artifact.files, strict=True):
        assert f.read_text() == f"{hashlib.new(t, data).hexdigest()}\tcloud.qcow2\n"
    assert result.keep_input


def test_unknown_type(artifact: Artifact, ctx: PostContext) -> None:
    with pytest.raises(FactoryError, match="unknown checksum type 'crc32'"):
        Checksum().process(ChecksumPostProcessor(checksum_types=["crc32"]), artifact, ctx)


def test_export_digest_is_reused_not_recomputed(artifact: Artifact, ctx: PostContext, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    vmdk = export(artifact.files[0], "vmdk", tmp_path / "d.vmdk")[0]
    reads: list[str] = []
    real_new = hashlib.new
    monkeypatch.setattr(checksum_mod.hashlib, "new", lambda name, *a: reads.append(name) or real_new(name, *a))
    done = Checksum().process(ChecksumPostProcessor(), Artifact("x", "b", "qemu", (vmdk,)), ctx)
    assert reads == []                                      # the VMDK was hashed while it was written
    assert done.artifact.files[0].read_text().split("\t")[0] == hashlib.sha256(vmdk.read_bytes()).hexdigest()
