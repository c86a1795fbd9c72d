"""The hypervisor-neutral interface the build steps talk to. Drivers register by name; `qemu` is built in.

Everything a build asks of a hypervisor goes through here, so no step knows which one runs the guest:

    Driver (one instance per build; `driver("qemu")`)
      probe(requested) -> Acceleration        accelerator probe: what MachineSpec.accel gets, how much slower
      machine(spec, on_event) -> Machine      define a VM from a MachineSpec (started by Machine.start)
      reserve_port(ports, purpose)            a host port to forward to the guest, named before start
      host_address(ipv6)                      the build host as the guest reaches it ({{ .HTTPIP }})
      create_disk / overlay_disk / copy_disk  disks before the VM runs (copy = convert + grow)
      compact_disk                            the final disk written in its output format, unused space dropped
      snapshot_disk(disk, frozen)             freeze disk's current state into `frozen`; disk stays writable
      cleanup()                               end and remove everything the driver created (idempotent)
      features, forward_host                  what the driver can do; where its port forwards listen
    Machine
      start(), state()/running(), alive()     power state; alive() raises with the hypervisor's last words
      wait_poweroff(t), powerdown(), stop()   graceful shutdown (ACPI), then kill
      send_keys(actions, interval)            boot_command
      screendump(dest), vnc_port()            the screen, for diagnostics and for the user
      ssh_address(guest_port, ports, t)       where the communicator connects: an Endpoint (host, port), which
                                              is a forwarded host port or the guest's own address
      checkpoint(layers, state)               freeze the running disks (and the VM state) for a checkpoint;
                                              a MachineSpec with `incoming` continues from such a state
      events / notify(kind, detail)           power events (powerdown, poweroff, reset, panic) and notices
    The serial log: a driver appends the guest's first serial port to spec.serial_log (SerialFollower reads).

Nothing in the spec is specific to one hypervisor except `hypervisor_args` (QEMU's qemuargs, VirtualBox's
vboxmanage), which only its driver reads. Implementations: `class X(Driver, name="x")` registers X; built-in
drivers live in modules named in BUILTIN and are imported on first use (no import of an implementation here).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import ClassVar, Protocol

from factory.artifact.model import DiskFormat, Firmware
from factory.errors import FactoryError
from factory.machine.keys import Action
from factory.machine.ports import PortLease
from factory.machine.tpm import TpmSpec
from factory.machine.vnc import VncSpec
from factory.schema.values import NO_DISK_ARGS as NO_DISK_ARGS  # the option value types live in the schema
from factory.schema.values import DiskToolArgs as DiskToolArgs


class Feature(StrEnum):
    """What a driver can do beyond starting a guest from disks and media; steps check before relying on one."""

    KEYS = "keys"                        # send_keys (boot_command)
    SCREEN = "screen"                    # screendump
    VNC = "vnc"                          # a VNC server for the user (MachineSpec.vnc)
    USER_MONITOR = "user-monitor"        # an extra monitor socket for the user (MachineSpec.user_qmp)
    TPM = "tpm"                          # an emulated TPM (MachineSpec.tpm)
    FLOPPY = "floppy"                    # MachineSpec.floppy
    DIRECT_BOOT = "direct-boot"          # kernel + initrd + command line (MachineSpec.direct_boot)
    FIRMWARE_FILE = "firmware-file"      # MachineSpec.bios
    CHECKPOINT = "checkpoint"            # Machine.checkpoint: freeze a running machine's disks
    VM_STATE = "vm-state"                # ... and its running state; MachineSpec.incoming starts from it


class Precompaction(Protocol):
    """A compaction of a disk's lower layers that runs while the machine writes its top layer (Driver.precompact)."""

    def finish(self, top: Path, dest: Path) -> str:
        """compact_disk(top, dest) from the layers compacted so far, when they are finished and still under top:
        "" then, else why not (nothing written). Either way the precompaction is over."""

    def cancel(self) -> None:
        """Stop and remove what it wrote (idempotent)."""


@dataclass(frozen=True)
class Acceleration:
    """The driver's verdict on how guests run on this host (its accelerator probe)."""

    name: str                            # what MachineSpec.accel carries ("kvm", "tcg" ...)
    reason: str
    emulated: bool = False               # no hardware virtualisation: guests run 10-50x slower
    timeout_factor: float = 1.0          # boot-bound waits (ssh_timeout, shutdown_timeout) are scaled by it
    fallback_notice: str = ""            # set when an automatic choice fell back to something slower


