"""The QEMU driver: argv built as a list, control through QMP (qemu.qmp), disks through qemu-img."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from factory import secrets
from factory.artifact.model import DiskFormat, Firmware
from factory.errors import FactoryError
from factory.machine import accel, httpd, tpm, vnc
from factory.machine.driver import (
    NO_DISK_ARGS,
    Acceleration,
    DiskSpec,
    DiskToolArgs,
    Driver,
    Endpoint,
    Feature,
    Layer,
    Machine,
    MachineEventKind,
    MachineSpec,
    MediaSpec,
    PortRange,
    PowerState,
    Precompaction,
)
from factory.machine.keys import Action, Hold, Press, Wait
from factory.machine.ports import PortLease, lease, reserve
from factory.machine.qmp import QmpSession
from factory.run import die_with_parent, run, which

QEMU = "qemu-system-x86_64"
KEY_HOLD = 0.03
LOOPBACK = "127.0.0.1"   # user networking's host forwards listen here only: nothing outside reaches the guest
_QMP_EVENTS = {"POWERDOWN": MachineEventKind.POWERDOWN, "SHUTDOWN": MachineEventKind.POWERED_OFF,
               "RESET": MachineEventKind.RESET, "GUEST_PANICKED": MachineEventKind.PANICKED}

# Controllers a disk or medium interface needs, and the -device that attaches it.
_CONTROLLERS = {"virtio-scsi": ("virtio-scsi-pci", "scsi0"), "scsi": ("virtio-scsi-pci", "scsi0"),
                "sata": ("ahci", "ahci0")}


def _attach(kind: str, interface: str, drive_id: str, index: int, bootindex: int | None) -> list[str]:
    boot = f",bootindex={bootindex}" if bootindex is not None else ""
    if interface in ("virtio-scsi", "scsi"):
        dev = "scsi-cd" if kind == "cd" else "scsi-hd"
        return ["-device", f"{dev},bus=scsi0.0,drive={drive_id}{boot}"]
    if interface == "sata":
        dev = "ide-cd" if kind == "cd" else "ide-hd"
        return ["-device", f"{dev},bus=ahci0.{index},drive={drive_id}{boot}"]
    if interface == "ide":
        dev = "ide-cd" if kind == "cd" else "ide-hd"
        return ["-device", f"{dev},drive={drive_id}{boot}"]
    if interface == "virtio":
        return ["-device", f"virtio-blk-pci,drive={drive_id}{boot}"]
    raise FactoryError(f"unsupported disk/cdrom interface {interface!r}",
                       hint="use virtio, virtio-scsi, scsi, sata or ide")


def _storage_args(spec: MachineSpec) -> list[list[str]]:
    groups: list[list[str]] = []
    interfaces = [d.interface for d in spec.disks] + [m.interface for m in spec.media]
    for ctrl, ctrl_id in dict(_CONTROLLERS[i] for i in interfaces if i in _CONTROLLERS).items():
        groups.append(["-device", f"{ctrl},id={ctrl_id}"])
    boot = 0
    # A kernel booted directly (install_method "direct-kernel", or a user's qemuargs `-kernel`, as Packer allows)
    # takes boot index 0 itself (QEMU's linuxboot ROM): a disk claiming it too makes QEMU refuse to start.
    direct = spec.direct_boot is not None or any(args and args[0] == "-kernel" for args in spec.hypervisor_args)
    bootable_media = [m for m in spec.media if m.bootable]
    ordered: list[DiskSpec | MediaSpec] = [*bootable_media, *spec.disks,
                                           *(m for m in spec.media if not m.bootable)]
    sata_index = 0
    for n, item in enumerate(ordered):
        if isinstance(item, DiskSpec):
            drive_id = f"disk{n}"
            groups.append(["-drive", f"file={item.path},if=none,id={drive_id},format={item.format.value},"
                                     f"cache={item.cache},discard={item.discard},detect-zeroes={item.detect_zeroes}"])
            kind, bootindex = "hd", None if direct else boot
        else:
            drive_id = f"cd{n}"
            kind = "cd" if item.interface != "virtio" else "hd"
            media = ",media=cdrom" if kind == "cd" else ""
            groups.append(["-drive", f"file={item.path},if=none,id={drive_id},format=raw,readonly=on{media}"])
            bootindex = boot if item.bootable and not direct else None
        if bootindex is not None:
            boot += 1
        groups.append(_attach(kind, item.interface, drive_id, sata_index, bootindex))
        if item.interface == "sata":
            sata_index += 1
    return groups


def _display(spec: MachineSpec) -> list[str]:
    """-display: none when headless or when there is no X display to open a window on (factory never needs
    one); otherwise the configured backend, or QEMU's own default (Packer: `display = "none"` means that)."""
    if spec.headless:
        return ["-display", "none"]
    if spec.use_default_display:
        return []
    if spec.display and spec.display != "none":
        return ["-display", spec.display]
    return [] if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") else ["-display", "none"]


