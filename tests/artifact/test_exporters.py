"""Every export format, checked by the tool that consumes it, and booted where a boot proves something."""

from __future__ import annotations

import gzip
import struct
import subprocess
import tarfile
from pathlib import Path

import pytest
from fixtures.vm import boot_until

from factory.artifact import ExportOptions, compact, export, formats
from factory.errors import FactoryError

MIB, GIB = 1 << 20, 1 << 30


def _qemu_img(*args: str) -> str:
    return subprocess.run(["qemu-img", *args], check=True, capture_output=True, text=True).stdout


def test_all_formats_registered() -> None:
    assert formats() == sorted(["gce", "ova", "qcow2", "raw", "vagrant-libvirt", "vagrant-virtualbox", "vhd",
                                "vhdx", "vmdk"])


@pytest.mark.parametrize("fmt", ["qcow2", "raw", "vhdx"])
def test_qemu_img_formats_equal_the_source(fmt: str, boot_qcow2: tuple[Path, str], tmp_path: Path) -> None:
    disk, _ = boot_qcow2
    out = tmp_path / f"d.{fmt}"
    assert export(disk, fmt, out) == [out]
    assert f"file format: {fmt}" in _qemu_img("info", str(out))
    if fmt != "raw":
        _qemu_img("check", str(out))
    _qemu_img("compare", str(disk), str(out))
    assert oct(out.stat().st_mode & 0o777) != oct(0o600)    # not the temp file's private mode


def test_compact_drops_zeros_and_can_compress(tmp_path: Path) -> None:
    disk = tmp_path / "fat.qcow2"
    _qemu_img("create", "-q", "-f", "qcow2", str(disk), "1G")
    subprocess.run(["qemu-io", "-c", "write -P 0 0 64M", "-c", "write -P 0x61 100M 8M", str(disk)], check=True,
                   capture_output=True)
    plain, small = compact(disk, tmp_path / "c.qcow2"), compact(disk, tmp_path / "z.qcow2", compress=True)
    _qemu_img("compare", str(disk), str(plain))
    _qemu_img("compare", str(disk), str(small))
    assert plain.stat().st_size < 10 * MIB < disk.stat().st_size   # the 64 MiB of written zeros are gone
    assert small.stat().st_size < plain.stat().st_size // 10       # 0x61 repeated compresses to almost nothing


def _vhd_footer(path: Path) -> dict[str, int | bytes]:
    with open(path, "rb") as fh:
        fh.seek(-512, 2)
        footer = fh.read(512)
    checksum = struct.unpack_from(">I", footer, 64)[0]
    summed = (~sum(footer[:64] + b"\0\0\0\0" + footer[68:])) & 0xFFFFFFFF
    return {"cookie": footer[:8], "type": struct.unpack_from(">I", footer, 60)[0],
            "current": struct.unpack_from(">Q", footer, 48)[0], "checksum_ok": int(checksum == summed),
            "offset": struct.unpack_from(">Q", footer, 16)[0]}


def test_vhd_is_fixed_mib_aligned_with_a_valid_footer(boot_qcow2: tuple[Path, str], tmp_path: Path) -> None:
    disk, _ = boot_qcow2
    out = tmp_path / "azure.vhd"
    export(disk, "vhd", out)
    footer = _vhd_footer(out)
    assert footer["cookie"] == b"conectix" and footer["type"] == 2 and footer["checksum_ok"] == 1
    assert footer["offset"] == 0xFFFFFFFFFFFFFFFF                  # fixed disks have no dynamic header
    current = int(footer["current"])
    assert current % MIB == 0 and current == out.stat().st_size - 512
    source_size = int(_qemu_img("info", "--output=json", str(disk)).split('"virtual-size": ')[1].split(",")[0])
    assert source_size % MIB != 0 and current == -(-source_size // MIB) * MIB
    _qemu_img("compare", "-F", "vpc", str(disk), str(out))   # fixed VHDs have no header to probe


def _gce_members(out: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(out) as tar:
        return tar.getmembers()


def test_gce_archive_layout(boot_qcow2: tuple[Path, str], tmp_path: Path) -> None:
    disk, _ = boot_qcow2
    out = tmp_path / "image.tar.gz"
    export(disk, "gce", out)
    members = _gce_members(out)
    assert [m.name for m in members] == ["disk.raw"] and members[0].size % GIB == 0
    header = gzip.decompress(out.read_bytes())[:512]
    assert header[257:265] == b"ustar  \0" and header[156:157] == b"S"   # GNU format, sparse member
    assert out.read_bytes()[4:8] == b"\0\0\0\0"                         # gzip -n: no timestamp
    extract = tmp_path / "x"
    extract.mkdir()
    subprocess.run(["tar", "-xzf", str(out), "-C", str(extract)], check=True)
    raw = extract / "disk.raw"
    verify = subprocess.run(["sgdisk", "-v", str(raw)], capture_output=True, text=True)
    assert "No problems found" in verify.stdout, verify.stdout
    flat = tmp_path / "source.raw"
    _qemu_img("convert", "-O", "raw", str(disk), str(flat))
    source, exported = flat.read_bytes(), raw.read_bytes()
    # The protective MBR's size, the GPT headers and the old backup table change; boot code and data do not.
    gpt_tail, gpt_head = 33 * 512, 34 * 512
    assert exported[:440] == source[:440]
    assert exported[gpt_head:len(source) - gpt_tail] == source[gpt_head:-gpt_tail]
    assert exported[len(source):-gpt_tail].count(0) == len(exported) - len(source) - gpt_tail
    assert out.stat().st_size < 8 * MIB                               # holes are not in the archive


def test_gce_and_ova_are_reproducible(boot_disk: tuple[Path, str], tmp_path: Path) -> None:
    disk, _ = boot_disk
    for fmt in ("gce",):
        a, b = tmp_path / "a" / fmt, tmp_path / "b" / fmt
        export(disk, fmt, a)
        export(disk, fmt, b)
        assert a.read_bytes() == b.read_bytes(), fmt


def test_bad_inputs_are_one_clear_message(boot_disk: tuple[Path, str], tmp_path: Path) -> None:
    disk, _ = boot_disk
    with pytest.raises(FactoryError, match="unknown export format 'ovaa'") as exc:
        export(disk, "ovaa", tmp_path / "x")
    assert exc.value.hint and "did you mean 'ova'" in exc.value.hint
    with pytest.raises(FactoryError, match="does not exist"):
        export(tmp_path / "missing.qcow2", "ova", tmp_path / "x.ova")
    with pytest.raises(FactoryError, match="manifest hash"):
        export(disk, "ova", tmp_path / "x.ova", options=ExportOptions(manifest_hash="md5"))
    assert not list(tmp_path.glob("*.part")) and not (tmp_path / "x.ova").exists()


@pytest.mark.vm
@pytest.mark.parametrize("fmt", ["vmdk", "vhd", "gce"])
def test_exported_disk_boots(fmt: str, boot_qcow2: tuple[Path, str], tmp_path: Path) -> None:
    disk, marker = boot_qcow2
    out = tmp_path / f"disk.{fmt}"
    export(disk, fmt, out)
    image, qfmt = out, {"vmdk": "vmdk", "vhd": "vpc", "gce": "raw"}[fmt]
    if fmt == "gce":
        subprocess.run(["tar", "-xzf", str(out), "-C", str(tmp_path)], check=True)
        image = tmp_path / "disk.raw"
    result = boot_until(["-drive", f"file={image},format={qfmt},if=ide,snapshot=on"], marker, 60, tmp_path,
                        memory=128)
    assert result.matched, result.log
