"""Keep a hybrid ISO bootable from a disk after pycdlib rewrote its ISO9660 volume.

pycdlib rewrites the volume but writes the system area (MBR + GPT) as zeros unless it is a syslinux isohdpfx
one, and drops anything after the volume: Ubuntu 22.04+ keeps its EFI system partition there (GPT partition 2,
booted by a "hidden" El Torito EFI entry), so a dd'ed USB stick would no longer boot. `restore()` puts the
source's system area back, re-appends the partitions, re-points the El Torito EFI entry at them, rewrites the
MBR entries and both GPTs (with CRCs), and re-applies GRUB's `--grub2-boot-info` patches (the MBR and the BIOS
boot image record the image's new LBA; the boot-info-table checksum is recomputed, final partial word included).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

from factory.errors import FactoryError

SECTOR = 512
BLOCK = 2048
SYSTEM_AREA = 16 * BLOCK
GPT_SIGNATURE = b"EFI PART"
ESP_GUID = bytes.fromhex("28732ac11ff8d211ba4b00a0c93ec93b")
GRUB2_MBR_INFO = 0x1B0  # grub2 boot_hybrid.img: 512-byte LBA of the BIOS boot image + 4 (u64)
GRUB2_IMAGE_INFO = 2548  # inside eltorito.img: its own 512-byte LBA + 5 (u64)
_COPY_CHUNK = 4 << 20


@dataclass(frozen=True)
class BootEntry:
    """One El Torito boot entry: where it is in the catalog and what it loads."""

    platform: int  # 0 = BIOS x86, 0xEF = UEFI
    load_rba: int  # 2048-byte block
    sector_count: int  # 512-byte virtual sectors
    offset: int  # byte offset of the entry in the image

    @property
    def is_efi(self) -> bool:
        return self.platform == 0xEF


@dataclass(frozen=True)
class GptEntry:
    index: int
    raw: bytes  # entry_size bytes as on disk

    @property
    def type_guid(self) -> bytes:
        return self.raw[0:16]

    @property
    def first(self) -> int:
        return int(struct.unpack_from("<Q", self.raw, 32)[0])

    @property
    def last(self) -> int:
        return int(struct.unpack_from("<Q", self.raw, 40)[0])

    @property
    def name(self) -> str:
        return self.raw[56:128].decode("utf-16-le", errors="replace").rstrip("\0")

    def moved(self, first: int, last: int) -> GptEntry:
        raw = bytearray(self.raw)
        struct.pack_into("<QQ", raw, 32, first, last)
        return replace(self, raw=bytes(raw))


@dataclass(frozen=True)
class Gpt:
    header: bytes  # header_size bytes
    entries: tuple[GptEntry, ...]  # non-empty entries only
    num_entries: int
    entry_size: int
    entries_lba: int
    first_usable: int


@dataclass(frozen=True)
class Layout:
    """What a source ISO's disk boot path consists of."""

    volume_blocks: int  # ISO9660 volume space size (xorriso counts appended partitions in it)
    total_sectors: int  # size of the image file in 512-byte sectors
    catalog: tuple[BootEntry, ...]
    system_area: bytes  # the first 32 KiB: MBR, GPT, APM ...
    gpt: Gpt | None
    data_end: int  # first sector after the ISO9660 data (the GPT's ISO partition end, else the volume end)
    appended: tuple[GptEntry, ...]  # GPT partitions after the ISO data (not xorriso's "Gap" fillers)

    @property
    def has_system_area(self) -> bool:
        """A disk boot path exists (MBR signature or GPT), so a rewrite must keep it."""
        return self.gpt is not None or self.system_area[510:512] == b"\x55\xaa"


def _u32(data: bytes | bytearray, off: int) -> int:
    return int(struct.unpack_from("<I", data, off)[0])


def read_catalog(fh: BinaryIO) -> tuple[BootEntry, ...]:
    """The El Torito entries of an ISO (empty if it has none)."""
    for block in range(16, 64):
        fh.seek(block * BLOCK)
        vd = fh.read(BLOCK)
        if vd[0] == 0xFF or vd[1:6] != b"CD001":
            break
        if vd[0] == 0 and vd[7:30] == b"EL TORITO SPECIFICATION":
            return _parse_catalog(fh, _u32(vd, 0x47))
    return ()


