"""`factory build` with the console and device options, through the real CLI and a real QEMU (TCG).

The guest is the GRUB disk of test_build_failures (boots in seconds, never runs sshd): while factory waits for
SSH the test reaches the VM the way a user would — VNC with the password, the extra QMP socket (query-tpm on
the swtpm-backed TPM, the floppy drive) — and GRUB, typed at through boot_command, reads a file from the floppy
and prints it on the serial console. SeaBIOS is loaded as a pflash drive (firmware + use_pflash). Then Ctrl-C:
no qemu, no swtpm, no VNC port lock, no scratch directory may remain.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from fixtures.vnc import rfb_handshake
from test_build_failures import Run, _template, assert_nothing_left, qemu_pids

from factory import fsutil
from factory.machine import ports
from factory.machine.qmp import QmpSession

FACTORY = [sys.executable, "-m", "factory"]


def swtpm_pids(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if (cmd.startswith(b"swtpm") or b"/swtpm\0" in cmd) and marker.encode() in cmd:
                pids.append(int(entry.name))
    return pids


@pytest.mark.vm
def test_vnc_qmp_tpm_floppy_pflash_in_a_real_build_then_ctrl_c(tmp_path: Path) -> None:
    name = f"console-{uuid.uuid4().hex[:8]}"
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "answers").mkdir()
    (tmp_path / "t" / "answers" / "unattend.xml").write_text("<unattend/>\n")
    extra = f"""
  firmware          = "/usr/share/seabios/bios-256k.bin"
  use_pflash        = true
  vtpm              = true
  vnc_use_password  = true
  vnc_password      = "s3cret"
  vnc_port_min      = 5900
  vnc_port_max      = 6000
  qmp_enable        = true
  qmp_socket_path   = "{tmp_path}/user.monitor"
  serial_log        = "serial.log"
  floppy_files      = ["answers/*.xml"]
  floppy_dirs       = ["answers"]
  floppy_label      = "answers"
  floppy_content    = {{ "HELLO.TXT" = "FLOPPY-SEEN-BY-{{{{ .Name }}}}" }}
  boot_wait         = "1s"
  boot_command      = ["insmod fat<enter>cat (fd0)/HELLO.TXT<enter>"]
"""
    tpl = _template(tmp_path, name, ssh_timeout="5m", extra=extra)
    run = Run(tpl, tmp_path / "cache")
    run.wait_for("waiting up to .* for SSH", 180)
    text = run.text
    assert "s3cret" not in text
    vnc = re.search(r"connect via VNC to vnc://127\.0\.0\.1:(\d+) with the password from vnc_password", text)
    assert vnc, text
    port = int(vnc.group(1))
    assert rfb_handshake(port, "s3cret")[1:] == ([2], 0)
    assert rfb_handshake(port, "nope")[2] != 0
    assert f"QMP socket for you (qmp_enable): {tmp_path}/user.monitor" in text
    user = QmpSession("user")
    user.connect(tmp_path / "user.monitor")
    try:
        assert user.execute("query-tpm")[0]["options"]["type"] == "emulator"
        floppy = {b["device"]: b for b in user.execute("query-block")}["floppy0"]["inserted"]["file"]
        assert floppy.endswith("/floppy.img")
    finally:
        user.close()
    assert len(swtpm_pids(name)) == 1, "one swtpm for the VM"
    assert all(b"s3cret" not in Path(f"/proc/{pid}/cmdline").read_bytes() for pid in qemu_pids(name))
    serial = tmp_path / "t" / "serial.log"
    run.wait_for("typing the boot command", 60)
    deadline_text = ""
    for _ in range(300):
        deadline_text = serial.read_text(errors="replace") if serial.exists() else ""
        if re.search(rf"^FLOPPY-SEEN-BY-{name}", deadline_text, re.M):
            break
        time.sleep(0.2)
    assert re.search(rf"^FLOPPY-SEEN-BY-{name}", deadline_text, re.M), deadline_text[-2000:]

    run.proc.send_signal(signal.SIGINT)
    assert run.finish() == 130, run.text
    assert_nothing_left(tmp_path, name, run.text)
    assert swtpm_pids(name) == [], "swtpm survived the build"
    _assert_lock_not_held_by(ports.lock_path(int(port)), run.proc.pid, name)
    assert not (tmp_path / "user.monitor").exists()


def _assert_lock_not_held_by(lock: Path, pid: int, name: str) -> None:
    """The build released its port lock. Port locks are host-wide, shared with concurrent test builds (so their
    ports never collide), and one of them may take the freed port at once: a holder is only a failure when it
    is the build's own process or one started for its VM."""
    fd = fsutil.try_lock(lock)
    if fd is not None:
        os.close(fd)
        return
    listing = json.loads(subprocess.run(["lslocks", "--json", "-o", "PID,PATH"], capture_output=True,
                                        text=True, check=True).stdout)
    holders = [int(entry["pid"]) for entry in listing["locks"] if entry.get("path") == str(lock)]
    for holder in holders:
        cmdline = Path(f"/proc/{holder}/cmdline").read_bytes() if Path(f"/proc/{holder}").exists() else b""
        assert holder != pid and name.encode() not in cmdline, f"the port lock {lock} is still held by {holder}"


