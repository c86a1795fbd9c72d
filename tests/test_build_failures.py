"""`factory build` failures through the real CLI and a real QEMU (TCG): SSH never comes up, qemu dies, Ctrl-C.

The guest is GRUB booted from a grub-mkrescue image used as a disk image: it boots in seconds, has a real
command line for boot_command, and never runs sshd — exactly what these failure paths need.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
from fixtures.grubvm import BUILD, grub_image, grub_source

from factory import fsutil
from factory.machine import ports

FACTORY = [sys.executable, "-m", "factory"]


def _template(tmp: Path, name: str, *, ssh_timeout: str, extra: str = "") -> Path:
    (tmp / "t").mkdir(exist_ok=True)
    image = grub_image(tmp / "t")
    path = tmp / "t" / "t.pkr.hcl"
    options = f"""ssh_username  = "nobody"
  ssh_timeout   = "{ssh_timeout}"
  host_port_min = 47100
  host_port_max = 47200
  {extra}"""
    path.write_text(grub_source(image.name, name, options) + BUILD)
    return path


class Run:
    """factory build in a subprocess, its stderr collected live so the test can act at a given moment."""

    def __init__(self, template: Path, cache: Path, *flags: str) -> None:
        # One runtime dir for every test process, so port locks are shared across xdist workers as across builds.
        env = {**os.environ, "FACTORY_CACHE_DIR": str(cache), "COLUMNS": "400"}
        self.proc = subprocess.Popen([*FACTORY, "build", *flags, str(template)], cwd=template.parent, env=env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, timeout: float) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(re.search(pattern, line) for line in self.lines):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        pytest.fail(f"never saw {pattern!r}:\n" + self.text)

    def finish(self, timeout: float = 120) -> int:
        code = self.proc.wait(timeout)
        self._t.join(5)
        return code

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def qemu_pids(name: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if cmd and b"qemu-system" in cmd[0] and name.encode() in cmd:
                pids.append(int(entry.name))
    return pids


def assert_nothing_left(tmp: Path, name: str, text: str) -> None:
    assert qemu_pids(name) == [], "a qemu process survived"
    assert not list((tmp / "t").glob(".output-*")), "a partial output directory survived"
    assert not (tmp / "t" / "output-g").exists()
    assert not list(Path("/tmp").glob(f"factory-{name}-*")), "the scratch directory survived"
    port = re.search(r"127\.0\.0\.1:(\d+)", text)
    assert port, text
    lock = ports.lock_path(int(port.group(1)))
    fd = fsutil.try_lock(lock)
    if fd is not None:
        os.close(fd)
        return
    # Held: a test running beside this one may have leased the freed port since. Only a holder that is gone (the
    # lock lives on in an inherited descriptor) or that belongs to this build means the lease leaked.
    holders = flock_holders(lock)
    assert holders, "the port lock is held but /proc/locks names no holder"
    for pid in holders:
        cmdline = Path(f"/proc/{pid}/cmdline")
        assert cmdline.exists(), f"the port lock is still held, by a process that is gone ({pid})"
        assert str(tmp).encode() not in cmdline.read_bytes(), f"the port lock is still held by this build ({pid})"


def flock_holders(path: Path) -> list[int]:
    """PIDs that hold a flock on path, from /proc/locks ("1: FLOCK ADVISORY WRITE PID MAJ:MIN:INODE 0 EOF");
    waiters ("1: -> FLOCK ...") hold nothing."""
    inode = str(path.stat().st_ino)
    holders = []
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if len(fields) > 5 and fields[1] == "FLOCK" and fields[5].rsplit(":", 1)[-1] == inode:
            holders.append(int(fields[4]))
    return holders

@pytest.mark.vm
def test_ssh_never_comes_up_names_causes_and_keeps_screenshot_and_serial(tmp_path: Path) -> None:
    name = f"nossh-{uuid.uuid4().hex[:8]}"
    tpl = _template(tmp_path, name, ssh_timeout="4s",
                    extra='boot_wait = "1s"\n  boot_command = ["echo BOOTCMD-$${USER}OK<enter>"]')
    run = Run(tpl, tmp_path / "cache")
    code = run.finish()
    text = run.text
    assert code == 1, text
    assert "likely causes" in text and "TCG" in text and "ssh_timeout" in text
    kept = re.search(r"kept for diagnosis: (\S+\.png), (\S+\.serial\.log)", text)
    assert kept, text
    png, log = Path(kept.group(1)), Path(kept.group(2))
    assert png.read_bytes()[:4] == b"\x89PNG"
    # The boot command was typed through QMP into GRUB: its output (not the echoed command) is in the log.
    assert re.search(r"^BOOTCMD-OK\r?$", log.read_text(errors="replace"), re.M), log.read_text(errors="replace")
    assert "Traceback" not in text
    assert "no boot record" not in text  # the GRUB image boots: its first sector ends in 55 AA
    assert_nothing_left(tmp_path, name, text)


@pytest.mark.vm
def test_a_disk_image_with_nothing_to_boot_is_named_at_once_and_first_among_the_causes(tmp_path: Path) -> None:
    name = f"noboot-{uuid.uuid4().hex[:8]}"
    (tmp_path / "t").mkdir()
    junk = bytearray(os.urandom(1 << 20))
    junk[510:512] = b"\x12\x34"  # not 55 AA: what a wrong file (random bytes, a bare filesystem) looks like
    (tmp_path / "t" / "junk.img").write_bytes(bytes(junk))
    tpl = tmp_path / "t" / "t.pkr.hcl"
    tpl.write_text(grub_source("junk.img", name, 'ssh_username = "nobody"\n  ssh_timeout = "2s"') + BUILD)
    run = Run(tpl, tmp_path / "cache")
    run.wait_for(r"warning: .*the disk image \S+junk\.img has no boot record", 60)
    code = run.finish()
    text = run.text
    assert code == 1, text
    causes = re.search(r"likely causes: (.*)", text)
    assert causes and causes.group(1).startswith("the disk image "), text
    assert "no boot record" in causes.group(1).split(";")[0] and "screenshot" in causes.group(1).split(";")[0]
    assert "Traceback" not in text
    assert_nothing_left(tmp_path, name, text)


@pytest.mark.vm
def test_qemu_dying_is_reported_with_its_command_and_json_events(tmp_path: Path) -> None:
    name = f"dies-{uuid.uuid4().hex[:8]}"
    run = Run(_template(tmp_path, name, ssh_timeout="5m"), tmp_path / "cache", "--events", "-")
    run.wait_for('"step": "connect"', 120)
    for pid in qemu_pids(name):
        os.kill(pid, signal.SIGKILL)
    code = run.finish()
    assert code == 1, run.text
    assert re.search(r"qemu exited with code -9 unexpectedly", run.text), run.text
    events = [json.loads(line) for line in run.lines if line.startswith("{")]
    started = [e["step"] for e in events if e["type"] == "step-started"]
    assert started[:3] == ["output", "accelerator", "media"] and "connect" in started
    assert all(len(e["stage_id"]) == 64 for e in events if e["type"] == "step-started")
    assert any(e["type"] == "step-failed" and e["step"] == "connect" for e in events)
    assert any(e["type"] == "build-failed" for e in events)
    assert_nothing_left(tmp_path, name, run.text)


@pytest.mark.vm
def test_a_guest_kernel_panic_ends_the_wait_for_ssh_at_once(tmp_path: Path) -> None:
    # A real kernel (debian-installer's) booted directly with no initrd: it cannot mount a root and panics, then
    # sits there (panic=0). Without reading its console the build would wait out ssh_timeout (x4 under TCG).
    from fixtures.isos import KERNEL

    name = f"panic-{uuid.uuid4().hex[:8]}"
    qemuargs = f'qemuargs = [["-kernel", "{KERNEL}"], ["-append", "console=ttyS0,115200 panic=0 no_timer_check"]]'
    tpl = _template(tmp_path, name, ssh_timeout="30m", extra=qemuargs)
    started = time.monotonic()
    run = Run(tpl, tmp_path / "cache")
    code = run.finish(timeout=600)
    took = time.monotonic() - started
    text = run.text
    assert code == 1, text
    assert re.search(r"the guest kernel panicked: VFS: Unable to mount root fs on unknown-block\(0,0\)", text), text
    assert "timed out" not in text and "Traceback" not in text and "likely causes" not in text
    kept = re.search(r"kept for diagnosis: \S+\.png, (\S+\.serial\.log)", text)
    assert kept and "Kernel panic - not syncing" in Path(kept.group(1)).read_text(errors="replace"), text
    assert took < 300, f"the build waited {took:.0f}s after the panic"
    assert_nothing_left(tmp_path, name, text)


@pytest.mark.vm
def test_an_installer_kernel_that_panics_and_reboots_is_not_a_finished_install(tmp_path: Path) -> None:
    # An install runs with -no-reboot, so the VM ends when the installer reboots, as when it is done; a kernel
    # that panics with panic=1 reboots a second later. Its console says which it was.
    from fixtures.isos import KERNEL

    name = f"instpanic-{uuid.uuid4().hex[:8]}"
    (tmp_path / "t").mkdir()
    image = grub_image(tmp_path / "t", "installer.iso")
    tpl = tmp_path / "t" / "t.pkr.hcl"
    tpl.write_text(f"""
