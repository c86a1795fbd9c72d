"""Read a qcow2 or raw disk as guest bytes, sparse-aware: only the extents that hold data are ever read.

`qemu-img map --output=json` tells which guest ranges hold data and, for raw and uncompressed qcow2 without a
backing file, where those bytes sit in the host file, so exporters read them straight from the file. Anything
else (compressed clusters, backing chains, other formats) is first flattened to a sparse raw temp file, which
costs one pass over the data but keeps the reader simple and exact.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from factory.errors import FactoryError
from factory.run import run

_IMAGE_HINT = "pass a qcow2 or raw disk image (check it with `qemu-img info FILE`)"


@dataclass(frozen=True)
class Extent:
    """A guest byte range holding data, and where it starts in the host file."""

    start: int
    length: int
    host: int

    @property
    def end(self) -> int:
        return self.start + self.length


@dataclass(frozen=True)
class ImageInfo:
    path: Path
    format: str
    virtual_size: int
    backing: str | None


def image_info(disk: Path) -> ImageInfo:
    """`qemu-img info` of disk, or a user error if it is missing or not a disk image qemu-img understands."""
    if not disk.exists():
        raise FactoryError(f"disk image {disk} does not exist", hint=_IMAGE_HINT)
    if not disk.is_file():
        raise FactoryError(f"{disk} is not a file", hint=_IMAGE_HINT)
    proc = run(["qemu-img", "info", "--output=json", disk], check=False)
    if proc.returncode != 0:
        raise FactoryError(f"{disk} is not a disk image qemu-img can read",
                           hint=_IMAGE_HINT + "; qemu-img said: " + proc.stderr.decode(errors="replace").strip())
    data = json.loads(proc.stdout)
    fmt = str(data["format"])
    if fmt not in ("raw", "qcow2", "vmdk", "vpc", "vhdx", "vdi"):
        raise FactoryError(f"{disk} has format {fmt!r}, which is not a disk image format factory exports from",
                           hint=_IMAGE_HINT)
    if fmt == "raw" and disk.stat().st_size % 512:
        # qemu-img calls any file "raw"; a disk image is whole sectors, so this is a text file, ISO fragment ...
        raise FactoryError(f"{disk} is not a disk image (its size is not a whole number of 512-byte sectors)",
                           hint=_IMAGE_HINT)
    if int(data["virtual-size"]) == 0:
        raise FactoryError(f"{disk} is an empty disk image (its virtual size is 0 bytes)", hint=_IMAGE_HINT)
    return ImageInfo(disk, fmt, int(data["virtual-size"]), data.get("backing-filename"))


def boot_record(disk: Path) -> bool | None:
    """Whether the guest's first sector ends in the 55 AA signature that BIOS and UEFI firmware look for (an MBR,
    GPT's protective MBR, a FAT boot sector): False means the firmware finds nothing to boot on this disk; None
    that it could not be read. Read through qemu-io, so any format and backing chain qemu reads will do."""
    proc = run(["qemu-io", "-r", "-U", "-c", "read -v 510 2", disk], check=False)  # -U: a running VM holds it
    out = proc.stdout.decode(errors="replace")
    if proc.returncode != 0 or not out.startswith("000001fe:"):
        return None
    return out.split()[1:3] == ["55", "aa"]


def _map(info: ImageInfo) -> list[dict[str, object]] | None:
    """The data extents of info with host offsets, or None when they cannot be read from the file directly."""
    proc = run(["qemu-img", "map", "--output=json", "-f", info.format, info.path])
    entries: list[dict[str, object]] = json.loads(proc.stdout)
    if info.format not in ("raw", "qcow2") or info.backing:
        return None
    # An allocated cluster flagged zero reads as zeros whatever stale bytes the file holds there: a hole.
    data = [e for e in entries if e.get("data") and not e.get("zero")]
    if any("offset" not in e or e.get("depth", 0) != 0 or e.get("compressed") for e in data):
        return None
    return data


class DiskSource:
    """Guest bytes of a disk image: `extents` lists the data, `read` fills zeros for holes."""

    def __init__(self, path: Path, virtual_size: int, extents: list[Extent]) -> None:
        self.path, self.virtual_size, self.extents = path, virtual_size, extents
        self._starts = [e.start for e in extents]
        self._fd = os.open(path, os.O_RDONLY)

    @property
    def data_bytes(self) -> int:
        return sum(e.length for e in self.extents)

    def read(self, offset: int, length: int) -> bytes:
        """Guest bytes [offset, offset+length): data from the file, zeros elsewhere (never past virtual size)."""
        length = max(0, min(length, self.virtual_size - offset))
        buf = bytearray(length)
        end = offset + length
        i = max(0, bisect.bisect_right(self._starts, offset) - 1)
        while i < len(self.extents) and self.extents[i].start < end:
            ext = self.extents[i]
            lo, hi = max(offset, ext.start), min(end, ext.end)
            if lo < hi:
                buf[lo - offset:hi - offset] = os.pread(self._fd, hi - lo, ext.host + lo - ext.start)
            i += 1
        return bytes(buf)

    def chunks(self, size: int) -> Iterator[int]:
        """Offsets of the size-aligned chunks that overlap data, ascending (holes are skipped entirely)."""
        last = -1
        for ext in self.extents:
            first = max(ext.start // size, last + 1)
            for idx in range(first, (ext.end - 1) // size + 1):
                yield idx * size
                last = idx

    def close(self) -> None:
        os.close(self._fd)


@contextlib.contextmanager
def open_disk(disk: Path, *, scratch: Path | None = None) -> Iterator[DiskSource]:
    """Open disk for sparse reading; flatten to a raw temp file (in scratch) only when it must."""
    info = image_info(disk)
    entries = _map(info)
    with contextlib.ExitStack() as stack:
        path = disk
        if entries is None:
            tmpdir = stack.enter_context(tempfile.TemporaryDirectory(prefix=".factory-flat-", dir=scratch))
            path = Path(tmpdir) / "flat.raw"
            run(["qemu-img", "convert", "-f", info.format, "-O", "raw", disk, path])
            flat = ImageInfo(path, "raw", info.virtual_size, None)
            entries = _map(flat) or []
        extents = [Extent(int(str(e["start"])), int(str(e["length"])), int(str(e["offset"]))) for e in entries]
        src = DiskSource(path, info.virtual_size, extents)
        try:
            yield src
        finally:
            src.close()
