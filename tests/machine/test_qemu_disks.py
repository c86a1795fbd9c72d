"""The QEMU driver's disks through a real qemu-img, with qemu_img_args placed where Packer places them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from factory.artifact import compact
from factory.artifact.model import DiskFormat
from factory.errors import FactoryError
from factory.machine.driver import DiskToolArgs, driver


def _info(path: Path) -> dict[str, object]:
    out = subprocess.run(["qemu-img", "info", "--output=json", str(path)], check=True, capture_output=True,
                         text=True).stdout
    data: dict[str, object] = json.loads(out)
    return data


def _cluster(path: Path) -> int:
    return int(_info(path)["cluster-size"])  # type: ignore[call-overload]


def test_create_convert_and_resize_args_reach_qemu_img(tmp_path: Path) -> None:
    qemu = driver("qemu")
    args = DiskToolArgs.parse({"create": ["-o", "cluster_size=131072"], "convert": ["-o", "cluster_size=262144"],
                               "resize": ["--preallocation=full"]})
    new = tmp_path / "new.qcow2"
    qemu.create_disk(new, 64, DiskFormat.QCOW2, args)
    assert _cluster(new) == 128 * 1024

    overlay = tmp_path / "overlay.qcow2"
    qemu.overlay_disk(new, overlay, args)
    assert _cluster(overlay) == 128 * 1024 and _info(overlay)["backing-filename"] == str(new.resolve())

    copy = tmp_path / "copy.raw"
    raw_args = DiskToolArgs(convert=("-S", "0"), resize=("--preallocation=full",))
    qemu.copy_disk(new, copy, DiskFormat.RAW, 96, raw_args)
    assert _info(copy)["virtual-size"] == 96 * 1024 * 1024
    # -S 0 writes the copied 64 MiB and --preallocation=full the 32 the resize added; plain calls leave holes.
    assert copy.stat().st_blocks * 512 >= 96 * 1024 * 1024
    sparse = tmp_path / "sparse.raw"
    qemu.copy_disk(new, sparse, DiskFormat.RAW, 96)
    assert sparse.stat().st_blocks * 512 < 1024 * 1024

    copied_qcow2 = tmp_path / "copy.qcow2"
    qemu.copy_disk(new, copied_qcow2, DiskFormat.QCOW2, None, args)
    assert _cluster(copied_qcow2) == 256 * 1024

    final = compact(new, tmp_path / "final.qcow2", extra=args.convert)
    assert _cluster(final) == 256 * 1024
    assert _cluster(compact(new, tmp_path / "plain.qcow2")) == 64 * 1024  # qemu-img's default without args


def test_without_args_qemu_img_defaults_apply(tmp_path: Path) -> None:
    disk = tmp_path / "d.qcow2"
    driver("qemu").create_disk(disk, 8, DiskFormat.QCOW2)
    assert _cluster(disk) == 64 * 1024


@pytest.mark.parametrize(("value", "message"), [
    ({"shrink": ["--shrink"]}, "unknown qemu-img subcommand 'shrink'"),
    ({"convert": "-c"}, r"qemu_img_args.convert must be a list of strings"),
    (["create"], "must be a map"),
])
def test_bad_qemu_img_args_name_the_option(value: object, message: str) -> None:
    with pytest.raises(FactoryError, match=message) as err:
        DiskToolArgs.parse(value)
    assert err.value.hint and "qemu_img_args" in err.value.hint


def _io(disk: Path, command: str) -> str:
    return subprocess.run(["qemu-io", "-f", "qcow2", "-c", command, str(disk)], check=True, capture_output=True,
                          text=True).stdout


@pytest.mark.parametrize("fmt", [DiskFormat.QCOW2, DiskFormat.RAW])
def test_compact_disk_writes_the_output_format_and_drops_unused_space(tmp_path: Path, fmt: DiskFormat) -> None:
    qemu = driver("qemu")
    disk = tmp_path / "work.qcow2"
    qemu.create_disk(disk, 64, DiskFormat.QCOW2)
    _io(disk, "write -P 0x5a 1M 64k")
    final = tmp_path / "final"
    qemu.compact_disk(disk, final, fmt, compress=fmt is DiskFormat.QCOW2)
    info = _info(final)
    assert info["format"] == fmt.value and info["virtual-size"] == 64 * 1024 * 1024
    assert final.stat().st_blocks * 512 < 2 * 1024 * 1024  # 64 KiB of data, not a 64 MiB image
    assert subprocess.run(["qemu-img", "compare", str(disk), str(final)], capture_output=True).returncode == 0


def test_snapshot_disk_freezes_the_state_and_keeps_the_disk_writable(tmp_path: Path) -> None:
    """External snapshot: the frozen file keeps what was written before; later writes land in the disk only."""
    qemu = driver("qemu")
    disk, frozen = tmp_path / "work.qcow2", tmp_path / "stage1.qcow2"
    qemu.create_disk(disk, 16, DiskFormat.QCOW2)
    _io(disk, "write -P 0x11 0 64k")
    qemu.snapshot_disk(disk, frozen)
    assert _info(disk)["backing-filename"] == str(frozen.resolve())
    _io(disk, "write -P 0x22 0 64k")
    assert "Pattern verification failed" not in _io(frozen, "read -P 0x11 0 64k")
    assert "Pattern verification failed" not in _io(disk, "read -P 0x22 0 64k")


def test_a_copy_grows_to_disk_size_with_its_data_intact_whatever_its_path(tmp_path: Path) -> None:
    """copy_disk resizes through --image-opts (no flush at exit): a comma in the path must reach qemu-img."""
    qemu = driver("qemu")
    base = tmp_path / "base.qcow2"
    qemu.create_disk(base, 16, DiskFormat.QCOW2)
    _io(base, "write -P 0x5a 1M 2M")
    copy = tmp_path / "a,b" / "copy.qcow2"
    copy.parent.mkdir()
    qemu.copy_disk(base, copy, DiskFormat.QCOW2, 64)
    assert _info(copy)["virtual-size"] == 64 * 1024 * 1024
    subprocess.run(["qemu-img", "check", "-q", str(copy)], check=True)
    for pattern in ("read -P 0x5a 1M 2M", "read -P 0 0 1M", "read -P 0 16M 48M"):  # the data, then the zeros
        out = _io(copy, pattern)
        assert "bytes at offset" in out and "verification failed" not in out, (pattern, out)
