"""Steps that run the machine: install phase, boot (with boot_command), SSH, shutdown; failure diagnostics.

Only the driver interface (factory.machine.driver) is used here: which hypervisor runs the guest, how keys reach
it and where its SSH port is reached from are the driver's business.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from factory import paths
from factory.build import EventKind, Step
from factory.errors import FactoryError
from factory.machine import keys
from factory.machine.driver import (
    DiskSpec,
    Feature,
    MachineEvent,
    MachineEventKind,
    MachineSpec,
    MediaSpec,
    PortRange,
)
from factory.machine.kernel_watch import Trouble
from factory.machine.serial import SerialFollower
from factory.placeholders import expand
from factory.schema.libvirt import LibvirtSource
from factory.schema.qemu import QemuSource
from factory.steps import checkpoint, console
from factory.steps.context import BuildContext

TCG_KEY_INTERVAL = 0.3


def machine_spec(ctx: BuildContext, *, install: bool) -> MachineSpec:
    """The MachineSpec of one phase: install (installer media bootable, no SSH forward, -no-reboot) or run."""
    s = ctx.s
    assert ctx.workdir is not None and ctx.disk is not None
    media: list[MediaSpec] = []
    installer = ctx.media_url or ctx.media
    if install and installer is not None:
        media.append(MediaSpec(installer, interface=s.cdrom_interface or "virtio-scsi", bootable=True))
    if ctx.seed is not None:
        # A seed as a read-only virtio disk works for guests with virtio drivers only (no AHCI, no sr_mod).
        media.append(MediaSpec(ctx.seed, interface=s.cdrom_interface or "virtio"))
    values = ctx.template_values
    qemuargs = tuple(tuple(expand(a, values, where="qemuargs") for a in group) for group in s.qemuargs)
    spec = MachineSpec(
        name=ctx.vm_name, workdir=ctx.workdir, serial_log=serial_log_path(ctx), accel=ctx.accel, cpus=s.cpus,
        memory_mb=s.memory, machine_type=s.machine_type, cpu_model=s.cpu_model or "", firmware=ctx.firmware,
        efi_code=ctx.efi_code, efi_vars=ctx.efi_vars,
        disks=tuple(DiskSpec(d, s.format, s.disk_interface, s.disk_cache, s.disk_discard, s.disk_detect_zeroes)
                    for d in (ctx.disk, *ctx.extra_disks)),
        media=tuple(media), net_device=s.net_device, direct_boot=ctx.direct_boot if install else None,
        # Never forward SSH while an installer runs: its own sshd must not be mistaken for the installed system.
        ssh_host_port=None if install or ctx.ssh_lease is None else ctx.ssh_lease.port,
        guest_ssh_port=s.ssh_port,
        headless=s.headless, vga=s.vga or "", emulator=s.qemu_binary, topology=s.topology, no_reboot=install,
        hypervisor_args=qemuargs, incoming=None if install else ctx.resume_state)
    return console.machine_console(ctx, spec)


def serial_log_path(ctx: BuildContext) -> Path:
    assert ctx.workdir is not None
    return ctx.path(ctx.machine_options.serial_log) or ctx.workdir / f"{ctx.vm_name}.serial.log"


def start_machine(ctx: BuildContext, spec: MachineSpec, phase: str) -> None:
    assert ctx.driver is not None
    if ctx.serial is not None:
        ctx.serial.stop()
    spec.serial_log.parent.mkdir(parents=True, exist_ok=True)
    with open(spec.serial_log, "ab") as fh:
        fh.write(f"\n--- factory: {phase} ---\n".encode())
        offset = fh.tell()
    ctx.serial = SerialFollower(spec.serial_log, lambda line: ctx.output("serial", line), offset=offset,
                                on_trouble=lambda trouble: guest_trouble(ctx, trouble)).start()
    machine = ctx.driver.machine(spec, on_event=lambda event: machine_event(ctx, event))
    ctx.machine = machine
    ctx.cleanups.push(f"stop VM ({phase})", machine.stop)
    machine.start()
    ctx.say(f"VM started ({phase}, {spec.accel}); serial console: {spec.serial_log}")
    console.announce(ctx, machine)


def guest_trouble(ctx: BuildContext, trouble: Trouble) -> None:
    """What the guest's kernel reported on its console (factory.machine.kernel_watch), told as it happens."""
    where = f" (serial console log: {ctx.serial.path})" if ctx.serial is not None else ""
    ctx.emit(EventKind.NOTICE, trouble.message + ("" if trouble.fatal else where))


