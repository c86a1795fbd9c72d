"""`compress`: tar and/or gzip, zstd (multithreaded) or xz, chosen by the output's extension or `format`.

Archives are reproducible (fixed mtimes and owners, gzip without name or time) and hashed while written, so a
following checksum post-processor does not read them again.
"""

from __future__ import annotations

import contextlib
import lzma
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, cast

import zstandard

from factory import events
from factory.artifact import digests
from factory.artifact.model import Artifact
from factory.artifact.tario import HashingWriter, fixed_mtime, gzip_writer
from factory.errors import FactoryError
from factory.fsutil import atomic_path
from factory.placeholders import expand
from factory.post.base import PostContext, PostProcessor, Result, resolve
from factory.schema.post_processors import COMPRESS_LEVEL_HINT, compress_format, compress_level_problem


@contextlib.contextmanager
def _compressor(fh: HashingWriter, codec: str, level: int) -> Iterator[IO[bytes]]:
    sink = cast(IO[bytes], fh)   # HashingWriter has the write/flush a compressor's file object needs
    if codec == "gz":
        with gzip_writer(sink, level) as gz:
            yield cast(IO[bytes], gz)
    elif codec == "zst":
        cctx = zstandard.ZstdCompressor(level=level, threads=-1)
        with cctx.stream_writer(sink, closefd=False) as zst:
            yield cast(IO[bytes], zst)
    elif codec == "xz":
        with lzma.LZMAFile(sink, "wb", preset=level) as xz:
            yield cast(IO[bytes], xz)
    else:
        yield sink


def _normalize(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime, info.uid, info.gid, info.uname, info.gname = fixed_mtime(), 0, 0, "", ""
    return info


def compress(files: list[Path], out: Path, fmt: str, level: int) -> Path:
    """Write files to out as fmt (see COMPRESS_FORMATS); single-stream formats take exactly one file."""
    archive, _, codec = fmt.partition(".") if fmt.startswith("tar") else ("", "", fmt)
    if not archive and (len(files) != 1 or not files[0].is_file()):
        raise FactoryError(f"compress: format {fmt!r} holds one file, but the artifact has {len(files)}",
                           hint=f"use a tar format (e.g. output ending .tar.{fmt}) to pack several files")
    total = sum(f.stat().st_size for f in files if f.is_file())
    with atomic_path(out) as tmp, open(tmp, "wb") as raw, events.progress(f"compressing to {out.name}", total,
                                                                     activity="export") as bar:
        writer = HashingWriter(raw)
        with _compressor(writer, codec, level) as stream:
            if archive:
                with tarfile.open(fileobj=stream, mode="w|", format=tarfile.GNU_FORMAT) as tar:
                    for f in files:
                        tar.add(f, arcname=f.name, filter=_normalize)
                        bar.advance(f.stat().st_size if f.is_file() else 0)
            else:
                with open(files[0], "rb") as src:
                    while chunk := src.read(1 << 20):
                        stream.write(chunk)
                        bar.advance(len(chunk))
    digests.remember(out, "sha256", writer.hexdigest())
    return out


class Compress(PostProcessor, type="compress"):
    def process(self, config: Any, artifact: Artifact, ctx: PostContext) -> Result:
        path = expand(config.output, {"BuildName": ctx.source_name, "BuilderType": ctx.source_type}, "output")
        fmt = compress_format(path, config.format)
        level = config.compression_level
        if problem := compress_level_problem(fmt, level):
            raise FactoryError(problem, hint=COMPRESS_LEVEL_HINT)
        out = compress(list(artifact.files), resolve(path, ctx), fmt, level)
        ctx.emit(f"Compressed {len(artifact.files)} file(s) into {out}")
        return Result(Artifact("packer.post-processor.compress", artifact.build_name, artifact.builder_type,
                               (out,), artifact_id=str(out)), keep_input=False)
