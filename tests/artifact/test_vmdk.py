"""The streamOptimized VMDK writer, checked by qemu-img (the consumer we can run) byte for byte."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from factory.artifact.source import open_disk
from factory.artifact.vmdk import Adapter, write_stream_optimized


def _write(disk: Path, out: Path, **kw: object) -> None:
    with open_disk(disk) as src, open(out, "wb") as fh:
        write_stream_optimized(src, fh.write, name=out.name, **kw)  # type: ignore[arg-type]


def test_vmdk_checks_clean_and_equals_source(boot_qcow2: tuple[Path, str], tmp_path: Path) -> None:
    disk, _ = boot_qcow2
    out = tmp_path / "d.vmdk"
    _write(disk, out, adapter=Adapter.IDE, hw_version=7)
    subprocess.run(["qemu-img", "check", str(out)], check=True, capture_output=True)
    subprocess.run(["qemu-img", "compare", str(disk), str(out)], check=True, capture_output=True)
    info = subprocess.run(["qemu-img", "info", str(out)], check=True, capture_output=True, text=True).stdout
    assert "create type: streamOptimized" in info and "compressed: true" in info
    descriptor = out.read_bytes()[512:512 * 21].rstrip(b"\0").decode()
    assert 'ddb.adapterType = "ide"' in descriptor and 'ddb.virtualHWVersion = "7"' in descriptor


def test_vmdk_is_reproducible_and_independent_of_thread_count(boot_disk: tuple[Path, str], tmp_path: Path) -> None:
    disk, _ = boot_disk
    a, b = tmp_path / "a" / "d.vmdk", tmp_path / "b" / "d.vmdk"
    a.parent.mkdir()
    b.parent.mkdir()
    _write(disk, a, workers=1)
    _write(disk, b, workers=4)
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()


def test_sparse_disk_costs_only_its_data(tmp_path: Path) -> None:
    disk = tmp_path / "big.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "20G"], check=True)
    subprocess.run(["qemu-io", "-c", "write -P 0x5a 7G 1M", str(disk)], check=True, capture_output=True)
    out = tmp_path / "big.vmdk"
    with open_disk(disk) as src, open(out, "wb") as fh:
        result = write_stream_optimized(src, fh.write, name=out.name)
    assert result.grains == 16                        # 1 MiB of data = 16 grains; the rest is never stored
    assert out.stat().st_size < 2 << 20               # grain tables for 20 GiB are ~1.6 MiB at most
    subprocess.run(["qemu-img", "compare", str(disk), str(out)], check=True, capture_output=True)


def test_every_compression_level_reads_back_and_9_is_smallest(tmp_path: Path) -> None:
    text = tmp_path / "text.raw"
    # Compressible content, so the levels differ: repeated source text with varying numbers.
    body = b"".join(b"line %d of the factory test disk, compressible text\n" % i for i in range(200000))
    text.write_bytes(body.ljust(-(-len(body) // 512) * 512, b"\0"))
    sizes = {}
    for level in (1, 3, 6, 9):
        out = tmp_path / f"l{level}.vmdk"
        _write(text, out, level=level)
        subprocess.run(["qemu-img", "compare", "-f", "raw", str(text), str(out)], check=True, capture_output=True)
        sizes[level] = out.stat().st_size
    assert sizes[9] <= min(sizes.values()) and sizes[9] < sizes[1]
