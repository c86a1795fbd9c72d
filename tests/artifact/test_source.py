"""Sparse reading of qcow2 and raw disks: what DiskSource reads must equal what qemu-img reads."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from factory.artifact.source import boot_record, image_info, open_disk
from factory.errors import FactoryError


def _raw_with_data(path: Path, size: int, blocks: list[tuple[int, int]]) -> bytes:
    with open(path, "wb") as fh:
        fh.truncate(size)
        for off, n in blocks:
            fh.seek(off)
            fh.write(os.urandom(n))
    return path.read_bytes()


def test_raw_extents_skip_holes_and_read_matches_file(tmp_path: Path) -> None:
    raw = tmp_path / "d.raw"
    content = _raw_with_data(raw, 32 << 20, [(1 << 20, 8192), (20 << 20, 65536 * 3 + 512)])
    with open_disk(raw) as src:
        assert src.data_bytes < 1 << 20          # holes are not data
        assert src.read(0, len(content)) == content
        chunks = list(src.chunks(65536))
        assert chunks == sorted(set(chunks))
        assert (20 << 20) in chunks and 0 not in chunks[1:]


def test_qcow2_is_read_from_host_offsets_without_flattening(tmp_path: Path) -> None:
    raw = tmp_path / "d.raw"
    content = _raw_with_data(raw, 16 << 20, [(3 << 20, 70000)])
    qcow = tmp_path / "d.qcow2"
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(qcow)], check=True)
    with open_disk(qcow) as src:
        assert src.path == qcow                  # read in place, no temp copy
        assert src.read(0, len(content)) == content


def test_compressed_qcow2_is_flattened_and_still_exact(tmp_path: Path) -> None:
    raw = tmp_path / "d.raw"
    content = _raw_with_data(raw, 8 << 20, [(0, 4096), (5 << 20, 100000)])
    qcow = tmp_path / "c.qcow2"
    subprocess.run(["qemu-img", "convert", "-c", "-O", "qcow2", str(raw), str(qcow)], check=True)
    with open_disk(qcow, scratch=tmp_path) as src:
        assert src.path != qcow
        assert src.read(0, len(content)) == content
        flat_dir = src.path.parent
    assert not flat_dir.exists()                 # the temp copy is removed


def test_missing_and_non_disk_inputs_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FactoryError, match="does not exist"):
        image_info(tmp_path / "nope.qcow2")
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    with pytest.raises(FactoryError, match="not a disk image"):
        image_info(text)
    empty = tmp_path / "empty.raw"
    empty.write_bytes(b"")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(tmp_path / "empty.qcow2"), "0"], check=True)
    for disk in (empty, tmp_path / "empty.qcow2"):
        with pytest.raises(FactoryError, match="is an empty disk image"):
            image_info(disk)


def test_zero_flagged_clusters_are_holes_not_stale_bytes(tmp_path: Path) -> None:
    disk = tmp_path / "z.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "4M"], check=True)
    # Write data, then zero the same cluster without unmapping it: the stale bytes stay in the file.
    subprocess.run(["qemu-io", "-c", "write -P 0x66 0 64k", "-c", "write -z 0 64k", str(disk)], check=True,
                   capture_output=True)
    with open_disk(disk) as src:
        assert src.read(0, 65536) == bytes(65536)


def test_boot_record_is_read_through_the_format_and_its_backing_chain(tmp_path: Path) -> None:
    """55 AA at bytes 510-511 of the guest's first sector, as qemu reads it: a raw file, a qcow2 (whose own first
    bytes are its header), an overlay whose base holds the sector; a file that is no disk at all is None."""
    sector = bytearray(os.urandom(512))
    for name, sig in (("mbr", b"\x55\xaa"), ("junk", b"\x55\xab")):
        sector[510:512] = sig
        raw = tmp_path / f"{name}.raw"
        raw.write_bytes(bytes(sector) + bytes(1 << 20))
        qcow = tmp_path / f"{name}.qcow2"
        subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, qcow], check=True)
        top = tmp_path / f"{name}-top.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", qcow, "-F", "qcow2", top], check=True)
        for disk in (raw, qcow, top):
            assert boot_record(disk) is (name == "mbr"), disk
    assert boot_record(tmp_path / "missing.qcow2") is None