def machine_event(ctx: BuildContext, event: MachineEvent) -> None:
    """What the machine reports: its messages are said; a reset or a guest panic is shown as it happens."""
    if event.kind is MachineEventKind.MESSAGE:
        ctx.say(event.detail)
    elif event.kind is MachineEventKind.PANICKED and ctx.serial is not None:
        # pvpanic: as if the console said so, so the wait stops (start_machine follows the console first)
        ctx.serial.tell(ctx.serial.watch.panicked(event.detail))
    elif event.kind is MachineEventKind.RESET:
        ctx.output("vm", "the guest rebooted" + (f" ({event.detail})" if event.detail else ""))


def key_groups(ctx: BuildContext, values: Mapping[str, str]) -> list[tuple[keys.BootStep, list[keys.Action]]]:
    """boot_steps, or boot_command's elements, each parsed: the groups boot_keygroup_interval separates."""
    s = ctx.boot_options
    option = "boot_steps" if s.boot_steps else "boot_command"
    groups = s.boot_steps or tuple(keys.BootStep(c) for c in s.boot_command)
    return [(g, keys.parse(expand(g.keys, values, where=f"{option}[{i}]"), where=f"{option}[{i}]"))
            for i, g in enumerate(groups)]


def type_boot_command(ctx: BuildContext) -> None:
    s = ctx.boot_options
    assert ctx.machine is not None
    groups = key_groups(ctx, ctx.template_values)
    boot_wait = max(0.0, s.boot_wait)  # Packer: a negative boot_wait means no wait
    if boot_wait and groups:
        ctx.say(f"waiting {boot_wait:g}s (boot_wait)")
        _sleep_alive(ctx, boot_wait)
    if not groups:
        return
    # Emulated guests poll the keyboard slowly and QEMU's PS/2 queue is short: keys typed at KVM pace are
    # dropped under TCG (Packer's dropped-keystroke bug), so the pace is scaled like the timeouts.
    interval = max(s.boot_key_interval, TCG_KEY_INTERVAL) if ctx.emulated else s.boot_key_interval
    count = sum(len(actions) for _, actions in groups)
    what = f"{len(groups)} boot steps" if s.boot_steps else "the boot command"
    ctx.say(f"typing {what} ({count} keys/waits, {interval * 1000:.0f} ms apart)")
    for n, (step, actions) in enumerate(groups, start=1):
        if n > 1 and s.boot_keygroup_interval > 0:
            _sleep_alive(ctx, s.boot_keygroup_interval)
        if s.boot_steps:  # announced before it is typed, so a stuck installer shows which step it missed
            ctx.say(f"boot step {n}/{len(groups)}: {step.description or step.keys}")
        ctx.machine.send_keys(actions, interval)
        if s.boot_steps and ctx.debug and n < len(groups):
            _debug_pause(ctx, n)


def _debug_pause(ctx: BuildContext, n: int) -> None:
    """-debug: as Packer, wait for Enter after each boot step, so you can follow the installer on the screen."""
    if not sys.stdin.isatty():
        if n == 1:
            ctx.say("-debug: stdin is not a terminal, so the boot steps are not paused")
        return
    ctx.say(f"-debug: paused after boot step {n}; press Enter to type the next one")
    sys.stdin.readline()


def check_boot_command(ctx: BuildContext) -> None:
    """Parse boot_command / boot_steps before anything starts (placeholders expanded with stand-in values)."""
    s = ctx.boot_options
    if s.boot_command and s.boot_steps:
        raise FactoryError("boot_command and boot_steps cannot both be set",
                           hint="keep boot_steps (the same keys, with a description per step) or boot_command")
    if key_groups(ctx, {k: v or "0" for k, v in ctx.template_values.items()}):
        ctx.require(Feature.KEYS, "boot_steps" if s.boot_steps else "boot_command")


def check_before_start(ctx: BuildContext) -> None:
    """What can be found wrong before anything runs: the boot keys, and where SSH will connect."""
    check_boot_command(ctx)
    if ctx.comm_options.communicator == "ssh" and ctx.comm_options.skip_nat_mapping:
        ssh_target(ctx)
    if isinstance(ctx.config, QemuSource) and ctx.s.iso and ctx.s.install_method == "direct-kernel":
        ctx.require(Feature.DIRECT_BOOT, 'install_method = "direct-kernel"')


