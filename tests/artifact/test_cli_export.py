"""`factory export` end to end: real process, real files, one clear message on bad input."""

from __future__ import annotations

import subprocess
import sys
import tarfile
from pathlib import Path

import pytest


def _factory(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "factory", *args], capture_output=True, text=True, timeout=300)


def test_export_ova_with_hardware(boot_qcow2: tuple[Path, str], tmp_path: Path) -> None:
    disk, _ = boot_qcow2
    out = tmp_path / "vm.ova"
    proc = _factory("export", str(disk), "--format", "ova", "-o", str(out), "--cpus", "2", "--memory", "3072",
                    "--firmware", "efi")
    assert proc.returncode == 0, proc.stderr
    assert f"wrote {out}" in proc.stderr
    with tarfile.open(out) as tar:
        ovf = tar.extractfile("vm.ovf").read().decode()  # type: ignore[union-attr]
    assert "<rasd:VirtualQuantity>3072</rasd:VirtualQuantity>" in ovf and 'vmw:value="efi"' in ovf


@pytest.mark.parametrize(("args", "message"), [
    (["missing.qcow2", "--format", "ova"], "does not exist"),
    (["DISK", "--format", "ovf"], "unknown export format 'ovf'"),
    (["DISK", "--format", "ova", "--firmware", "uefi"], "is not bios or efi"),
    (["NOTES", "--format", "vmdk"], "is not a disk image"),
])
def test_bad_input_is_one_message_without_traceback(args: list[str], message: str, boot_disk: tuple[Path, str],
                                                    tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not a disk\n")
    argv = [str(boot_disk[0]) if a == "DISK" else str(notes) if a == "NOTES" else
            str(tmp_path / a) if a.endswith(".qcow2") else a for a in args]
    proc = _factory("export", *argv, "-o", str(tmp_path / "out.bin"))
    assert proc.returncode == 1
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert proc.stderr.count("error:") == 1
    assert not list(tmp_path.glob("*out.bin*"))


@pytest.mark.parametrize(("args", "message"), [
    (["--name", "../../evil"], "--name '../../evil' contains '/'"),   # OVA members would climb out when unpacked
    (["--name", "a/b"], "--name 'a/b' contains '/'"),
    (["--name", ".."], "--name '..' is '.' or '..'"),
    (["--memory", "99999999999999999999"], "--memory 99999999999999999999 MiB is more than a VM can have"),
    (["--cpus", "5000"], "--cpus 5000 is more than a VM can have"),
    (["--hw-version", "-5"], "--hw-version -5 is not a VMware hardware version"),
])
def test_bad_descriptor_values_are_refused_before_writing(args: list[str], message: str, tmp_path: Path) -> None:
    disk = tmp_path / "disk.raw"
    disk.write_bytes(bytes(1 << 20))
    proc = _factory("export", str(disk), "--format", "ova", "-o", str(tmp_path / "out.ova"), *args)
    assert proc.returncode == 1, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr and "hint:" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk.raw"]
