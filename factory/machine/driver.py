"""The hypervisor-neutral machine interface the step runner talks to; drivers register by name.

A driver prepares disks and creates Machines from a MachineSpec. Nothing in the spec is specific to one
hypervisor except `hypervisor_args` (QEMU's qemuargs, VirtualBox's vboxmanage), which only its driver reads.
"""

from __future__ import annotations

import re
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from factory.artifact.model import DiskFormat, Firmware
from factory.errors import FactoryError
from factory.machine.keys import Action
from factory.machine.ports import PortLease
from factory.machine.tpm import TpmSpec
from factory.machine.vnc import VncSpec


@dataclass(frozen=True)
class DiskToolArgs:
    """Extra arguments for the driver's disk tool (qemu-img for QEMU: Packer's qemu_img_args), per operation.

    They go after the tool's own options and before the file names, as Packer places them."""

    create: tuple[str, ...] = ()
    convert: tuple[str, ...] = ()
    resize: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: object, *, option: str = "qemu_img_args") -> DiskToolArgs:
        """From `{ create = [...], convert = [...], resize = [...] }`; unknown keys or non-lists are errors."""
        hint = 'e.g. qemu_img_args { convert = ["-o", "preallocation=full"], resize = ["--shrink"] }'
        if not isinstance(value, dict):
            raise FactoryError(f"{option} must be a map of create/convert/resize to argument lists", hint=hint)
        known = ("create", "convert", "resize")
        args: dict[str, tuple[str, ...]] = {}
        for key, items in value.items():
            if key not in known:
                raise FactoryError(f"{option}: unknown qemu-img subcommand {key!r}",
                                   hint="keys: create, convert, resize; " + hint)
            if not isinstance(items, list | tuple) or not all(isinstance(a, str) for a in items):
                raise FactoryError(f"{option}.{key} must be a list of strings, got {items!r}", hint=hint)
            args[key] = tuple(items)
        return cls(**args)


NO_DISK_ARGS = DiskToolArgs()


@dataclass(frozen=True)
class DiskSpec:
    path: Path
    format: DiskFormat = DiskFormat.QCOW2
    interface: str = "virtio"            # virtio | virtio-scsi | scsi | ide | sata
    cache: str = "writeback"
    discard: str = "ignore"
    detect_zeroes: str = "off"


@dataclass(frozen=True)
class MediaSpec:
    """Read-only media: an installer ISO (bootable) or a seed (cidata) image."""

    path: Path | str                     # a file, or a URL the hypervisor reads itself (iso_skip_cache)
    interface: str = "virtio-scsi"       # virtio-scsi | ide | sata | virtio (raw virtio-blk)
    bootable: bool = False


@dataclass(frozen=True)
class DirectBoot:
    kernel: Path
    initrd: Path | None
    cmdline: str


@dataclass(frozen=True)
class MachineSpec:
    """Everything a driver needs to start one VM."""

    name: str
    workdir: Path                        # sockets, logs (driver's scratch)
    serial_log: Path
    accel: str = "tcg"
    cpus: int = 1
    topology: tuple[int, int, int] | None = None   # sockets, cores, threads
    memory_mb: int = 1024
    machine_type: str = "pc"
    cpu_model: str = ""
    firmware: Firmware = Firmware.BIOS
    efi_code: Path | None = None
    efi_vars: Path | None = None
    disks: tuple[DiskSpec, ...] = ()
    media: tuple[MediaSpec, ...] = ()
    direct_boot: DirectBoot | None = None
    net_device: str = "virtio-net"
    ssh_host_port: int | None = None     # forward host 127.0.0.1:port to guest :22 (None: no forwarding)
    guest_ssh_port: int = 22
    headless: bool = True
    vga: str = ""                        # display adapter model ("" = the hypervisor's default)
    emulator: str = ""                   # the hypervisor binary ("" = the driver's default)
    no_reboot: bool = False              # a guest reboot ends the VM (install phase)
    hypervisor_args: tuple[tuple[str, ...], ...] = ()
    display: str = ""                    # display backend when not headless ("" = the hypervisor's default)
    use_default_display: bool = False    # pass no display option at all
    vnc: VncSpec | None = None
    user_qmp: Path | None = None         # an extra monitor socket for the user (the driver keeps its own)
    tpm: TpmSpec | None = None
    floppy: Path | None = None           # a floppy image attached as the first floppy drive
    bios: Path | None = None             # firmware file (`firmware`); as a pflash drive when bios_pflash
    bios_pflash: bool = False