def _console_args(spec: MachineSpec, tpm_socket: Path | None) -> list[list[str]]:
    groups = [g for g in [_display(spec)] if g]
    if spec.vnc is not None:
        groups.append(["-vnc", vnc.qemu_arg(spec.vnc)])
    if spec.tpm is not None:
        groups += tpm.qemu_args(spec.tpm, tpm_socket or spec.workdir / "swtpm.sock")
    return groups


# The CPU a guest gets when cpu_model is unset: under KVM the host's own; under TCG QEMU's `max` (AuthenticAMD
# family 6, every feature TCG emulates), which measured fastest for the README's Linux guest: as an AMD CPU it
# gets no page-table isolation (a GenuineIntel `max` gets PTI, and with no PCID under TCG every kernel entry
# flushes QEMU's software TLB: it booted far slower), only retpolines. Its HPET clocksource on 2+ vCPUs (Linux
# trusts no AMD TSC without invtsc, which TCG cannot offer) costs nothing measurable: an Atom identity with a TSC
# clocksource and no mitigations reached SSH no sooner (43.5 s vs 42.0 s), and -accel tcg,thread=single was
# slower. Two of max's features only cost an emulated guest: la57 (Linux then uses five-level page tables, so
# every refill of QEMU's software TLB walks one level more) and svm (udev loads kvm and kvm_amd during the boot,
# for nested guests nobody runs under emulation). Without them the guest reached its first provisioner command
# sooner in 6 of 8 alternating pairs, median 0.948x of the time (within this host's noise of +-15 %).
TCG_CPU = "max,la57=off,svm=off"


def default_cpu(accel: str) -> str:
    """The -cpu of a guest whose cpu_model is unset (part of the boot stage's ID: a saved VM state only loads
    into the CPU it was saved on)."""
    return "host" if accel == "kvm" else TCG_CPU