@dataclass(frozen=True)
class PortRange:
    low: int
    high: int


@dataclass(frozen=True)
class Endpoint:
    """Where the build host reaches a guest port."""

    host: str
    port: int
    forwarded: bool = False              # a host port forwarded into the guest (NAT), not the guest's address

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


class PowerState(StrEnum):
    DEFINED = "defined"                  # created, never started
    RUNNING = "running"
    OFF = "off"                          # the guest powered off, or the machine was stopped
    CRASHED = "crashed"                  # the hypervisor ended without the guest powering off


class MachineEventKind(StrEnum):
    POWERDOWN = "powerdown"              # an ACPI power-button press was delivered
    POWERED_OFF = "powered-off"          # the guest powered off (or asked to reboot under no_reboot)
    RESET = "reset"                      # the guest rebooted
    PANICKED = "panicked"                # the guest reported a kernel panic (pvpanic)
    MESSAGE = "message"                  # something to tell the user (detail), e.g. a busy host port


@dataclass(frozen=True)
class MachineEvent:
    kind: MachineEventKind
    detail: str = ""


EventSink = Callable[[MachineEvent], None]


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
    ssh_host_port: int | None = None     # a host port from Driver.reserve_port to forward to guest_ssh_port
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
    incoming: Path | None = None         # a state Machine.checkpoint saved: the VM continues from it, no boot


@dataclass(frozen=True)
class Layer:
    """One running disk to freeze at a checkpoint: its content at that instant goes to the new file `frozen`,
    which the caller then publishes at `published`. A layering driver (qcow2) moves the machine's writes to a new
    top layer at `next` whose backing file is `published`; others keep writing `active`."""

    active: Path
    frozen: Path
    published: Path
    next: Path


class Machine(ABC):
    """A VM defined from a MachineSpec: started once, stopped once (stop is idempotent)."""

    spec: MachineSpec
    events: EventSink | None = None      # set by Driver.machine: where notify() sends events

    def notify(self, kind: MachineEventKind, detail: str = "") -> None:
        if self.events is not None:
            self.events(MachineEvent(kind, detail))

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def alive(self) -> None:
        """Raise FactoryError (with the hypervisor's last words) if the VM ended unexpectedly."""

    @abstractmethod
    def running(self) -> bool: ...

    def state(self) -> PowerState:
        return PowerState.RUNNING if self.running() else PowerState.OFF

    @abstractmethod
    def wait_poweroff(self, timeout: float) -> bool:
        """Wait until the guest powered off (or the VM ended); False on timeout."""

    @abstractmethod
    def powerdown(self) -> None:
        """Ask the guest to shut down (ACPI power button)."""

    @abstractmethod
    def stop(self) -> None:
        """End the VM now and release what it holds (forwarded ports, sockets); idempotent."""

    @abstractmethod
    def screendump(self, dest: Path) -> Path | None:
        """Save the screen as PNG; None if the VM cannot provide one (it ended, or the driver has no screen)."""

    def vnc_port(self) -> int | None:
        """The port the running VM's VNC server listens on (None: no VNC, or the driver has none)."""
        return None

    @abstractmethod
    def send_keys(self, actions: Sequence[Action], interval: float,
                  interrupted: Callable[[], None] | None = None) -> None:
        """Type parsed boot_command actions, interval seconds between keys."""

    def checkpoint(self, layers: Sequence[Layer], state: Path | None) -> list[Path]:
        """Freeze the running machine's disks (layers, in MachineSpec.disks order) at one instant and, with
        state (Feature.VM_STATE), save its running state into that file at the same instant; it then runs on.
        Returns the path each disk is written at from now on (Layer.next or Layer.active)."""
        raise FactoryError("this machine driver cannot keep checkpoints")

    @abstractmethod
    def ssh_address(self, guest_port: int, ports: PortRange, *, timeout: float) -> Endpoint:
        """Where the host reaches guest_port of the running VM. A driver that forwards binds a host port in
        ports here (unless spec.ssh_host_port was reserved ahead) and holds it until stop(); one that reaches
        the guest directly may wait up to timeout for its address. The same endpoint on every call."""