class Machine(ABC):
    """A running (or about-to-run) VM."""

    spec: MachineSpec

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def alive(self) -> None:
        """Raise FactoryError (with the hypervisor's last words) if the VM process is gone."""

    @abstractmethod
    def running(self) -> bool: ...

    @abstractmethod
    def wait_poweroff(self, timeout: float) -> bool:
        """Wait until the guest powered off (or the VM ended); False on timeout."""

    @abstractmethod
    def powerdown(self) -> None:
        """Ask the guest to shut down (ACPI power button)."""

    @abstractmethod
    def stop(self) -> None:
        """End the VM now (idempotent)."""

    @abstractmethod
    def screendump(self, dest: Path) -> Path | None:
        """Save the screen as PNG; None if the VM cannot provide one (it ended)."""

    def vnc_port(self) -> int | None:
        """The port the running VM's VNC server listens on (None: no VNC, or the driver has none)."""
        return None

    @abstractmethod
    def send_keys(self, actions: Sequence[Action], interval: float,
                  interrupted: Callable[[], None] | None = None) -> None:
        """Type parsed boot_command actions, interval seconds between keys."""

    def forward_port(self, guest_port: int, low: int, high: int, *, purpose: str,
                     busy: Callable[[int], None] | None = None) -> PortLease:
        """Forward a free host port in low..high (127.0.0.1) to guest_port of the running VM; busy(port) is told
        about ports found in use. The lease's release() frees factory's lock; the forward ends with the VM."""
        raise FactoryError(f"{purpose}: the {type(self).__name__} driver cannot forward ports after start")


class Driver(ABC):
    """A hypervisor: disk preparation and machines. Subclasses register with `class X(Driver, name="qemu")`."""

    name: ClassVar[str]
    registry: ClassVar[dict[str, type[Driver]]] = {}

    def __init_subclass__(cls, name: str | None = None, **kw: object) -> None:
        super().__init_subclass__(**kw)
        if name:
            cls.name = name
            Driver.registry[name] = cls

    @abstractmethod
    def create_disk(self, path: Path, size_mib: int, fmt: DiskFormat, args: DiskToolArgs = NO_DISK_ARGS) -> None:
        ...

    @abstractmethod
    def overlay_disk(self, base: Path | str, path: Path, args: DiskToolArgs = NO_DISK_ARGS) -> None:
        """A copy-on-write disk on top of base (a file or a URL; base is never written)."""

    @abstractmethod
    def copy_disk(self, base: Path | str, path: Path, fmt: DiskFormat, size_mib: int | None,
                  args: DiskToolArgs = NO_DISK_ARGS) -> None:
        """A full copy of base (a file or a URL) in fmt, grown to size_mib when larger."""

    @abstractmethod
    def machine(self, spec: MachineSpec) -> Machine: ...


def driver(name: str) -> Driver:
    """An instance of the driver registered under name."""
    import factory.machine.qemu  # noqa: F401  (registers the built-in drivers)

    if name not in Driver.registry:
        raise FactoryError(f"no machine driver named {name!r}", hint="available: " + ", ".join(Driver.registry))
    return Driver.registry[name]()


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-Za-z]|[\x00-\x08\x0b-\x1f\x7f]")


class SerialFollower:
    """Follows a serial-console log file in a thread, handing each cleaned line to on_line."""

    def __init__(self, path: Path, on_line: Callable[[str], None], *, offset: int = 0) -> None:
        """offset: where to start reading (the log's size before this VM started: earlier phases are not new)."""
        self.path, self.on_line, self.offset = path, on_line, offset
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name=f"serial-{path.name}", daemon=True)
        self.lines: list[str] = []

    def start(self) -> SerialFollower:
        self._thread.start()
        return self

    def _emit(self, raw: bytes) -> None:
        text = _ANSI.sub("", raw.decode(errors="replace").replace("\r", "")).rstrip()
        if text:
            self.lines.append(text)
            self.on_line(text)

    def _follow(self) -> None:
        pos, buf = self.offset, b""
        while True:
            stopping = self._stop.is_set()
            if self.path.exists():
                with open(self.path, "rb") as fh:
                    fh.seek(pos)
                    chunk = fh.read()
                pos += len(chunk)
                buf += chunk
                *done, buf = buf.split(b"\n")
                for raw in done:
                    self._emit(raw)
            if stopping:
                if buf:
                    self._emit(buf)
                return
            self._stop.wait(0.2)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def wait_for(self, pattern: str, timeout: float) -> bool:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(rx.search(line) for line in list(self.lines)):
                return True
            time.sleep(0.2)
        return False
