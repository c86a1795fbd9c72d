"""The VirtualBox driver: machines are VirtualBox VMs driven only through VBoxManage (factory.machine.vboxmanage).

A VM is created (or imported, or found) by the VirtualBox build steps with the command lines of
factory.machine.vbox_commands, then wrapped here as a Machine: `startvm`, `showvminfo --machinereadable` for its
state, `controlvm acpipowerbutton` / `poweroff`, `keyboardputscancode` for boot_command (scan code set 1 from
factory's key actions), `screenshotpng`. SSH reaches the guest through a NAT rule on 127.0.0.1 whose host port
comes from factory's locked port range (factory.machine.ports), set before the VM starts, as Packer does.

factory never touches a VM it did not create: the steps refuse a name that exists, and only VMs marked with
factory's extradata are ever unregistered (virtualbox-vm is the one builder that runs an existing VM, and it
never deletes it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

from factory.artifact.model import DiskFormat
from factory.errors import FactoryError
from factory.machine import scancodes
from factory.machine.driver import (
    NO_DISK_ARGS,
    Acceleration,
    DiskToolArgs,
    Driver,
    Endpoint,
    Feature,
    Machine,
    MachineEventKind,
    MachineSpec,
    PortRange,
    PowerState,
)
from factory.machine.keys import Action
from factory.machine.ports import PortLease, reserve
from factory.machine.vboxmanage import VBoxManage

# showvminfo's VMState values (VirtualBox's MachineState, lower-cased by VBoxManage).
RUNNING_STATES = {"running", "paused", "starting", "stopping", "restoring", "saving", "livesnapshotting",
                  "teleporting", "onlinesnapshotting"}
CRASHED_STATES = {"aborted", "aborted-saved", "gurumeditation", "stuck"}
POLL = 0.5
# keyboardputscancode takes any number of bytes; one call per key keeps boot_key_interval meaningful.
_FORMATS = {DiskFormat.VMDK: "VMDK", DiskFormat.VHD: "VHD", DiskFormat.RAW: "RAW"}


class VBoxMachine(Machine):
    """One registered VM, by name. It is started once; stop() powers it off (unregistering is the steps' job:
    it depends on who created the VM and on keep_registered)."""

    def __init__(self, vbox: VBoxManage, spec: MachineSpec, *, headless: bool, ssh: Endpoint | None = None
                 ) -> None:
        self.vbox, self.spec, self.headless, self.ssh = vbox, spec, headless, ssh
        self.name = spec.name
        self._started = False
        self._stopped = False

    def start(self) -> None:
        from factory.machine.vbox_commands import start

        self.vbox(start(self.name, self.headless))
        self._started = True

    def vm_state(self) -> str:
        info = self.vbox.info(self.name)
        return (info or {}).get("VMState", "unknown")

    def state(self) -> PowerState:
        if not self._started:
            return PowerState.DEFINED
        raw = self.vm_state()
        if raw in RUNNING_STATES:
            return PowerState.RUNNING
        return PowerState.CRASHED if raw in CRASHED_STATES else PowerState.OFF

    def running(self) -> bool:
        return self._started and not self._stopped and self.vm_state() in RUNNING_STATES

    def alive(self) -> None:
        if not self._started:
            raise FactoryError(f"the VirtualBox VM {self.name} was never started")
        raw = self.vm_state()
        if raw in RUNNING_STATES:
            return
        what = "crashed (VirtualBox: aborted)" if raw in CRASHED_STATES else f"stopped (VirtualBox: {raw})"
        raise FactoryError(f"the VirtualBox VM {self.name} {what} unexpectedly", hint=self._serial_tail())

    def _serial_tail(self) -> str:
        path = self.spec.serial_log
        lines = path.read_text(errors="replace").splitlines()[-15:] if path.exists() else []
        return "last serial console lines:\n" + "\n".join(lines) if lines else f"see VBox.log of {self.name}"

    def wait_poweroff(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                return True
            time.sleep(POLL)
        return not self.running()

    def powerdown(self) -> None:
        if self.running():
            self._control("acpipowerbutton")
            self.notify(MachineEventKind.POWERDOWN)

    def _control(self, action: str) -> None:
        """`controlvm NAME action`; a VM that stopped on its own between the state check and the command (the guest
        powered off first) is what was wanted, not an error."""
        try:
            self.vbox(["controlvm", self.name, action])
        except FactoryError:
            if self.vm_state() in RUNNING_STATES:
                raise

    def stop(self) -> None:
        """Power the VM off now if it still runs (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        if self._started and self.vbox.info(self.name) is not None and \
                self.vm_state() in RUNNING_STATES | CRASHED_STATES - {"aborted", "aborted-saved"}:
            self._control("poweroff")
            deadline = time.monotonic() + 30
            while self.vm_state() in RUNNING_STATES and time.monotonic() < deadline:
                time.sleep(POLL)

    def screendump(self, dest: Path) -> Path | None:
        if not self.running():
            return None
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.vbox(["controlvm", self.name, "screenshotpng", str(dest)])
        except FactoryError:
            return None
        return dest if dest.exists() else None

    def send_keys(self, actions: Sequence[Action], interval: float,
                  interrupted: Callable[[], None] | None = None) -> None:
        """boot_command as `controlvm NAME keyboardputscancode HEX...`: one call per key (or held key change),
        interval seconds apart; <waitN> sleeps."""
        for batch in scancodes.keystrokes(actions):
            if interrupted:
                interrupted()
            if isinstance(batch, float):
                time.sleep(batch)
                continue
            self.vbox(["controlvm", self.name, "keyboardputscancode", *scancodes.hex_args(batch)])
            time.sleep(interval)

    def ssh_address(self, guest_port: int, ports: PortRange, *, timeout: float) -> Endpoint:
        """The NAT rule's host side (set before start, see vbox_commands.nat_rule)."""
        if self.ssh is None:
            raise FactoryError(f"{self.name}: no NAT rule forwards the guest's SSH port",
                               hint="unset skip_nat_mapping, or set ssh_host to the guest's address")
        return self.ssh


class VirtualBoxDriver(Driver, name="virtualbox"):
    """VirtualBox through VBoxManage. Its disks are VirtualBox media (VDI, VMDK); VMs come from the
    VirtualBox build steps (adopt), which know the builder's options."""

    features = frozenset({Feature.KEYS, Feature.SCREEN})
    forward_host = "127.0.0.1"

    def __init__(self, vbox: VBoxManage | None = None) -> None:
        super().__init__()
        self.vbox = vbox or VBoxManage()

    def probe(self, requested: str) -> Acceleration:
        return Acceleration("virtualbox", reason=f"VirtualBox {self.vbox.version} picks VT-x/AMD-V itself")

    def adopt(self, spec: MachineSpec, *, headless: bool, ssh: Endpoint | None,
              on_event: Callable[..., None] | None = None) -> VBoxMachine:
        """The registered VM named spec.name as a Machine this driver stops in cleanup()."""
        machine = VBoxMachine(self.vbox, spec, headless=headless, ssh=ssh)
        machine.events = on_event
        self.machines.append(machine)
        return machine

    def new_machine(self, spec: MachineSpec) -> Machine:
        raise FactoryError("the virtualbox driver runs the virtualbox-iso, virtualbox-ovf and virtualbox-vm "
                           "sources; a qemu source's disks and options have no VirtualBox VM to run in",
                           hint="build this source with the qemu driver")

    def host_address(self, ipv6: bool) -> str:
        return "10.0.2.2"   # the host as VirtualBox's NAT engine shows it to the guest (IPv4 only)

    def reserve_port(self, ports: PortRange, *, purpose: str) -> PortLease:
        return reserve(ports.low, ports.high, purpose=purpose, host=self.forward_host)

    def create_disk(self, path: Path, size_mib: int, fmt: DiskFormat, args: DiskToolArgs = NO_DISK_ARGS) -> None:
        self.vbox(["createmedium", "disk", "--filename", str(path), "--size", str(size_mib),
                   "--format", _FORMATS.get(fmt, "VDI")])

    def overlay_disk(self, base: Path | str, path: Path, args: DiskToolArgs = NO_DISK_ARGS) -> None:
        raise FactoryError("the virtualbox driver has no copy-on-write disks outside a VM's snapshots")

    def copy_disk(self, base: Path | str, path: Path, fmt: DiskFormat, size_mib: int | None,
                  args: DiskToolArgs = NO_DISK_ARGS) -> None:
        self.vbox(["clonemedium", "disk", str(base), str(path), "--format", _FORMATS.get(fmt, "VDI")])
        if size_mib:
            self.vbox(["modifymedium", "disk", str(path), "--resize", str(size_mib)])

    def compact_disk(self, disk: Path, dest: Path, fmt: DiskFormat, *, compress: bool = False,
                     args: DiskToolArgs = NO_DISK_ARGS) -> None:
        self.vbox(["clonemedium", "disk", str(disk), str(dest), "--format", _FORMATS.get(fmt, "VMDK")])

    def snapshot_disk(self, disk: Path, frozen: Path) -> None:
        raise FactoryError("the virtualbox driver keeps states as VM snapshots (target_snapshot), not disk files")
