"""compress: every format round-trips through its reader, archives are reproducible, bad outputs are refused."""

from __future__ import annotations

import gzip
import io
import lzma
import tarfile
from pathlib import Path

import pytest
import zstandard

from factory.artifact.model import Artifact
from factory.errors import FactoryError
from factory.post import PostContext
from factory.post.compress import Compress
from factory.schema.post_processors import CompressPostProcessor


def _two_files(tmp_path: Path) -> Artifact:
    a, b = tmp_path / "a.bin", tmp_path / "b.txt"
    a.write_bytes(bytes(range(256)) * 4000)
    b.write_text("hello\n")
    return Artifact("factory.qemu", "x", "qemu", (a, b))


def _decompress(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith("gz"):
        return gzip.decompress(data)
    if path.name.endswith("zst"):
        return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
    if path.name.endswith("xz"):
        return lzma.decompress(data)
    return data


@pytest.mark.parametrize("ext", ["tar", "tar.gz", "tar.zst", "tar.xz"])
def test_archives_round_trip(ext: str, ctx: PostContext, tmp_path: Path) -> None:
    art = _two_files(tmp_path)
    out = Compress().process(CompressPostProcessor(output=f"out/pkg.{ext}"), art, ctx).artifact.files[0]
    with tarfile.open(fileobj=io.BytesIO(_decompress(out))) as tar:
        members = tar.getmembers()
        assert [m.name for m in members] == ["a.bin", "b.txt"]
        assert all(m.mtime == 0 and m.uid == 0 for m in members)
        assert tar.extractfile("a.bin").read() == art.files[0].read_bytes()  # type: ignore[union-attr]


@pytest.mark.parametrize("ext", ["gz", "zst", "xz"])
def test_single_file_streams(ext: str, artifact: Artifact, ctx: PostContext) -> None:
    cfg = CompressPostProcessor(output=f"{{{{.BuildName}}}}.qcow2.{ext}", compression_level=3)
    out = Compress().process(cfg, artifact, ctx).artifact.files[0]
    assert out.name == f"cloud.qcow2.{ext}"
    assert _decompress(out) == artifact.files[0].read_bytes()


def test_reproducible(ctx: PostContext, tmp_path: Path) -> None:
    art = _two_files(tmp_path)
    one = Compress().process(CompressPostProcessor(output="1.tar.gz"), art, ctx).artifact.files[0].read_bytes()
    two = Compress().process(CompressPostProcessor(output="2.tar.gz"), art, ctx).artifact.files[0].read_bytes()
    assert one == two


def test_bad_outputs(ctx: PostContext, tmp_path: Path) -> None:
    art = _two_files(tmp_path)
    with pytest.raises(FactoryError, match="holds one file"):
        Compress().process(CompressPostProcessor(output="x.gz"), art, ctx)
    with pytest.raises(FactoryError, match="compression format"):
        Compress().process(CompressPostProcessor(output="x.rar"), art, ctx)
    with pytest.raises(FactoryError, match="out of range"):
        Compress().process(CompressPostProcessor(output="x.tar.gz", compression_level=12), art, ctx)
    assert not list(tmp_path.glob("*.part")) and not list(tmp_path.glob(".x*"))
