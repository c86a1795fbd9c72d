"""Parallel builds on real QEMU (TCG): two GRUB guests (tests/fixtures/grubvm.py: they boot in seconds and never
run sshd) built at once by one `factory build`. Both fail at their SSH timeout, apart: each with its own SSH
port, screenshot and serial log, and the streams (-machine-readable on stdout, --events, --report) hold both;
nothing is left running or on disk."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from fixtures.grubvm import grub_image, grub_source


def _qemu_running(prefix: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmd and b"qemu-system" in cmd[0] and any(prefix.encode() in a for a in cmd):
                found.append(entry.name)
    return found


@pytest.mark.vm
def test_two_qemu_builds_at_once_fail_apart_with_their_own_ports_screens_and_report(tmp_path: Path) -> None:
    name = f"par-{uuid.uuid4().hex[:8]}"
    image = grub_image(tmp_path)
    options = """ssh_username  = "nobody"
  ssh_timeout   = "4s"
  host_port_min = 47100
  host_port_max = 47200
  boot_wait     = "1s"
  boot_command  = ["echo BOOTCMD-$${USER}OK<enter>"]"""
    tpl = tmp_path / "t.pkr.hcl"
    tpl.write_text(grub_source(image.name, f"{name}-1", options).replace('"qemu" "g"', '"qemu" "g1"')
                   + grub_source(image.name, f"{name}-2", options).replace('"qemu" "g"', '"qemu" "g2"')
                   + 'build { sources = ["source.qemu.g1", "source.qemu.g2"] }\n')
    env = {**os.environ, "FACTORY_CACHE_DIR": str(tmp_path / "cache"), "COLUMNS": "400"}
    proc = subprocess.run([sys.executable, "-m", "factory", "build", "-machine-readable", "--events", "ev.jsonl",
                           "--report", "r.html", "t.pkr.hcl"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    evs = [json.loads(line) for line in (tmp_path / "ev.jsonl").read_text().splitlines()]
    builds = ["qemu.g1", "qemu.g2"]
    assert sorted(e["build"] for e in evs if e["type"] == "build-failed") == builds
    started = [e["time"] for e in evs if e["type"] == "build-started"]
    ended = [e["time"] for e in evs if e["type"] == "build-failed"]
    assert max(started) < min(ended), "the two builds did not run at the same time"
    ports = {b: {m for e in evs if e["build"] == b for m in re.findall(r"127\.0\.0\.1:(\d+)", e.get("message", ""))}
             for b in builds}
    assert ports["qemu.g1"] and ports["qemu.g2"] and not ports["qemu.g1"] & ports["qemu.g2"], ports
    shots = [e["data"]["screenshot"] for e in evs if "screenshot" in e.get("data", {})]
    assert len(set(shots)) == 2, shots
    page = (tmp_path / "r.html").read_text()
    for shot in shots:
        assert base64.b64encode(Path(shot).read_bytes()).decode() in page
    assert page.count("BOOTCMD-OK") >= 2  # each build's serial tail
    assert ",,error-count,2" in proc.stdout and "qemu.g1,error," in proc.stdout and "qemu.g2,error," in proc.stdout
    assert _qemu_running(name) == []
    assert not list(Path("/tmp").glob(f"factory-{name}-*")), "a scratch directory survived"
    assert not list(tmp_path.glob(".output-*")) and not list(tmp_path.glob("output-*"))