def build_argv(spec: MachineSpec, qmp_socket: Path, *, binary: str = QEMU,
               tpm_socket: Path | None = None) -> list[str]:
    """The full qemu command line; qemuargs (hypervisor_args) replace defaults with the same flag (Packer)."""
    machine = spec.machine_type + f",accel={spec.accel}"
    cpu = spec.cpu_model or default_cpu(spec.accel)
    smp = str(spec.cpus)
    if spec.topology:
        sockets, cores, threads = spec.topology
        smp += f",sockets={sockets},cores={cores},threads={threads}"
    groups: list[list[str]] = [
        ["-name", spec.name], ["-machine", machine], ["-cpu", cpu], ["-smp", smp], ["-m", f"{spec.memory_mb}M"],
    ]
    if spec.vga:
        groups.append(["-vga", spec.vga])
    if spec.bios is not None:
        groups.append(["-drive", f"if=pflash,format=raw,readonly=on,file={spec.bios}"] if spec.bios_pflash
                      else ["-bios", str(spec.bios)])
    if spec.firmware is Firmware.EFI:
        if spec.efi_code is None or spec.efi_vars is None:
            raise FactoryError("EFI boot needs firmware code and a writable variable store")
        groups.append(["-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={spec.efi_code}"])
        groups.append(["-drive", f"if=pflash,format=raw,unit=1,file={spec.efi_vars}"])
    groups += _storage_args(spec)
    if spec.floppy is not None:
        groups.append(["-drive", f"file={spec.floppy},if=floppy,format=raw,index=0"])
    if spec.direct_boot:
        groups.append(["-kernel", str(spec.direct_boot.kernel)])
        if spec.direct_boot.initrd:
            groups.append(["-initrd", str(spec.direct_boot.initrd)])
        groups.append(["-append", spec.direct_boot.cmdline])
    fwd = (f",hostfwd=tcp:{LOOPBACK}:{spec.ssh_host_port}-:{spec.guest_ssh_port}"
           if spec.ssh_host_port is not None else "")
    groups.append(["-netdev", f"user,id=user.0{fwd}"])
    groups.append(["-device", f"{spec.net_device},netdev=user.0"])
    # Appended, not truncated (`-serial file:` would be): the run phase's QEMU must not wipe the install log.
    # One group keyed by -serial, so a user's own -serial replaces both and a user's -chardev replaces neither.
    log = str(spec.serial_log).replace(",", ",,")
    groups.append(["-serial", "chardev:serial0", "-chardev", f"file,id=serial0,path={log},append=on"])
    groups.append(["-qmp", f"unix:{qmp_socket},server=on,wait=off"])
    if spec.user_qmp is not None:
        groups.append(["-qmp", f"unix:{spec.user_qmp},server=on,wait=off"])
    groups.append(["-monitor", "none"])
    groups += _console_args(spec, tpm_socket)
    if spec.no_reboot:
        groups.append(["-no-reboot"])
    if spec.incoming is not None:  # the state comes once QMP is up: Machine._resume_state hands QEMU its file
        groups.append(["-incoming", "defer"])
    overridden = {args[0] for args in spec.hypervisor_args if args}
    argv = [binary]
    for group in groups:
        if group[0] not in overridden:
            argv += group
    for args in spec.hypervisor_args:
        argv += list(args)
    return argv