def _parse_catalog(fh: BinaryIO, lba: int) -> tuple[BootEntry, ...]:
    fh.seek(lba * BLOCK)
    cat = fh.read(BLOCK)
    entries: list[BootEntry] = []
    platform = cat[1]

    def entry(off: int, plat: int) -> None:
        count, rba = struct.unpack_from("<HI", cat, off + 6)
        entries.append(BootEntry(plat, rba, count, lba * BLOCK + off))

    entry(32, platform)
    off = 64
    while off + 32 <= len(cat) and cat[off] in (0x90, 0x91):
        last_section = cat[off] == 0x91
        plat, n = cat[off + 1], struct.unpack_from("<H", cat, off + 2)[0]
        off += 32
        for _ in range(n):
            if cat[off] in (0x88, 0x00):
                entry(off, plat)
            off += 32
            while off + 32 <= len(cat) and cat[off] == 0x44:  # extension records
                off += 32
        if last_section:
            break
    return tuple(entries)


def read_gpt(fh: BinaryIO) -> Gpt | None:
    fh.seek(SECTOR)
    head = fh.read(SECTOR)
    if head[:8] != GPT_SIGNATURE:
        return None
    size = _u32(head, 12)
    entries_lba, num, esize = struct.unpack_from("<QII", head, 72)
    first_usable = int(struct.unpack_from("<Q", head, 40)[0])
    fh.seek(entries_lba * SECTOR)
    table = fh.read(num * esize)
    entries = tuple(GptEntry(i, table[i * esize:(i + 1) * esize]) for i in range(num)
                    if table[i * esize:i * esize + 16] != bytes(16))
    return Gpt(head[:size], entries, num, esize, entries_lba, first_usable)


def analyse(path: Path) -> Layout:
    """Read the boot layout of a source ISO."""
    with path.open("rb") as fh:
        head = fh.read(SYSTEM_AREA)
        fh.seek(16 * BLOCK)
        pvd = fh.read(BLOCK)
        blocks = _u32(pvd, 80)
        catalog = read_catalog(fh)
        gpt = read_gpt(fh)
        total = fh.seek(0, 2) // SECTOR
    data_end = blocks * 4
    appended: tuple[GptEntry, ...] = ()
    if gpt is not None and gpt.entries:
        iso_part = min(gpt.entries, key=lambda e: e.first)
        data_end = iso_part.last + 1
        appended = tuple(e for e in gpt.entries if e.first >= data_end and not e.name.startswith("Gap"))
    return Layout(blocks, total, catalog, head, gpt, data_end, appended)


@dataclass(frozen=True)
class _Plan:
    """Where things land in the new image (512-byte sectors)."""

    volume: int  # new ISO9660 volume size
    total: int  # new image size
    moves: dict[int, int]  # old first sector -> new first sector, for appended partitions and boot images


def restore(src: Path, out: Path, layout: Layout, *, on_bytes: Callable[[int], None] | None = None) -> None:
    """Give out (pycdlib's rewrite of src) back src's disk boot path: system area, appended partitions, GPT."""
    with src.open("rb") as sfh, out.open("r+b") as ofh:
        area = bytearray(layout.system_area)
        ofh.seek(16 * BLOCK)
        volume = _u32(ofh.read(BLOCK), 80) * 4
        new_catalog = read_catalog(ofh)
        moves, end = _append_partitions(sfh, ofh, layout, volume, on_bytes)
        for old, new in zip(layout.catalog, new_catalog, strict=False):
            moves.setdefault(old.load_rba * 4, new.load_rba * 4)  # boot images inside the volume moved too
        total = _image_sectors(layout, end)
        plan = _Plan(volume, total, moves)
        _repoint_efi(ofh, layout, new_catalog, moves)
        _fix_mbr(area, layout, plan)
        _fix_apm(area, layout, plan)
        _boot_info(area, ofh, layout, new_catalog)
        if layout.gpt is not None:
            _write_gpts(ofh, area, layout, layout.gpt, plan)
        ofh.seek(0)
        ofh.write(area)
        ofh.truncate(plan.total * SECTOR)


