"""Deterministic tar writing on a seekable file, and writers that hash what passes through them.

Members can be streamed whose size is unknown up front (a VMDK being compressed): the 512-byte header is
written as a placeholder and filled in once the data is out, so nothing is staged or read back. Headers come
from `tarfile.TarInfo.tobuf` (the standard library's encoder); only the streaming is done here.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import shutil
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, BinaryIO, Literal

from isal import igzip

TarFormat = Literal[0, 1, 2]   # tarfile.USTAR_FORMAT, GNU_FORMAT, PAX_FORMAT

BLOCK = tarfile.BLOCKSIZE
RECORD = tarfile.RECORDSIZE


def gzip_writer(fileobj: IO[bytes], level: int) -> gzip.GzipFile:
    """A reproducible gzip stream (no name, mtime 0): ISA-L's igzip for levels 1-6 (ISA-L 1-3, several times
    faster), the standard library for 0 and 7-9."""
    if 1 <= level <= 6:
        fast = 1 if level <= 2 else 2 if level <= 5 else 3
        return igzip.IGzipFile(filename="", mode="wb", fileobj=fileobj, compresslevel=fast,  # type: ignore[no-untyped-call]
                               mtime=0)
    return gzip.GzipFile(filename="", mode="wb", fileobj=fileobj, compresslevel=level, mtime=0)


def fixed_mtime() -> int:
    """The mtime every packaged member carries: SOURCE_DATE_EPOCH when set (reproducible-builds.org), else 0."""
    return int(os.environ.get("SOURCE_DATE_EPOCH", "0"))


class HashingWriter:
    """Forward writes to fh and feed every byte to the named hashes (sha256, sha1, ...) on the way."""

    def __init__(self, fh: BinaryIO, algorithms: Iterable[str] = ("sha256",)) -> None:
        self.fh = fh
        self.hashes = {a: hashlib.new(a) for a in algorithms}
        self.size = 0

    def write(self, data: bytes) -> int:
        self.fh.write(data)
        for h in self.hashes.values():
            h.update(data)
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        self.fh.flush()

    def hexdigest(self, algorithm: str = "sha256") -> str:
        return self.hashes[algorithm].hexdigest()


def member_header(name: str, size: int, *, mode: int = 0o644, fmt: TarFormat = 0) -> bytes:
    """A tar header with fixed owner, group and mtime, so equal inputs give equal archives."""
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, mode, fixed_mtime()
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info.tobuf(format=fmt, encoding="utf-8", errors="strict")


@dataclass
class Member:
    name: str
    offset: int          # of the header
    size: int = 0
    digests: dict[str, str] = field(default_factory=dict)


class TarWriter:
    """Write a USTAR archive member by member into a seekable binary file."""

    def __init__(self, fh: BinaryIO, fmt: TarFormat = 0) -> None:
        self.fh, self.fmt = fh, fmt
        self.members: list[Member] = []

    def _pad(self, size: int) -> None:
        if size % BLOCK:
            self.fh.write(bytes(BLOCK - size % BLOCK))

    def add_bytes(self, name: str, data: bytes, *, mode: int = 0o644) -> Member:
        member = Member(name, self.fh.tell(), len(data))
        self.fh.write(member_header(name, len(data), mode=mode, fmt=self.fmt))
        self.fh.write(data)
        self._pad(len(data))
        self.members.append(member)
        return member

    def reserve(self, name: str, size: int) -> Member:
        """Leave room for a member whose content is known only later (fill it with `fill`)."""
        member = Member(name, self.fh.tell(), size)
        self.fh.write(bytes(BLOCK + -(-size // BLOCK) * BLOCK))
        self.members.append(member)
        return member

    def fill(self, member: Member, data: bytes) -> None:
        if len(data) != member.size:
            raise ValueError(f"{member.name}: reserved {member.size} bytes, got {len(data)}")
        end = self.fh.tell()
        self.fh.seek(member.offset)
        self.fh.write(member_header(member.name, len(data), fmt=self.fmt))
        self.fh.write(data)
        self.fh.seek(end)

    @contextlib.contextmanager
    def stream(self, name: str, algorithms: Iterable[str] = ("sha256",)) -> Iterator[HashingWriter]:
        """A member of unknown size: write (and hash) through the yielded writer; the header is fixed after."""
        member = Member(name, self.fh.tell())
        self.fh.write(bytes(BLOCK))
        writer = HashingWriter(self.fh, algorithms)
        yield writer
        member.size = writer.size
        member.digests = {a: writer.hexdigest(a) for a in writer.hashes}
        self._pad(writer.size)
        end = self.fh.tell()
        self.fh.seek(member.offset)
        self.fh.write(member_header(name, writer.size, fmt=self.fmt))
        self.fh.seek(end)
        self.members.append(member)

    def close(self) -> None:
        """End-of-archive blocks, padded to a whole record as tar(1) does."""
        self.fh.write(bytes(2 * BLOCK))
        end = self.fh.tell()
        if end % RECORD:
            self.fh.write(bytes(RECORD - end % RECORD))


def extract_plain(tar: tarfile.TarFile, dest: Path) -> list[Path]:
    """Extract a tar's directories and regular files into dest and nothing else: every name must stay inside dest
    (no absolute path, no `..`), links and devices are refused, owners are not applied and modes are reduced to
    rw-r--r-- (rwxr-xr-x when any execute bit is set). What tar's `data` filter does, on every Python 3.11 (the
    filter argument only came in 3.11.4). Raises ValueError naming the first member that breaks the rule."""
    root = dest.resolve()
    root.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for m in tar:
        parts = PurePosixPath(m.name).parts
        if not parts or m.name.startswith("/") or ".." in parts:
            raise ValueError(f"tar member {m.name!r} would land outside {dest}")
        if not (m.isdir() or m.isfile()):
            raise ValueError(f"tar member {m.name!r} is a link or device; only files and directories are taken")
        target = root.joinpath(*[p for p in parts if p != "."])
        if m.isdir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        src = tar.extractfile(m)
        assert src is not None                       # a regular file always has data
        with src, open(target, "wb") as out:
            shutil.copyfileobj(src, out, 1 << 20)
        target.chmod(0o755 if m.mode & 0o111 else 0o644)
        written.append(target)
    return written
