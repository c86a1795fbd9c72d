"""boot_command typed through QMP key events into a real program: GRUB's command line, checked on serial."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from factory.machine.driver import MachineSpec, MediaSpec, driver
from factory.machine.keys import parse_all
from factory.machine.serial import SerialFollower

GRUB_CFG = """serial --unit=0 --speed=115200
terminal_input console serial
terminal_output console serial
echo GRUB-READY
"""


@pytest.fixture
def grub_iso(tmp_path: Path) -> Path:
    root = tmp_path / "iso"
    (root / "boot" / "grub").mkdir(parents=True)
    (root / "boot" / "grub" / "grub.cfg").write_text(GRUB_CFG)
    out = tmp_path / "grub.iso"
    subprocess.run(["grub-mkrescue", "-o", str(out), str(root)], check=True, capture_output=True)
    return out


@pytest.mark.vm
def test_boot_command_reaches_grub_and_screendump_works(grub_iso: Path, tmp_path: Path) -> None:
    spec = MachineSpec(name="grubtest", workdir=tmp_path, serial_log=tmp_path / "serial.log", memory_mb=256,
                       media=(MediaSpec(grub_iso, bootable=True),))
    machine = driver("qemu").machine(spec)
    lines: list[str] = []
    follower = SerialFollower(spec.serial_log, lines.append).start()
    try:
        machine.start()
        assert follower.wait_for("GRUB-READY", 120), "\n".join(lines)
        # Shifted characters ($), a correction with <bs>, two commands: only typing them right prints TYPED-OK.
        machine.send_keys(parse_all(["set v=OK<enter>", "echo TYPED-$vX<bs><enter>"]), 0.02)
        assert follower.wait_for(r"^TYPED-OK$", 60), "\n".join(lines)
        shot = machine.screendump(tmp_path / "screen.png")
        assert shot is not None and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        machine.stop()
        follower.stop()
    assert not machine.running()
    assert not any(re.search(r"TYPED-\$vX", line) for line in lines if line.startswith("TYPED"))