@pytest.mark.vm
def test_a_sigkilled_factory_takes_qemu_and_swtpm_with_it(tmp_path: Path) -> None:
    name = f"kill9-{uuid.uuid4().hex[:8]}"
    run = Run(_template(tmp_path, name, ssh_timeout="5m", extra="vtpm = true"), tmp_path / "cache")
    run.wait_for("VM started", 120)
    assert qemu_pids(name) and swtpm_pids(name)
    run.proc.kill()                                   # no cleanup can run: the kernel must end the children
    run.finish()
    try:
        for _ in range(50):
            if not qemu_pids(name) and not swtpm_pids(name):
                break
            time.sleep(0.1)
        assert qemu_pids(name) == [] and swtpm_pids(name) == []
    finally:                                          # this test's own leftovers, if the assertion failed
        for pid in qemu_pids(name) + swtpm_pids(name):
            os.kill(pid, signal.SIGKILL)
        for scratch in Path("/tmp").glob(f"factory-{name}-*"):   # what only a cleanup could have removed
            shutil.rmtree(scratch)


@pytest.mark.parametrize(("extra", "message"), [
    # checked when the template loads: the message names file:line
    ('vnc_use_password = true\n  vnc_password = "123456789"', r"t\.pkr\.hcl:\d+.*vnc_password is 9 bytes long"),
    ("vnc_port_min = 5800", r"t\.pkr\.hcl:\d+.*vnc_port_min '5800': must be from 5900 to 65535"),
    ('floppy_label = "much-too-long"', r"t\.pkr\.hcl:\d+.*floppy_label 'much-too-long'"),
    ('tpm_device_type = "tpm-tiss"', r"(?s)t\.pkr\.hcl:\d+.*did you mean 'tpm-tis'"),
    # checked by the build before the VM starts
    ("vnc_port_min = 5990\n  vnc_port_max = 5980", r"t\.pkr\.hcl:\d+.*vnc_port_min 5990 is above vnc_port_max 5980"),
    ('floppy_files = ["missing.xml"]', r"floppy_files: 'missing\.xml' does not exist"),
    ('floppy_files = ["big.bin"]', r"floppy content too large: 2,000,000 bytes"),
])
def test_bad_console_options_fail_before_the_vm_with_one_clear_error(tmp_path: Path, extra: str,
                                                                     message: str) -> None:
    name = f"bad-{uuid.uuid4().hex[:8]}"
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "big.bin").write_bytes(b"\1" * 2_000_000)
    run = Run(_template(tmp_path, name, ssh_timeout="5m", extra=extra), tmp_path / "cache")
    assert run.finish() == 1, run.text
    assert re.search(message, run.text), run.text
    assert "Traceback" not in run.text and "123456789" not in run.text
    assert qemu_pids(name) == [] and "VM started" not in run.text
    assert not list(Path("/tmp").glob(f"factory-{name}-*"))
