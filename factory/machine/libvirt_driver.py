"""The libvirt driver on the Driver protocol: a build's machines are domains on a local or remote libvirtd.

The build steps (factory/steps/libvirt.py) open the connection, put the volumes in the host's pools (uploaded by
stream) and hand the driver the domain's plan; `machine(spec)` then defines the domain from that plan with what
the spec resolves (name, accelerator, SSH forward). Everything the driver creates on the host is recorded, so
`cleanup()` removes it after success, failure, Ctrl-C or SIGTERM: domains, transient volumes and (with the
domain's QEMU) its port forward. Disk files between steps stay local and go through qemu-img, as with the QEMU
driver.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from xml.etree import ElementTree as ET

import libvirt

from factory.artifact.model import DiskFormat
from factory.errors import FactoryError
from factory.machine import accel, httpd
from factory.machine import libvirt as lv
from factory.machine.driver import (
    NO_DISK_ARGS,
    Acceleration,
    DiskToolArgs,
    Driver,
    Feature,
    Machine,
    MachineSpec,
    PortRange,
)
from factory.machine.libvirt_tunnel import SshTunnel, ssh_target
from factory.machine.libvirt_xml import DomainPlan
from factory.machine.ports import PortLease, reserve
from factory.machine.qemu import QemuDriver

LOOPBACK = "127.0.0.1"


class LibvirtDriver(Driver, name="libvirt"):
    """A libvirt connection, the volumes this build created on it, and the domains it defined."""

    features = frozenset({Feature.KEYS, Feature.SCREEN, Feature.VNC})
    forward_host = LOOPBACK

    def __init__(self) -> None:
        super().__init__()
        self.uri = ""
        self.conn: libvirt.virConnect | None = None
        # The domain a spec becomes (set by the volumes step: it knows the volumes and the source's options).
        self.plan_for: Callable[[MachineSpec], DomainPlan] | None = None
        self.created: list[libvirt.virStorageVol] = []   # volumes factory made, removed by cleanup() ...
        self.kept: set[str] = set()                  # ... except these keys (the published artifact)
        self._local = QemuDriver()                   # qemu-img for local disk files

    # connection ---------------------------------------------------------------------------------------------
    def open(self, uri: str) -> libvirt.virConnect:
        if self.conn is None:
            self.conn = lv.connect(uri)
            self.uri = uri
        return self.conn

    @property
    def connection(self) -> libvirt.virConnect:
        if self.conn is None:
            raise FactoryError("the libvirt driver is not connected")
        return self.conn

    def probe(self, requested: str) -> Acceleration:
        """kvm only when factory's own probe boots a kernel under KVM here and the libvirt host offers kvm
        domains (a session daemon's user may lack /dev/kvm); else qemu (TCG)."""
        verdict = accel.resolve(requested or "auto", announce=False)
        offered = self._host_offers_kvm()
        if verdict.accel is accel.Accel.KVM and offered:
            return Acceleration("kvm", verdict.reason)
        reason = verdict.reason if verdict.accel is not accel.Accel.KVM else \
            f"libvirt at {self.uri} offers no kvm domains (can its daemon's user open /dev/kvm?)"
        return Acceleration("qemu", reason, emulated=True, timeout_factor=accel.TCG_TIMEOUT_FACTOR,
                            fallback_notice=f"KVM is not usable ({reason}): the domain runs under TCG emulation, "
                            "10-50x slower")

    def _host_offers_kvm(self) -> bool:
        try:
            caps = ET.fromstring(self.connection.getCapabilities())
        except libvirt.libvirtError:
            return False
        return any(d.get("type") == "kvm" for d in caps.iter("domain"))

    # machines ------------------------------------------------------------------------------------------------
    def new_machine(self, spec: MachineSpec) -> Machine:
        if self.plan_for is None:
            raise FactoryError("the libvirt driver has no domain plan (the volumes step did not run)")
        target = ssh_target(self.uri)
        return lv.LibvirtMachine(spec, self.plan_for(spec), self.connection,
                                 tunnel=SshTunnel(target) if target is not None else None)

    def host_address(self, ipv6: bool) -> str:
        return httpd.guest_host(ipv6)   # user networking's gateway reaches the libvirt host's loopback

    def reserve_port(self, ports: PortRange, *, purpose: str) -> PortLease:
        # The forward is part of the domain's definition, so its port is named before the domain starts.
        return reserve(ports.low, ports.high, purpose=purpose, host=LOOPBACK)

    # volumes -------------------------------------------------------------------------------------------------
    def track(self, vol: libvirt.virStorageVol) -> libvirt.virStorageVol:
        """Record a volume factory created: cleanup() deletes it unless keep() was called for it."""
        self.created.append(vol)
        return vol

    def keep(self, vol: libvirt.virStorageVol) -> None:
        self.kept.add(vol.key())

    def cleanup(self) -> None:
        super().cleanup()   # the domains first: a running domain holds its volumes
        while self.created:
            vol = self.created.pop()
            with suppress(libvirt.libvirtError):
                if vol.key() not in self.kept:
                    vol.delete(0)
        if self.conn is not None:
            with suppress(libvirt.libvirtError):
                self.conn.close()
            self.conn = None

    # local disk files (between steps): qemu-img, as the QEMU driver ---------------------------------------------
    def create_disk(self, path: Path, size_mib: int, fmt: DiskFormat, args: DiskToolArgs = NO_DISK_ARGS) -> None:
        self._local.create_disk(path, size_mib, fmt, args)

    def overlay_disk(self, base: Path | str, path: Path, args: DiskToolArgs = NO_DISK_ARGS) -> None:
        self._local.overlay_disk(base, path, args)

    def copy_disk(self, base: Path | str, path: Path, fmt: DiskFormat, size_mib: int | None,
                  args: DiskToolArgs = NO_DISK_ARGS) -> None:
        self._local.copy_disk(base, path, fmt, size_mib, args)

    def compact_disk(self, disk: Path, dest: Path, fmt: DiskFormat, *, compress: bool = False,
                     args: DiskToolArgs = NO_DISK_ARGS) -> None:
        self._local.compact_disk(disk, dest, fmt, compress=compress, args=args)

    def snapshot_disk(self, disk: Path, frozen: Path) -> None:
        self._local.snapshot_disk(disk, frozen)