source "qemu" "g" {{
  iso_url       = "{image.name}"
  iso_checksum  = "none"
  disk_size     = "64M"
  accelerator   = "tcg"
  headless      = true
  memory        = 256
  vm_name       = "{name}"
  ssh_username  = "nobody"
  ssh_timeout   = "30m"
  host_port_min = 47100
  host_port_max = 47200
  qemuargs      = [["-kernel", "{KERNEL}"], ["-append", "console=ttyS0,115200 panic=1 no_timer_check"]]
}}
""" + BUILD)
    run = Run(tpl, tmp_path / "cache")
    code = run.finish(timeout=600)
    text = run.text
    assert code == 1, text
    assert "the guest kernel panicked: VFS: Unable to mount root fs" in text, text
    assert "installer finished" not in text and "Traceback" not in text
    assert re.search(r"step 'install' failed", text), text
    assert qemu_pids(name) == []


@pytest.mark.vm
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_interrupt_mid_build_leaves_nothing_behind(tmp_path: Path, sig: signal.Signals) -> None:
    name = f"intr-{uuid.uuid4().hex[:8]}"
    run = Run(_template(tmp_path, name, ssh_timeout="5m"), tmp_path / "cache")
    run.wait_for("waiting up to .* for SSH", 120)
    assert qemu_pids(name), "qemu should be running mid-build"
    if sig == signal.SIGINT:  # on request: SIGUSR1 saves a screendump of the running VM
        run.proc.send_signal(signal.SIGUSR1)
        run.wait_for(r"screendump: \S+\.png", 60)
        shot = re.search(r"screendump: (\S+\.png)", run.text)
        assert shot and Path(shot.group(1)).read_bytes()[:4] == b"\x89PNG"
    run.proc.send_signal(sig)
    code = run.finish()
    assert code == 130, run.text
    assert "cleaning up" in run.text
    assert_nothing_left(tmp_path, name, run.text)