class Driver(ABC):
    """A hypervisor, one instance per build. Subclasses register with `class X(Driver, name="x")`."""

    name: ClassVar[str]
    registry: ClassVar[dict[str, type[Driver]]] = {}
    features: ClassVar[frozenset[Feature]] = frozenset()
    forward_host: ClassVar[str | None] = None   # where port forwards listen; None: the driver does not forward
    checkpoint_formats: ClassVar[frozenset[DiskFormat]] = frozenset({DiskFormat.QCOW2})  # layerable disks

    def __init_subclass__(cls, name: str | None = None, **kw: object) -> None:
        super().__init_subclass__(**kw)
        if name:
            cls.name = name
            Driver.registry[name] = cls

    def __init__(self) -> None:
        self.machines: list[Machine] = []

    def require(self, feature: Feature, what: str) -> None:
        """A clear error naming the option (what) when this driver cannot do it."""
        if feature not in self.features:
            raise FactoryError(f"{what}: the {self.name} driver has no {feature.value} support",
                               hint="remove the option, or build this source with a driver that has it")

    @abstractmethod
    def probe(self, requested: str) -> Acceleration:
        """The accelerator for the template's `accelerator` (auto, or a name); a clear error if it cannot work."""

    def machine(self, spec: MachineSpec, on_event: EventSink | None = None) -> Machine:
        """Define a VM (not started); it is stopped by cleanup() if nothing else stops it."""
        machine = self.new_machine(spec)
        machine.events = on_event
        self.machines.append(machine)
        return machine

    @abstractmethod
    def new_machine(self, spec: MachineSpec) -> Machine: ...

    @abstractmethod
    def host_address(self, ipv6: bool) -> str:
        """The build host's address as the guest reaches it, URL-ready (IPv6 bracketed): `{{ .HTTPIP }}` and
        PACKER_HTTP_ADDR, where the guest fetches preseeds and files from factory's HTTP server."""

    def reserve_port(self, ports: PortRange, *, purpose: str) -> PortLease:
        """A free host port in ports to name before the VM starts (`{{ .SSHHostPort }}`); it goes into
        MachineSpec.ssh_host_port. Only for drivers that forward (forward_host is set)."""
        raise FactoryError(f"{purpose}: the {self.name} driver does not forward host ports to the guest",
                           hint="the guest is reached at its own address: do not use {{ .SSHHostPort }}")

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
    def compact_disk(self, disk: Path, dest: Path, fmt: DiskFormat, *, compress: bool = False,
                     args: DiskToolArgs = NO_DISK_ARGS) -> None:
        """The final disk: disk written to dest in fmt without its unused space (compressed when asked and the
        format can be). dest appears whole or not at all; disk is left for the caller to remove."""

    def precompact(self, lower: Path, folder: Path, fmt: DiskFormat, *, compress: bool = False,
                   args: DiskToolArgs = NO_DISK_ARGS) -> Precompaction | None:
        """Start compacting the immutable layer lower (and the layers under it) into a file in folder, in the
        background, for a compact_disk with these options of a disk whose top layer sits on lower; None when this
        driver or these options compact only at the end."""
        return None

    @abstractmethod
    def snapshot_disk(self, disk: Path, frozen: Path) -> None:
        """Freeze disk's current state into the new file frozen (never written again); disk stays the
        writable disk the next machine starts from, on top of it where the format allows."""

    def cleanup(self) -> None:
        """End every machine this driver defined and remove what it created for them (idempotent)."""
        while self.machines:
            self.machines.pop().stop()


# Built-in drivers by name: imported on first use, so this module never imports an implementation.
BUILTIN = {"qemu": "factory.machine.qemu", "virtualbox": "factory.machine.virtualbox",
           "libvirt": "factory.machine.libvirt_driver"}


def driver(name: str) -> Driver:
    """A new instance of the driver registered under name."""
    if name not in Driver.registry and name in BUILTIN:
        importlib.import_module(BUILTIN[name])
    if name not in Driver.registry:
        raise FactoryError(f"no machine driver named {name!r}",
                           hint="available: " + ", ".join(sorted({*BUILTIN, *Driver.registry})))
    return Driver.registry[name]()
