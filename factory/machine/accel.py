"""Accelerator probe: does KVM really run a guest here, or must we emulate (TCG)?

Packer trusts that /dev/kvm opens; on nested hosts the device exists but guests hang forever, which users then
debug as "SSH timeouts". factory boots a real Linux kernel under KVM with a short timeout and waits for its
first console line. The verdict is cached per QEMU version, host kernel and boot, so only the first build
after a boot pays; whether /dev/kvm exists and opens is checked on every build.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import platform
import subprocess
import tempfile
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from factory import events, paths
from factory.errors import FactoryError
from factory.fsutil import atomic_path
from factory.run import run, which

PROBE_TIMEOUT = 8.0
# How much slower emulation is than KVM for boot-bound waits (ssh_timeout, shutdown_timeout, install).
TCG_TIMEOUT_FACTOR = 4.0
# Kernels the probe can boot: the Debian installer's netboot kernel (in APT_PACKAGES), else the host's own.
KERNEL_CANDIDATES = ("/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64/linux",
                     "/boot/vmlinuz-*", "/boot/vmlinuz")
MARKER = b"Linux version"

# Fallback payload when no kernel is installed: a boot sector that prints FACTORY-PROBE-OK on COM1 and exits
# through isa-debug-exit. Weaker (real mode only) but still a real boot.
_SECTOR_CODE = bytes([0x31, 0xC0, 0x8E, 0xD8, 0xFC, 0xBA, 0xF8, 0x03, 0xBE, 0x1B, 0x7C, 0xAC, 0x84, 0xC0,
                      0x74, 0x03, 0xEE, 0xEB, 0xF8, 0xB0, 0x10, 0xE6, 0xF4, 0xFA, 0xF4, 0xEB, 0xFD])
SECTOR_MARKER = b"FACTORY-PROBE-OK"


class Accel(StrEnum):
    KVM = "kvm"
    TCG = "tcg"


@dataclass(frozen=True)
class Verdict:
    """The accelerator to use, why, and the factor by which boot-bound timeouts are scaled."""

    accel: Accel
    reason: str
    cached: bool = False

    @property
    def timeout_factor(self) -> float:
        return TCG_TIMEOUT_FACTOR if self.accel is Accel.TCG else 1.0

    @property
    def fallback_notice(self) -> str:
        """The loud message for an automatic fall-back to TCG."""
        return (f"KVM is not usable ({self.reason}): falling back to TCG emulation, which is 10-50x slower; "
                f"boot and SSH timeouts are scaled x{TCG_TIMEOUT_FACTOR:g}"
                + (" (cached verdict)" if self.cached else ""))


def qemu_version(binary: str = "qemu-system-x86_64") -> str:
    out = run([binary, "--version"]).stdout.decode(errors="replace")
    return out.splitlines()[0].strip() if out else "unknown"


def probe_kernel() -> Path | None:
    for pattern in KERNEL_CANDIDATES:
        for found in sorted(glob.glob(pattern), reverse=True):
            if os.access(found, os.R_OK):
                return Path(found)
    return None


def _boot_id() -> str:
    """This boot of the host: KVM may work after a reboot (nested virtualisation enabled, a module loaded)."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def _cache_file(binary: str) -> Path:
    key = f"{qemu_version(binary)}|{platform.release()}|{probe_kernel()}|{_boot_id()}"
    import hashlib

    return paths.cache_dir("accel") / f"{hashlib.sha256(key.encode()).hexdigest()[:16]}.json"