def _image_sectors(layout: Layout, end: int) -> int:
    """The new image size: data, then room for the backup GPT, rounded like the source (xorriso pads isohybrid
    images to whole 1 MiB cylinders; otherwise to whole 2 KiB blocks)."""
    if layout.gpt is not None:
        end += -(-layout.gpt.num_entries * layout.gpt.entry_size // SECTOR) + 1
    align = 2048 if layout.total_sectors % 2048 == 0 else 4
    return -(-end // align) * align


def _boot_info(area: bytearray, ofh: BinaryIO, layout: Layout, new_catalog: tuple[BootEntry, ...]) -> None:
    """Re-point the MBR's record of the BIOS boot image: GRUB's --grub2-boot-info or isohybrid's LBA."""
    bios = next((e for e in new_catalog if not e.is_efi), None)
    old = next((e for e in layout.catalog if not e.is_efi), None)
    if bios is None or old is None:
        return
    if _u64(area, GRUB2_MBR_INFO) == old.load_rba * 4 + 4:
        struct.pack_into("<Q", area, GRUB2_MBR_INFO, bios.load_rba * 4 + 4)
        _patch_grub2_image(ofh, bios.load_rba)
    elif _u32(area, GRUB2_MBR_INFO) == old.load_rba * 4:  # syslinux isohdpfx: u32 LBA*4 of isolinux.bin
        struct.pack_into("<I", area, GRUB2_MBR_INFO, bios.load_rba * 4)


def _u64(data: bytes | bytearray, off: int) -> int:
    return int(struct.unpack_from("<Q", data, off)[0])


def _append_partitions(sfh: BinaryIO, ofh: BinaryIO, layout: Layout, start: int,
                       on_bytes: Callable[[int], None] | None) -> tuple[dict[int, int], int]:
    """Copy each appended partition after the new volume (2 KiB aligned); map old -> new first sector."""
    moves: dict[int, int] = {}
    pos = start
    for part in sorted(layout.appended, key=lambda e: e.first):
        size = part.last - part.first + 1
        sfh.seek(part.first * SECTOR)
        ofh.seek(pos * SECTOR)
        left = size * SECTOR
        while left:
            chunk = sfh.read(min(_COPY_CHUNK, left))
            if not chunk:
                raise FactoryError(f"the source ISO ends inside its GPT partition {part.index + 1} ({part.name})",
                                   hint="the file is truncated: download it again")
            ofh.write(chunk)
            left -= len(chunk)
            if on_bytes:
                on_bytes(len(chunk))
        moves[part.first] = pos
        pos += -(-size // 4) * 4
    return moves, pos


def _repoint_efi(ofh: BinaryIO, layout: Layout, new_catalog: tuple[BootEntry, ...],
                 moves: dict[int, int]) -> None:
    """An EFI entry that booted an appended partition boots it again (not pycdlib's in-volume copy)."""
    for old, new in zip(layout.catalog, new_catalog, strict=False):
        if old.is_efi and old.load_rba * 4 in moves:
            first = moves[old.load_rba * 4]
            ofh.seek(new.offset + 6)
            ofh.write(struct.pack("<HI", old.sector_count, first // 4))


def _resized(first: int, count: int, layout: Layout, plan: _Plan) -> tuple[int, int] | None:
    """New (first, count) of a partition: moved with its content, or grown/shrunk with the data or image."""
    if first in plan.moves:
        return plan.moves[first], count
    if first + count >= layout.total_sectors:  # ran to the end of the image
        return first, plan.total - first
    if first < layout.data_end <= first + count:  # ran to the end of the ISO data
        return first, plan.volume - first
    return None


def _fix_mbr(area: bytearray, layout: Layout, plan: _Plan) -> None:
    for n in range(4):
        off = 446 + 16 * n
        ptype = area[off + 4]
        first, count = struct.unpack_from("<II", area, off + 8)
        if ptype == 0 and count <= 1:
            continue
        if ptype == 0xEE:
            new: tuple[int, int] | None = (1, min(plan.total - 1, 0xFFFFFFFF))
        else:
            new = _resized(first, count, layout, plan)
        if new is not None:
            struct.pack_into("<II", area, off + 8, *new)


def _fix_apm(area: bytearray, layout: Layout, plan: _Plan) -> None:
    """Apple Partition Map entries (Debian's -isohybrid-apm-hfsplus), in 2 KiB blocks after the MBR block."""
    if area[BLOCK:BLOCK + 2] != b"PM":
        return
    for off in range(BLOCK, SYSTEM_AREA, BLOCK):
        if area[off:off + 2] != b"PM":
            break
        first, count = struct.unpack_from(">II", area, off + 8)
        new = _resized(first * 4, count * 4, layout, plan)
        if new is not None:
            struct.pack_into(">II", area, off + 8, new[0] // 4, -(-new[1] // 4))
            struct.pack_into(">I", area, off + 84, -(-new[1] // 4))  # pmDataCnt follows the partition size


def _patch_grub2_image(ofh: BinaryIO, lba: int) -> None:
    """Re-apply --grub2-boot-info inside the BIOS image and recompute its boot-info-table checksum."""
    base = lba * BLOCK
    ofh.seek(base)
    head = ofh.read(64)
    length = _u32(head, 16)  # bi_length, written by pycdlib's boot-info-table
    if length <= GRUB2_IMAGE_INFO + 8:
        return
    ofh.seek(base)
    image = bytearray(ofh.read(length))
    struct.pack_into("<Q", image, GRUB2_IMAGE_INFO, lba * 4 + 5)
    body = bytes(image[64:]) + bytes(-(length - 64) % 4)  # the final partial word counts, zero-padded
    csum = sum(struct.unpack(f"<{len(body) // 4}I", body)) & 0xFFFFFFFF
    struct.pack_into("<I", image, 20, csum)
    ofh.seek(base)
    ofh.write(image)


def _write_gpts(ofh: BinaryIO, area: bytearray, layout: Layout, gpt: Gpt, plan: _Plan) -> None:
    table = bytearray(gpt.num_entries * gpt.entry_size)
    backup_entries = plan.total - 1 - len(table) // SECTOR
    for entry in gpt.entries:
        if entry.first in plan.moves:
            first = plan.moves[entry.first]
            entry = entry.moved(first, first + entry.last - entry.first)
        elif entry.first >= layout.data_end:
            continue  # xorriso's Gap fillers: the new layout has no gaps
        elif entry.last + 1 >= layout.data_end:  # the ISO9660 partition follows the new volume size
            entry = entry.moved(entry.first, min(-(-plan.volume // 8) * 8, backup_entries) - 1)
        table[entry.index * gpt.entry_size:(entry.index + 1) * gpt.entry_size] = entry.raw
    table_crc = zlib.crc32(table)

    def header(current: int, backup: int, entries_lba: int) -> bytes:
        head = bytearray(gpt.header)
        struct.pack_into("<QQQQ", head, 24, current, backup, gpt.first_usable, backup_entries - 1)
        struct.pack_into("<Q", head, 72, entries_lba)
        struct.pack_into("<I", head, 88, table_crc)
        struct.pack_into("<I", head, 16, 0)
        struct.pack_into("<I", head, 16, zlib.crc32(head))
        return bytes(head) + bytes(SECTOR - len(head))

    area[SECTOR:2 * SECTOR] = header(1, plan.total - 1, gpt.entries_lba)
    if gpt.entries_lba * SECTOR + len(table) <= SYSTEM_AREA:
        area[gpt.entries_lba * SECTOR:gpt.entries_lba * SECTOR + len(table)] = table
    else:
        ofh.seek(gpt.entries_lba * SECTOR)
        ofh.write(table)
    ofh.seek(backup_entries * SECTOR)
    ofh.write(table)
    ofh.write(header(plan.total - 1, 1, backup_entries))