def _sleep_alive(ctx: BuildContext, seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        ctx.machine_alive()
        time.sleep(min(0.2, max(0.0, end - time.monotonic())))


class Install(Step[BuildContext]):
    """Boot the installer, follow its serial console, wait for it to power off (a reboot ends the VM too)."""

    name, title = "install", "Installing from the ISO"
    resumable = True  # a checkpoint after boot-to-SSH covers the install too

    def options(self, ctx: BuildContext) -> Mapping[str, Any]:
        return {"boot_command": list(ctx.s.boot_command),
                "boot_steps": [[b.keys, b.description] for b in ctx.s.boot_steps],
                "cpus": ctx.s.cpus, "memory": ctx.s.memory}

    def run(self, ctx: BuildContext) -> None:
        start_machine(ctx, machine_spec(ctx, install=True), "install")
        assert ctx.machine is not None
        type_boot_command(ctx)
        limit = ctx.s.ssh_timeout * ctx.timeout_factor
        ctx.say(f"waiting up to {limit:g}s for the installer to finish and power off")
        if not ctx.wait_poweroff(limit, last_words=True):
            raise FactoryError(f"the installer did not finish within {limit:g}s",
                               hint="see the serial log and screenshot; raise ssh_timeout for slow installs")
        ctx.machine.stop()
        ctx.say("installer finished; booting the installed system")


# Options that never reach the guest: where results go, host-side waits and ports, what the user watches, and
# paths whose content another stage already covers (media, seed, HTTP folder, keys). Every other option of the
# source is part of the boot stage's ID, so changing any of them never reuses a checkpoint made without it.
HOST_SIDE = frozenset({
    "output_directory", "skip_compaction", "disk_compression", "format", "qemu_img_args", "shutdown_command",
    "shutdown_timeout", "ssh_timeout", "winrm_timeout", "ssh_handshake_attempts", "ssh_keep_alive_interval",
    "ssh_read_write_timeout", "pause_before_connecting", "host_port_min", "host_port_max", "http_port_min",
    "http_port_max", "http_bind_address", "http_interface", "serial_log", "screenshot_on_failure", "headless",
    "display", "use_default_display", "vnc_bind_address", "vnc_port_min", "vnc_port_max", "vnc_use_password",
    "vnc_password", "disable_vnc", "qmp_enable", "qmp_socket_path", "iso_url", "iso_urls", "iso_target_path",
    "iso_target_extension", "iso_skip_cache", "http_directory", "cd_files", "floppy_files", "floppy_dirs",
    "ssh_private_key_file", "ssh_certificate_file", "ssh_bastion_private_key_file", "ssh_bastion_certificate_file",
    "efi_firmware_code", "efi_firmware_vars", "efi_drop_efivars", "run_once",
})


def vm_options(s: QemuSource) -> dict[str, Any]:
    """Every option of the source that reaches the guest (see HOST_SIDE), for the boot stage's ID."""
    return {f.name: getattr(s, f.name) for f in dataclasses.fields(s) if f.name not in HOST_SIDE}


class Boot(Step[BuildContext]):
    name, title = "boot", "Starting the VM"
    resumable = restarts = True

    def options(self, ctx: BuildContext) -> Mapping[str, Any]:
        from factory.machine.qemu import default_cpu  # the driver module, loaded by its name until here

        return {"vm": vm_options(ctx.s), "firmware": ctx.firmware.value,
                "cpu": ctx.s.cpu_model or default_cpu(ctx.accel)}

    def run(self, ctx: BuildContext) -> None:
        resumed = ctx.resume_state is not None
        if ctx.comm_options.communicator == "ssh":
            from factory.comm import preload

            preload()
        try:
            start_machine(ctx, machine_spec(ctx, install=False), "resumed from a checkpoint" if resumed else "run")
        except FactoryError as exc:
            if not resumed:
                raise
            # The saved state did not load (nothing ran, the disk is untouched): boot from the checkpoint's disk.
            ctx.emit(EventKind.NOTICE, f"the checkpoint's VM state did not load ({exc.message}): booting its disk "
                     f"({checkpoint.LOST_ON_BOOT}; -resume=false starts cold)")
            if (kept := checkpoint.active(ctx)) is not None:
                kept.rebooted = True
            assert ctx.machine is not None
            ctx.machine.stop()
            ctx.resume_state, resumed = None, False
            start_machine(ctx, machine_spec(ctx, install=False), "run")
        find_ssh(ctx)
        if ctx.s.disk_image and not resumed:  # a restored guest is past its boot menu
            _check_boot_record(ctx)
            type_boot_command(ctx)


def _check_boot_record(ctx: BuildContext) -> None:
    """Say at once when the disk image cannot boot (no 55 AA signature: random bytes, a bare filesystem, the
    wrong file), rather than only after ssh_timeout; the SSH timeout's hint names it first. Not with a kernel
    given in qemuargs (a bare filesystem booted by -kernel is fine)."""
    from factory.artifact.source import boot_record

    if ctx.disk is None or any(args and args[0] == "-kernel" for args in ctx.s.qemuargs):
        return
    if boot_record(ctx.disk) is False:
        ctx.unbootable = (f"the disk image {ctx.media_url or ctx.media} has no boot record (its first sector "
                          "does not end in 55 AA: no partition table, no boot loader): the firmware finds nothing "
                          "to boot on it")
        ctx.emit(EventKind.WARNING, ctx.unbootable + "; is iso_url the right file?")


def find_ssh(ctx: BuildContext) -> None:
    """Ask the running VM where its SSH port is reached (a forwarding driver binds the forward now, race-free),
    unless skip_nat_mapping connects to ssh_host directly."""
    s = ctx.comm_options
    if s.communicator != "ssh" or s.skip_nat_mapping:
        return
    assert ctx.machine is not None
    ctx.ssh_address = address = ctx.machine.ssh_address(s.ssh_port, PortRange(s.host_port_min, s.host_port_max),
                                                        timeout=s.ssh_timeout * ctx.timeout_factor)
    if ctx.ssh_lease is None:  # a port reserved ahead was announced then
        ctx.say(f"SSH forwarded from {address}" if address.forwarded else f"the guest's SSH is at {address}")


def ssh_target(ctx: BuildContext) -> tuple[str, int]:
    """Where the communicator connects: the machine's SSH address, or ssh_host:ssh_port with skip_nat_mapping."""
    s = ctx.comm_options
    if s.skip_nat_mapping:
        if not s.ssh_host:
            raise FactoryError("skip_nat_mapping = true needs ssh_host: without a forwarded port factory must be "
                               "told where the guest is", hint="set ssh_host (and ssh_port) to the guest's "
                               "address as the host reaches it, e.g. on a bridge")
        return s.ssh_host, s.ssh_port
    assert ctx.ssh_address is not None
    return s.ssh_host or ctx.ssh_address.host, ctx.ssh_address.port  # Packer's QEMU builder: ssh_host wins


class Connect(Step[BuildContext]):
    name, title = "connect", "Waiting for SSH"
    resumable = restarts = checkpoint = True  # boot-to-SSH is the first checkpoint

    def applies(self, ctx: BuildContext) -> bool:
        return ctx.comm_options.communicator == "ssh"

    def options(self, ctx: BuildContext) -> Mapping[str, Any]:
        return {"username": ctx.ssh_username, "communicator": ctx.comm_options.communicator}

    def run(self, ctx: BuildContext) -> None:
        s = ctx.comm_options
        if s.communicator != "ssh":
            return
        from factory.comm.ssh import connect

        assert ctx.machine is not None
        host, port = ssh_target(ctx)
        timeout = s.ssh_timeout * ctx.timeout_factor
        # Every other communicator option (pty, agent, bastion, proxy, tunnels ...) comes parsed in ctx.ssh.
        settings = dataclasses.replace(ctx.ssh, host=host, port=port, keypair=ctx.keypair, timeout=timeout)
        ctx.say(f"waiting up to {timeout:g}s for SSH on {settings.target}")
        try:
            ctx.comm = connect(settings, alive=ctx.machine_alive, notify=lambda m: ctx.output("ssh", m))
        except FactoryError as exc:
            if ctx.serial is not None and ctx.serial.watch.fatal is not None:
                raise  # the guest is lost: no SSH setting is the cause
            raise FactoryError(exc.message, hint=_ssh_hint(ctx, exc.hint), where=exc.where) from exc
        ctx.cleanups.push("close SSH", ctx.comm.close)
        ctx.say("connected over SSH")


def _ssh_hint(ctx: BuildContext, inner: str | None) -> str:
    causes = [t.message for t in (ctx.serial.watch.told if ctx.serial is not None else ())]
    if ctx.unbootable:
        causes.insert(0, ctx.unbootable + " (see the screenshot kept for diagnosis)")
    if ctx.emulated:
        limit = ctx.comm_options.ssh_timeout
        causes.append(f"the VM runs under TCG emulation (no KVM), which boots 10-50x slower: raise ssh_timeout "
                      f"(was {limit:g}s, scaled to {limit * ctx.timeout_factor:g}s)")
    causes.append("the guest got no DHCP lease (check the serial log for the network)")
    causes.append("sshd is not installed or did not start")
    causes.append(f"wrong ssh_username {ctx.ssh_username!r} or the key/password was not applied "
                  "(cloud-init did not run: is the cidata seed attached?)")
    text = "likely causes: " + "; ".join(causes)
    return f"{inner}\n{text}" if inner else text


class Shutdown(Step[BuildContext]):
    """shutdown_command over SSH, then ACPI power-down, then quit, within shutdown_timeout."""

    name, title = "shutdown", "Shutting down"

    def options(self, ctx: BuildContext) -> Mapping[str, Any]:
        return {"shutdown_command": ctx.shutdown_options.shutdown_command}

    def run(self, ctx: BuildContext) -> None:
        machine = ctx.machine
        assert machine is not None
        shutdown = ctx.shutdown_options
        limit = shutdown.shutdown_timeout * ctx.timeout_factor
        deadline = time.monotonic() + limit
        acpi = True
        if shutdown.shutdown_command and ctx.comm is not None:
            ctx.say(f"running shutdown_command: {shutdown.shutdown_command}")
            started = time.monotonic()
            if self._shutdown_command(ctx):
                acpi = not ctx.wait_poweroff(limit)
                if not acpi:  # the guest's own shutdown: what a build that ends here cannot skip
                    ctx.say(f"the guest powered off {time.monotonic() - started:.1f}s after shutdown_command")
                if acpi:
                    ctx.emit(EventKind.NOTICE, f"the guest did not power off within {limit:g}s after "
                             "shutdown_command: trying ACPI power-down")
        if ctx.comm is not None:
            ctx.comm.close()
        if acpi and machine.running():
            ctx.say("ACPI power-down (the power button)")
            machine.powerdown()
            if not ctx.wait_poweroff(max(deadline - time.monotonic(), 30.0 * ctx.timeout_factor)):
                ctx.emit(EventKind.NOTICE, "the guest ignored the ACPI power button: stopping the VM; "
                         "the disk may need a filesystem check")
        machine.stop()
        if ctx.serial is not None:
            ctx.serial.stop()
        ctx.say("VM stopped")

    def _shutdown_command(self, ctx: BuildContext) -> bool:
        """Run it; True if it was accepted (exit 0 or the connection dropped as the guest went down)."""
        from factory.comm.ssh import Disconnected

        try:
            command = ctx.shutdown_options.shutdown_command
            assert command is not None
            code = ctx.connected.run(command, on_line=lambda line: ctx.output("shutdown", line),
                                timeout=60.0 * ctx.timeout_factor)
        except Disconnected:
            return True
        except FactoryError as exc:
            ctx.emit(EventKind.NOTICE, f"shutdown_command failed ({exc.message}): falling back to ACPI power-down")
            return False
        if code != 0:
            ctx.emit(EventKind.NOTICE, f"shutdown_command exited with {code}: falling back to ACPI power-down")
            return False
        return True


@contextlib.contextmanager
def screendump_on_sigusr1(ctx: BuildContext) -> Iterator[None]:
    """`kill -USR1 <factory pid>` saves a PNG of the VM's screen on request (headless builds have no window)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        if ctx.machine is None or not isinstance(ctx.config, QemuSource | LibvirtSource):
            return
        dest = paths.cache_dir("screens") / f"{ctx.vm_name}-{time.strftime('%Y%m%d-%H%M%S')}.png"
        shot = ctx.machine.screendump(dest)
        ctx.emit(EventKind.NOTICE, f"screendump: {shot}" if shot else "screendump: the VM is not running",
                 data={"screenshot": str(shot)} if shot else {})

    old = signal.signal(signal.SIGUSR1, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGUSR1, old)


def keep_diagnostics(ctx: BuildContext, exc: BaseException) -> None:
    """On failure: a screendump and the serial log, copied where they survive the cleanup; paths printed."""
    if (isinstance(exc, KeyboardInterrupt) or not isinstance(ctx.config, QemuSource | LibvirtSource)
            or ctx.workdir is None):
        return
    keep = paths.cache_dir("failures", f"{ctx.vm_name}-{time.strftime('%Y%m%d-%H%M%S')}")
    if ctx.machine is not None and ctx.machine_options.screenshot_on_failure:
        shot = ctx.machine.screendump(keep / "screen.png")
        if shot:
            ctx.kept_files.append(shot)
    log = serial_log_path(ctx)
    if ctx.serial is not None:
        ctx.serial.stop()
    if log.exists():
        if ctx.machine_options.serial_log is None:
            shutil.copyfile(log, keep / log.name)
            log = keep / log.name
        ctx.kept_files.append(log)
    if ctx.kept_files:
        shots = [str(p) for p in ctx.kept_files if p.suffix == ".png"]
        ctx.emit(EventKind.NOTICE, "kept for diagnosis: " + ", ".join(str(p) for p in ctx.kept_files),
                 data={"screenshot": shots[0]} if shots else {})
    else:
        keep.rmdir()