def boots_with(accel: str, *, binary: str = "qemu-system-x86_64", timeout: float = PROBE_TIMEOUT) -> tuple[bool, str]:
    """Boot the probe payload with accel; (True, detail) when its console printed the marker in time."""
    kernel = probe_kernel()
    with tempfile.TemporaryDirectory(prefix="factory-probe-") as tmp:
        log = Path(tmp, "serial.log")
        argv = [which(binary), "-accel", accel, "-m", "256", "-display", "none", "-nodefaults",
                "-no-user-config", "-monitor", "none", "-no-reboot", "-serial", f"file:{log}"]
        if kernel:
            argv += ["-kernel", str(kernel), "-append", "console=ttyS0 earlyprintk=ttyS0 panic=-1"]
            marker = MARKER
        else:
            sector = Path(tmp, "probe.img")
            sector.write_bytes((_SECTOR_CODE + SECTOR_MARKER + b"\r\n\0").ljust(510, b"\0") + b"\x55\xaa")
            argv += ["-drive", f"file={sector},format=raw,if=floppy",
                     "-device", "isa-debug-exit,iobase=0xf4,iosize=4"]
            marker = SECTOR_MARKER
        start = time.monotonic()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        try:
            while time.monotonic() - start < timeout:
                if log.exists() and marker in log.read_bytes():
                    return True, f"{accel} booted the probe in {time.monotonic() - start:.1f}s"
                if proc.poll() is not None:
                    break
                time.sleep(0.1)
            if log.exists() and marker in log.read_bytes():
                return True, f"{accel} booted the probe in {time.monotonic() - start:.1f}s"
        finally:
            proc.kill()
            _, err = proc.communicate()
        if proc.returncode not in (None, -9) and proc.returncode != 0 and err:
            tail = err.decode(errors="replace").strip().splitlines()[-1:]
            return False, f"qemu -accel {accel} failed: {' '.join(tail)}"
        return False, f"a guest under {accel} printed nothing within {timeout:g}s (it hangs)"


def _kvm_present() -> tuple[bool, str]:
    """The checks that cost nothing, made on every build (never cached: a user added to the kvm group, a module
    loaded, takes effect at once)."""
    if not os.path.exists("/dev/kvm"):
        return False, "/dev/kvm does not exist (no hardware virtualisation, or the kvm module is not loaded)"
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False, "/dev/kvm is not accessible to this user (add yourself to the 'kvm' group)"
    return True, ""


def _kvm_usable() -> tuple[bool, str]:
    ok, why = _kvm_present()
    return boots_with("kvm") if ok else (ok, why)


def resolve(requested: str, *, binary: str = "qemu-system-x86_64", announce: bool = True) -> Verdict:
    """Turn the template's accelerator into a verdict: 'auto'/'' probes (cached), 'kvm' must work, 'tcg' is taken.

    An automatic fall-back to TCG is announced as a notice event unless announce=False (the caller says it).
    """
    requested = (requested or "auto").lower()
    if requested in ("tcg", "none"):
        return Verdict(Accel.TCG, "requested")
    if requested not in ("auto", "kvm"):
        raise FactoryError(f"accelerator {requested!r} is not supported by factory's QEMU driver",
                           hint="use auto, kvm or tcg")
    if requested == "kvm":
        ok, why = _kvm_usable()
        if not ok:
            raise FactoryError(f"accelerator = \"kvm\" does not work on this host: {why}",
                               hint='use accelerator = "auto" to fall back to (slow) emulation, or fix KVM')
        return Verdict(Accel.KVM, why)
    verdict = _auto(binary)
    if announce and verdict.accel is Accel.TCG:
        events.notice(verdict.fallback_notice)
    return verdict


def _auto(binary: str) -> Verdict:
    present, why = _kvm_present()
    if not present:
        return Verdict(Accel.TCG, why)
    cache = _cache_file(binary)
    verdict: Verdict | None = None
    if cache.exists():
        try:
            data = json.loads(cache.read_text())
            verdict = Verdict(Accel(data["accel"]), data["reason"], cached=True)
        except (ValueError, KeyError, OSError):
            verdict = None
    if verdict is None:
        ok, why = boots_with("kvm", binary=binary)
        verdict = Verdict(Accel.KVM if ok else Accel.TCG, why)
        with contextlib.suppress(OSError, FactoryError), atomic_path(cache) as tmp:  # the cache is optional
            tmp.write_text(json.dumps({"accel": verdict.accel.value, "reason": why}))
    return verdict
