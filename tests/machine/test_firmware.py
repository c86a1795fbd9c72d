"""OVMF discovery from QEMU's firmware descriptors, proven by booting the firmware."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.vm import boot_until, firmware_args

from factory.machine.firmware import find_uefi


def test_find_uefi_reads_descriptors_and_returns_existing_files() -> None:
    fw = find_uefi()
    assert fw.code.is_file() and fw.vars_template.is_file() and not fw.secure_boot


def test_writable_vars_is_a_copy(tmp_path: Path) -> None:
    fw = find_uefi()
    copy = fw.writable_vars(tmp_path)
    assert copy.read_bytes() == fw.vars_template.read_bytes() and copy != fw.vars_template


@pytest.mark.vm
def test_found_firmware_really_boots_to_the_uefi_shell(tmp_path: Path) -> None:
    # With no bootable media OVMF reaches its boot manager / shell and prints to the serial console.
    result = boot_until(firmware_args("uefi", tmp_path), r"(Shell>|BdsDxe|UEFI Interactive Shell)", 120, tmp_path)
    assert result.matched, result.log[-2000:]