def _hand_over(qmp: QmpSession, path: Path, flags: int, name: str, what: str) -> None:
    """Open path and give QEMU the descriptor, which its commands then name `fd:<name>` (ours is closed)."""
    try:
        fd = os.open(path, flags | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise FactoryError(f"cannot {what} {path}: {exc.strerror or exc}", hint="-resume=false starts cold") from None
    try:
        qmp.pass_fd(fd, name)
    finally:
        os.close(fd)


class QemuMachine(Machine):
    """One qemu process in its own session (so a terminal's Ctrl-C reaches factory, which then cleans up)."""

    def __init__(self, spec: MachineSpec, binary: str = QEMU) -> None:
        self.spec = spec
        self.binary = spec.emulator or binary
        self.qmp_socket = spec.workdir / f"{spec.name}.qmp"
        self.stderr_log = spec.workdir / f"{spec.name}.qemu.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.qmp: QmpSession | None = None
        self.swtpm = tpm.Swtpm(spec.tpm, spec.workdir) if spec.tpm is not None else None
        self._ssh: Endpoint | None = None
        self._ssh_lease: PortLease | None = None
        self._powered_off = False     # the guest powered off, or factory ended the VM: not a crash

    @property
    def argv(self) -> list[str]:
        return build_argv(self.spec, self.qmp_socket, binary=self.binary,
                          tpm_socket=self.swtpm.socket if self.swtpm else None)

    def start(self) -> None:
        argv = self.argv
        argv[0] = which(argv[0])
        self.qmp_socket.unlink(missing_ok=True)
        if self.spec.user_qmp is not None:
            self.spec.user_qmp.unlink(missing_ok=True)
        if self.swtpm is not None:
            self.swtpm.start()
        with open(self.stderr_log, "wb") as err:
            # Own session: a terminal's Ctrl-C reaches factory only, which then stops the VM in order. Dies with
            # factory: even a SIGKILLed factory leaves no VM running (swtpm likewise, see tpm.py).
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=subprocess.STDOUT,
                                         start_new_session=True, preexec_fn=die_with_parent)
        self.qmp = QmpSession(self.spec.name)
        self.qmp.listeners.append(self._qmp_event)
        self.qmp.connect(self.qmp_socket, alive=self.alive)
        if self.spec.vnc is not None and self.spec.vnc.password is not None:
            # Until this, QEMU's `password=on` VNC server refuses every client.
            self.qmp.execute("set_password", {"protocol": "vnc", "password": self.spec.vnc.password})
        if self.spec.incoming is not None:
            self._resume_state()

    def _resume_state(self) -> None:
        """Load the saved state from its file, then run: it was saved paused, so QEMU keeps it paused.

        QEMU reads the file through a descriptor factory opened (`fd:`), not through a `cat` pipe (`exec:`):
        a 280 MiB state loaded in ~0.14 s instead of ~0.25 s here."""
        assert self.qmp is not None and self.spec.incoming is not None
        _hand_over(self.qmp, self.spec.incoming, os.O_RDONLY, "incoming", "read the checkpoint's VM state")
        dropped: FactoryError | None = None
        try:
            self.qmp.execute("migrate-incoming", {"uri": "fd:incoming"})
            loaded = self._await_migration(self.qmp, "loading the checkpoint's VM state")
        except FactoryError as exc:
            dropped, loaded = exc, False
        if not loaded:
            # QEMU exits when the stream is not a state it can load into this machine (its monitor may drop a
            # moment before the process is gone); its last words name what did not match.
            assert self.proc is not None
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(2)
            if dropped is not None and self.running():
                raise dropped
            raise FactoryError(f"QEMU could not load the checkpoint's VM state {self.spec.incoming}",
                               hint="-checkpoint=disk resumes by booting from the disk; -resume=false "
                               f"starts cold\n{self._last_words()}")
        self.qmp.execute("cont")

    def _await_migration(self, qmp: QmpSession, what: str) -> bool:
        """Wait for the migration (a VM state to or from a file) to end: True if it completed, False if it failed.

        Polled every 20 ms: the VM is paused meanwhile (a state is ~0.2-0.8 s), so a coarser poll is pure wait."""
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            self.alive()
            status = qmp.execute("query-migrate").get("status", "")
            if status == "completed":
                return True
            if status in ("failed", "cancelled"):
                return False
            time.sleep(0.02)
        raise FactoryError(f"{what} took over 600s")

    def vnc_port(self) -> int | None:
        if self.spec.vnc is None or self.qmp is None or not self.running():
            return None
        service = self.qmp.execute("query-vnc").get("service")
        return int(service) if service else None

    def _qmp_event(self, event: dict[str, Any]) -> None:
        kind = _QMP_EVENTS.get(str(event.get("event")))
        if kind is MachineEventKind.POWERED_OFF:
            self._powered_off = True
        if kind is not None:
            reason = (event.get("data") or {}).get("reason", "")
            self.notify(kind, str(reason))

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def state(self) -> PowerState:
        if self.proc is None:
            return PowerState.DEFINED
        if self.running():
            return PowerState.RUNNING
        return PowerState.OFF if self._powered_off else PowerState.CRASHED

    def _last_words(self) -> str:
        try:
            tail = self.stderr_log.read_text(errors="replace").strip().splitlines()[-8:]
        except OSError:
            tail = []
        if self.swtpm is not None:
            tail += ["swtpm: " + line for line in self.swtpm.log_tail()]
        return secrets.mask("\n".join("    " + line for line in tail))

    def alive(self) -> None:
        if self.proc is None:
            raise FactoryError("the VM was never started")
        code = self.proc.poll()
        if code is not None:
            powered_off = self.qmp is not None and self.qmp.powered_off.is_set()
            what = "the guest powered off" if powered_off else f"qemu exited with code {code}"
            raise FactoryError(f"{what} unexpectedly\n  command: {shlex.join(self.argv)}\n{self._last_words()}",
                               hint=f"serial console log: {self.spec.serial_log}")

    def wait_poweroff(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                return True
            if self.qmp is not None and self.qmp.powered_off.wait(0.2):
                # SHUTDOWN seen; with -no-shutdown absent qemu exits by itself right after (waited for as a
                # process: no polling interval added to every build's end).
                if self.proc is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        self.proc.wait(10)
                return True
        return not self.running()

    def powerdown(self) -> None:
        if self.qmp is not None and self.running():
            self.qmp.execute("system_powerdown")

    def stop(self) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            self._powered_off = True
            if self.qmp is not None:
                with contextlib.suppress(FactoryError):
                    self.qmp.execute("quit", timeout=5)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        if self.qmp is not None:
            self.qmp.close()
            self.qmp = None
        if self.swtpm is not None:
            self.swtpm.stop()
        self.qmp_socket.unlink(missing_ok=True)
        if self.spec.user_qmp is not None:
            self.spec.user_qmp.unlink(missing_ok=True)
        if self._ssh_lease is not None:
            self._ssh_lease.release()

    def screendump(self, dest: Path) -> Path | None:
        if self.qmp is None or not self.running():
            return None
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.qmp.execute("screendump", {"filename": str(dest), "format": "png"}, timeout=15)
        except FactoryError:
            return None
        return dest if dest.exists() else None

    def send_keys(self, actions: Sequence[Action], interval: float,
                  interrupted: Callable[[], None] | None = None) -> None:
        if self.qmp is None:
            raise FactoryError("cannot type the boot command: the VM is not running")
        for action in actions:
            self.alive()
            if interrupted:
                interrupted()
            if isinstance(action, Wait):
                time.sleep(action.seconds)
                continue
            if isinstance(action, Hold):
                self._keys([action.qcode], down=action.down)
            elif isinstance(action, Press):
                codes = ["shift", action.qcode] if action.shift else [action.qcode]
                self._keys(codes, down=True)
                time.sleep(min(interval / 2, KEY_HOLD))  # a held key, as a typist's: some guests miss 0 ms taps
                self._keys(list(reversed(codes)), down=False)
            time.sleep(interval)

    def checkpoint(self, layers: Sequence[Layer], state: Path | None) -> list[Path]:
        """Paused: each qcow2 disk gets a new empty top layer (QMP blockdev-snapshot-sync onto an overlay made
        beforehand, so its header names the published path); the state goes to its file by migration (`migrate
        fd:`); the old tops, now read-only, are linked (else copied) to their frozen names; then the VM runs on.
        Files QEMU has open are never renamed: it reopens them by name when migration inactivates them."""
        if self.qmp is None or not self.running():
            raise FactoryError("cannot keep a checkpoint: the VM is not running")
        qmp = self.qmp
        qmp.execute("stop")
        try:
            first = sum(1 for m in self.spec.media if m.bootable)  # drive ids follow _storage_args' order
            writes: list[Path] = []
            for n, (layer, disk) in enumerate(zip(layers, self.spec.disks, strict=True)):
                if disk.format is DiskFormat.QCOW2:
                    _new_top(qmp, f"disk{first + n}", layer)
                    writes.append(layer.next)
                else:
                    writes.append(layer.active)
            if state is not None:
                try:
                    self._save_state(qmp, state)
                except FactoryError as exc:  # the disks are frozen already: the checkpoint is kept without it
                    state.unlink(missing_ok=True)
                    self.notify(MachineEventKind.MESSAGE, f"the VM state was not saved ({exc.message}): "
                                "this checkpoint resumes by booting from its disk")
            for layer in layers:  # stop drained and flushed them: their content is final
                if not _link(layer.active, layer.frozen):
                    run(["cp", "--sparse=always", "--reflink=auto", layer.active, layer.frozen])
        finally:
            if self.running():
                qmp.execute("cont")
        return writes

    def _save_state(self, qmp: QmpSession, state: Path) -> None:
        # Paused, on purpose: QEMU's background snapshot (`background-snapshot`, the VM runs on while its RAM is
        # copied out on write) was measured slower here: ~3.5 s a state instead of ~0.5 s, and the guest's next
        # steps ran 2-3x slower meanwhile; a cold P3 build took 61.1 s against 55.5 s, back to back under TCG.
        qmp.execute("migrate-set-parameters", {"max-bandwidth": 1 << 40})  # a file, not a network: no cap
        # Written by QEMU itself through a descriptor opened here (`fd:`), not through a `cat` pipe (`exec:`).
        _hand_over(qmp, state, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, "state", "write the VM state to")
        qmp.execute("migrate", {"uri": "fd:state"})
        if not self._await_migration(qmp, "saving the VM state"):
            raise FactoryError(f"saving the VM state failed: {qmp.execute('query-migrate')}")

    def ssh_address(self, guest_port: int, ports: PortRange, *, timeout: float) -> Endpoint:
        """A loopback port forwarded to guest_port: the one reserved before start, or one QEMU binds now."""
        if self._ssh is None:
            port = self.spec.ssh_host_port
            if port is None:
                def busy(p: int) -> None:
                    self.notify(MachineEventKind.MESSAGE, f"host port {p} is in use by another program: "
                                                          "trying the next one")

                self._ssh_lease = self.forward_port(guest_port, ports.low, ports.high,
                                                    purpose="SSH port forwarding", busy=busy)
                port = self._ssh_lease.port
            self._ssh = Endpoint(LOOPBACK, port, forwarded=True)
        return self._ssh

    def forward_port(self, guest_port: int, low: int, high: int, *, purpose: str,
                     busy: Callable[[int], None] | None = None) -> PortLease:
        # hostfwd_add after start: QEMU's own bind is the check, so no program can take the port in between.
        def claim(port: int) -> bool:
            if self.qmp is None:
                raise FactoryError(f"{purpose}: the VM is not running")
            rule = f"tcp:{LOOPBACK}:{port}-:{guest_port}"
            reply = str(self.qmp.execute("human-monitor-command", {"command-line": f"hostfwd_add user.0 {rule}"}))
            if "Could not set up host forwarding rule" in reply:
                return False
            if reply.strip():
                raise FactoryError(f"{purpose}: QEMU refused the forward {rule}: {reply.strip()}",
                                   hint="a qemuargs -netdev must be user networking with id=user.0")
            return True

        return lease(low, high, purpose=purpose, claim=claim, busy=busy)

    def _keys(self, qcodes: list[str], *, down: bool) -> None:
        assert self.qmp is not None
        events = [{"type": "key", "data": {"down": down, "key": {"type": "qcode", "data": q}}} for q in qcodes]
        self.qmp.execute("input-send-event", {"events": events})


class QemuDriver(Driver, name="qemu"):
    """QEMU with qemu-img for disks (args: qemu_img_args, placed before the file names as Packer does)."""

    features = frozenset(Feature)
    forward_host = LOOPBACK

    def probe(self, requested: str) -> Acceleration:
        verdict = accel.resolve(requested, announce=False)
        tcg = verdict.accel is accel.Accel.TCG
        automatic = (requested or "auto").lower() == "auto"
        return Acceleration(verdict.accel.value, verdict.reason, emulated=tcg, timeout_factor=verdict.timeout_factor,
                            fallback_notice=verdict.fallback_notice if tcg and automatic else "")

    def new_machine(self, spec: MachineSpec) -> Machine:
        return QemuMachine(spec)

    def host_address(self, ipv6: bool) -> str:
        return httpd.guest_host(ipv6)   # user networking's gateway: 10.0.2.2 (fec0::2) is the host's loopback

    def reserve_port(self, ports: PortRange, *, purpose: str) -> PortLease:
        return reserve(ports.low, ports.high, purpose=purpose, host=LOOPBACK)

    def create_disk(self, path: Path, size_mib: int, fmt: DiskFormat, args: DiskToolArgs = NO_DISK_ARGS) -> None:
        run(["qemu-img", "create", "-q", "-f", fmt.value, *args.create, path, f"{size_mib}M"])

    def overlay_disk(self, base: Path | str, path: Path, args: DiskToolArgs = NO_DISK_ARGS) -> None:
        fmt = _image_format(base)
        backing = base if isinstance(base, str) else base.resolve()
        run(["qemu-img", "create", "-q", "-f", "qcow2", *args.create, "-b", backing, "-F", fmt, path])

    def copy_disk(self, base: Path | str, path: Path, fmt: DiskFormat, size_mib: int | None,
                  args: DiskToolArgs = NO_DISK_ARGS) -> None:
        # QEMU 7.2's curl driver (Debian 12) loses a completion under parallel range reads and qemu-img then
        # waits forever (a third of the runs here): one coroutine reads a URL in order and never hangs.
        serial = ["-m", "1"] if "://" in str(base) else []
        run(["qemu-img", "convert", *serial, *args.convert, "-O", fmt.value, base, path])
        if size_mib and size_mib * 1024 * 1024 > _virtual_size(path):
            run(["qemu-img", "resize", "-q", *args.resize, "--image-opts", _unflushed(fmt.value, path),
                 f"{size_mib}M"])

    def compact_disk(self, disk: Path, dest: Path, fmt: DiskFormat, *, compress: bool = False,
                     args: DiskToolArgs = NO_DISK_ARGS) -> None:
        if fmt is DiskFormat.QCOW2:
            from factory.artifact.compaction import compact  # the exporters' qcow2 writer: the same image either way

            compact(disk, dest, compress=compress, extra=args.convert)
        else:
            run(["qemu-img", "convert", *args.convert, "-O", fmt.value, disk, dest])

    def precompact(self, lower: Path, folder: Path, fmt: DiskFormat, *, compress: bool = False,
                   args: DiskToolArgs = NO_DISK_ARGS) -> Precompaction | None:
        if fmt is not DiskFormat.QCOW2 or compress or args.convert:
            return None  # what compact() writes then is not a plain convert to qcow2
        from factory.artifact.compaction import Precompaction as QcowPrecompaction

        return QcowPrecompaction(lower, folder)

    def snapshot_disk(self, disk: Path, frozen: Path) -> None:
        fmt = _image_format(disk)
        if fmt == "qcow2":
            # External snapshot: the current layer becomes the frozen base, a new empty overlay takes its name.
            os.replace(disk, frozen)
            run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", frozen.resolve(), "-F", "qcow2", disk])
        else:
            run(["cp", "--sparse=always", "--reflink=auto", disk, frozen])


def _new_top(qmp: QmpSession, drive: str, layer: Layer) -> None:
    run(["qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", layer.published, "-F", "qcow2", layer.next,
         str(_virtual_size(layer.active))])
    qmp.execute("blockdev-snapshot-sync", {"device": drive, "snapshot-file": str(layer.next), "format": "qcow2",
                                           "mode": "existing"})


def _link(src: Path, dest: Path) -> bool:
    try:
        os.link(src, dest)
    except OSError:
        return False
    return True


def _info(path: Path | str) -> dict[str, object]:
    import json

    out = run(["qemu-img", "info", "--output=json", "-U", path]).stdout
    data: dict[str, object] = json.loads(out)
    return data


def _unflushed(fmt: str, path: Path) -> str:
    """--image-opts for a disk tool that need not flush at exit. qemu-img resize flushes by default, and right
    after a convert (which does not: its cache mode is unsafe) that wrote the whole copy out to the host's disk:
    0.18 s of the 0.33 s a 390 MiB image's copy took. Nothing else in factory syncs the store's files either."""
    return f"driver={fmt},file.filename={str(path).replace(',', ',,')},cache.no-flush=on"


def _image_format(path: Path | str) -> str:
    return str(_info(path).get("format", "raw"))


def _virtual_size(path: Path) -> int:
    size = _info(path).get("virtual-size", 0)
    return int(size) if isinstance(size, int | str) else 0
