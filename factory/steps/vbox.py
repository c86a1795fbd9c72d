"""The steps of a VirtualBox build (virtualbox-iso, virtualbox-ovf, virtualbox-vm), in Packer's order:

    output → VBoxManage → media → SSH key → CD → HTTP → create/import/find the VM → NAT rule → vboxmanage →
    start + boot_command → SSH → version file, guest additions → provision → shutdown → vboxmanage_post →
    detach → export (or snapshot) → publish → post-processors

VirtualBox owns the VM's disks and writes the export itself; factory drives it with the VBoxManage command lines
of factory.machine.vbox_commands through the VirtualBox driver. A VM factory registered is unregistered and
deleted (`unregistervm --delete`) after a failure, Ctrl-C, or success unless keep_registered.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import socket
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from factory.artifact.model import Artifact, DiskFormat, Firmware, Hardware
from factory.build import EventKind, Step
from factory.errors import FactoryError
from factory.machine import keys
from factory.machine import vbox_commands as cmd
from factory.machine.driver import Endpoint, MachineSpec
from factory.machine.httpd import HttpServer
from factory.machine.serial import SerialFollower
from factory.machine.vbox_appliance import check_appliance
from factory.machine.virtualbox import VBoxMachine, VirtualBoxDriver
from factory.placeholders import expand
from factory.schema.virtualbox import VirtualBoxIsoSource, VirtualBoxOvfSource, VirtualBoxSource, VirtualBoxVmSource
from factory.steps import comm, finish, prepare, vm
from factory.steps.context import BuildContext
from factory.steps.seed import collect_files

SOURCE_TYPES = ("virtualbox-iso", "virtualbox-ovf", "virtualbox-vm")


@dataclass
class VBoxContext(BuildContext):
    """A build context whose source is a VirtualBox builder; names and values come from its options."""

    registered: bool = False               # factory registered the VM (so it may unregister and delete it)
    owner: str = ""                        # this run's factory/owner mark (host:pid:run uuid)
    vm_uuid: str = ""                      # the VM's UUID once known (chosen by factory for virtualbox-iso)
    keep_vm: bool = False                  # set once the build succeeded with keep_registered
    dvds: list[cmd.Dvd] = field(default_factory=list)
    source_file: Path | None = None        # virtualbox-ovf: the fetched .ovf/.ova
    vbox_version: str = ""
    floppy: Path | None = None             # floppy_files / floppy_dirs / floppy_content as an image

    @property
    def v(self) -> VirtualBoxSource:
        assert isinstance(self.config, VirtualBoxIsoSource | VirtualBoxOvfSource | VirtualBoxVmSource)
        return self.config

    @property
    def vbox_driver(self) -> VirtualBoxDriver:
        assert isinstance(self.driver, VirtualBoxDriver)
        return self.driver

    @property
    def vm_name(self) -> str:
        return self.v.vm_name or f"packer-{self.source_name}"

    @property
    def output_directory(self) -> Path:
        return self.root / (self.v.output_directory or f"output-{self.source_name}")

    @property
    def firmware(self) -> Firmware:
        iso = self.v if isinstance(self.v, VirtualBoxIsoSource) else None
        return Firmware.EFI if iso is not None and iso.firmware == "efi" else Firmware.BIOS

    @property
    def hardware(self) -> Hardware:
        iso = self.v if isinstance(self.v, VirtualBoxIsoSource) else VirtualBoxIsoSource()
        interface = {"pcie": "sata", "virtio": "virtio-scsi"}.get(iso.hard_drive_interface, iso.hard_drive_interface)
        return Hardware(cpus=iso.cpus, memory_mb=iso.memory, firmware=self.firmware, disk_interface=interface,
                        net_device="virtio-net" if iso.nic_type == "virtio" else "e1000")

    @property
    def ssh_username(self) -> str:
        return self.comm_options.ssh_username or "root"

    @property
    def template_values(self) -> dict[str, str]:
        values = {"Name": self.vm_name, "HTTPIP": self.driver.host_address(False) if self.driver else "10.0.2.2",
                  "HTTPPort": str(self.http.port) if self.http else "", "HTTPDir": "",
                  "OutputDir": str(self.output_directory), "SSHHostPort": "", "SSHPublicKey": "",
                  "Version": self.vbox_version}
        if self.ssh_lease is not None:
            values["SSHHostPort"] = str(self.ssh_lease.port)
        if self.keypair is not None:
            values["SSHPublicKey"] = self.keypair.public_openssh
        return values

    def run_vbox(self, args: list[str]) -> str:
        """One VBoxManage call, shown in the build log as the command line VirtualBox gets."""
        self.output("vboxmanage", " ".join(args))
        return self.vbox_driver.vbox(args)


def steps(ctx: BuildContext) -> list[Step[Any]]:
    """The step list; the shared steps (output, key, provision, post-processors) take any BuildContext."""
    return [prepare.PrepareOutput(), Tool(), Media(), SshKey(), Cd(), Floppy(), Http(), CreateVm(), NatRule(),
            CustomCommands("vboxmanage"), Boot(), Connect(), VersionFile(), GuestAdditions(),
            *finish.provision_steps(ctx), ClearKeys(), Shutdown(), CustomCommands("vboxmanage_post"), Detach(),
            Export(), Publish(), finish.PostProcess()]


class Tool(Step[VBoxContext]):
    name, title = "vboxmanage-version", "Finding VBoxManage"

    def run(self, ctx: VBoxContext) -> None:
        version = ctx.vbox_driver.vbox.version
        ctx.vbox_version = str(version)
        ctx.say(f"VirtualBox {version.text} ({ctx.vbox_driver.vbox.exe})")
        if version.major < 6:
            raise FactoryError(f"VirtualBox {version} is too old for factory's VBoxManage command lines",
                               hint="use VirtualBox 6.1 or later")


class Media(Step[VBoxContext]):
    """virtualbox-iso: the installer ISO; virtualbox-ovf: the appliance (checked to hold a disk)."""

    name, title = "media", "Fetching the ISO / appliance"

    def applies(self, ctx: VBoxContext) -> bool:
        return not isinstance(ctx.v, VirtualBoxVmSource)

    def options(self, ctx: VBoxContext) -> Mapping[str, Any]:
        v = ctx.v
        if isinstance(v, VirtualBoxIsoSource):
            return {"urls": v.iso_url_list, "checksum": v.iso_checksum}
        assert isinstance(v, VirtualBoxOvfSource)
        return {"source_path": v.source_path, "checksum": v.checksum}

    def run(self, ctx: VBoxContext) -> None:
        from factory.media.cache import fetch

        v = ctx.v
        if isinstance(v, VirtualBoxIsoSource):
            urls, checksum = v.iso_url_list, v.iso_checksum or "none"
        else:
            assert isinstance(v, VirtualBoxOvfSource)
            urls, checksum = [v.source_path], v.checksum
        if not urls:
            return
        resolved = [str(ctx.root / u) if "://" not in u and not Path(u).is_absolute() else u for u in urls]
        found = fetch(resolved, checksum)
        if isinstance(v, VirtualBoxIsoSource):
            ctx.media = found
            ctx.dvds.append(cmd.Dvd("boot_iso", found, v.iso_interface))
        else:
            try:
                check_appliance(found)
            except FactoryError as exc:   # name the option that brought the appliance in
                raise FactoryError(f"source_path: {exc.message}", hint=exc.hint) from None
            ctx.source_file = found
        ctx.say(f"media: {found}")


class SshKey(prepare.SshKey):
    def applies(self, ctx: BuildContext) -> bool:
        return ctx.comm_options.communicator == "ssh"

    def run(self, ctx: BuildContext) -> None:
        c = ctx.comm_options
        if c.ssh_password:
            from factory import secrets

            secrets.register(c.ssh_password)
        if not c.ssh_password and not c.ssh_private_key_file and not c.ssh_agent_auth:
            from factory.comm.keys import KeyPair

            ctx.keypair = KeyPair.generate(comment=f"factory-{ctx.vm_name}", kind=c.temporary_key_pair_type,
                                           bits=c.temporary_key_pair_bits)
            ctx.say(f"generated an ephemeral {ctx.keypair.kind} key pair for this build")


class Cd(Step[VBoxContext]):
    """cd_files / cd_content as an ISO attached as a DVD (Packer: IDE port 1 device 1 unless iso_interface)."""

    name, title = "cd", "Making the CD (cd_files / cd_content)"

    def applies(self, ctx: VBoxContext) -> bool:
        return bool(ctx.v.cd_files or ctx.v.cd_content)

    def options(self, ctx: VBoxContext) -> Mapping[str, Any]:
        return {"cd_files": list(ctx.v.cd_files), "cd_content": ctx.v.cd_content, "cd_label": ctx.v.cd_label}

    def run(self, ctx: VBoxContext) -> None:
        from factory.media.seed import make_iso

        assert ctx.workdir is not None
        files = collect_files(ctx.root, tuple(ctx.v.cd_files), ctx.v.cd_content, ctx.template_values)
        ctx.seed = make_iso(files, ctx.workdir / "cd.iso", label=ctx.v.cd_label or "cdrom")
        interface = ctx.v.iso_interface if isinstance(ctx.v, VirtualBoxIsoSource) else "ide"
        ctx.dvds.append(cmd.Dvd("cd_files", ctx.seed, interface))
        ctx.say(f"CD with {len(files)} file(s): " + ", ".join(sorted(files)))


class Floppy(Step[VBoxContext]):
    name, title = "floppy", "Making the floppy (floppy_files / floppy_dirs / floppy_content)"

    def applies(self, ctx: VBoxContext) -> bool:
        return ctx.v.wants_floppy

    def options(self, ctx: VBoxContext) -> Mapping[str, Any]:
        v = ctx.v
        return {"floppy_files": list(v.floppy_files), "floppy_dirs": list(v.floppy_dirs),
                "floppy_content": v.floppy_content, "floppy_label": v.floppy_label}

    def run(self, ctx: VBoxContext) -> None:
        from factory.media import floppy

        v = ctx.v
        assert ctx.workdir is not None
        files = floppy.collect(ctx.root, v.floppy_files, v.floppy_dirs, v.floppy_content, ctx.template_values,
                               warn=lambda m: ctx.emit(EventKind.NOTICE, m))
        ctx.floppy = floppy.make_floppy(files, ctx.workdir / "floppy.img", label=v.floppy_label)
        ctx.say(f"floppy {v.floppy_label!r} with {len(files)} file(s): " + ", ".join(sorted(files)))


class Http(Step[VBoxContext]):
    name, title = "http", "Starting the HTTP server"

    def applies(self, ctx: VBoxContext) -> bool:
        return bool(ctx.v.http_directory or ctx.v.http_content)

    def options(self, ctx: VBoxContext) -> Mapping[str, Any]:
        return {"http_directory": ctx.v.http_directory, "http_content": ctx.v.http_content}

    def run(self, ctx: VBoxContext) -> None:
        v, directory = ctx.v, ctx.path(ctx.v.http_directory)
        if directory and not directory.is_dir():
            raise FactoryError(f"http_directory {directory} is not a directory")
        values = ctx.template_values
        content = {k: expand(text, values, where=f"http_content[{k!r}]").encode()
                   for k, text in v.http_content.items()} or None
        ctx.http = HttpServer(directory=directory, content=content, port_min=v.http_port_min,
                              port_max=v.http_port_max, bind=v.http_bind_address, protocol=v.http_network_protocol,
                              emit=lambda line: ctx.output("http", line), reach=ctx.vbox_driver.host_address)
        ctx.cleanups.push("stop HTTP server", ctx.http.stop)
        ctx.say(f"HTTP server on port {ctx.http.port} (guest: http://{ctx.http.guest_host}:{ctx.http.port}/)")


class CreateVm(Step[VBoxContext]):
    """Register the VM: created from scratch (iso), imported (ovf) or found (vm). A name VirtualBox already
    knows is refused for iso/ovf: factory never replaces a VM it did not create."""

    name, title = "create-vm", "Creating the VirtualBox VM"

    def options(self, ctx: VBoxContext) -> Mapping[str, Any]:
        return {"vm_name": ctx.vm_name, "type": ctx.source_type}

    def run(self, ctx: VBoxContext) -> None:
        v, name = ctx.v, ctx.vm_name
        if isinstance(v, VirtualBoxVmSource):
            return self._existing(ctx, v)
        if ctx.vbox_driver.vbox.info(name) is not None:
            raise FactoryError(f"vm_name: a VirtualBox VM named {name!r} already exists; factory never replaces a "
                               "VM it did not create", hint="choose another vm_name, or remove that VM "
                               f"(VBoxManage unregistervm {name} --delete) if it is a leftover")
        assert ctx.workdir is not None
        # The VM's files live in the build's scratch folder, gone with it; a VM kept registered after the build
        # needs them to stay: it goes to VirtualBox's default machine folder, as Packer's VMs do.
        base = ctx.vbox_driver.vbox.default_machine_folder() if v.keep_registered else ctx.workdir / "vms"
        ctx.owner = f"{socket.gethostname()}:{os.getpid()}:{ctx.run_uuid}"
        # Cleanup first: even a half-made VM (createvm done, modifyvm failed) must be unregistered.
        ctx.cleanups.push(f"unregister and delete VM {name}", lambda: _unregister(ctx))
        ctx.registered = True       # from the first command on, cleanup looks for this build's VM
        if isinstance(v, VirtualBoxIsoSource):
            ctx.vm_uuid = str(uuid.uuid4())
            rest = cmd.register_iso_vm(v, name, base, ctx.dvds, ctx.owner, ctx.vm_uuid)
        else:
            assert isinstance(v, VirtualBoxOvfSource) and ctx.source_file is not None
            ctx.say(f"importing {ctx.source_file.name} as {name}")
            ctx.run_vbox(cmd.import_appliance(ctx.source_file, name, base, v.import_flags, v.import_opts))
            ctx.vm_uuid = (ctx.vbox_driver.vbox.info(name) or {}).get("UUID", "")   # import takes no --uuid
            rest = [cmd.mark_owner(name, ctx.owner)]
        for args in rest:
            ctx.run_vbox(args)
        ctx.run_vbox(cmd.serial_to_file(name, serial_log(ctx)))
        for dvd in ctx.dvds:
            ctx.run_vbox(cmd.attach_dvd(name, dvd))
        if ctx.floppy is not None:
            for args in cmd.attach_floppy(name, ctx.floppy):
                ctx.run_vbox(args)

    def _existing(self, ctx: VBoxContext, v: VirtualBoxVmSource) -> None:
        name = ctx.vm_name
        info = ctx.vbox_driver.vbox.info(name)
        if info is None:
            raise FactoryError(f"virtualbox-vm: no registered VM named {name!r}",
                               hint="`VBoxManage list vms` lists them; vm_name must name one")
        if info.get("VMState") != "poweroff" and info.get("VMState") != "saved":
            raise FactoryError(f"virtualbox-vm: the VM {name!r} is {info.get('VMState')}; it must be powered off",
                               hint="factory never stops a VM it did not start")
        if v.attach_snapshot:
            ctx.run_vbox(["snapshot", name, "restore", v.attach_snapshot])
        for dvd in ctx.dvds:
            ctx.run_vbox(cmd.attach_dvd(name, dvd))


def serial_log(ctx: BuildContext) -> Path:
    assert ctx.workdir is not None
    return ctx.workdir / f"{ctx.vm_name}.serial.log"


def _unregister(ctx: VBoxContext) -> None:
    """`unregistervm --delete` of the VM this run registered, logged like every VBoxManage call; kept with
    keep_registered after success. The VM is this build's when it has the UUID recorded for it, else when it
    carries this run's owner mark (read back with getextradata): a VM of that name that is neither (another
    tool's, made in a race between our name check and createvm) is never touched."""
    if not ctx.registered or ctx.keep_vm:
        if ctx.keep_vm:
            ctx.say(f"keep_registered: the VM {ctx.vm_name} stays registered in VirtualBox")
        return
    vbox, name = ctx.vbox_driver.vbox, ctx.vm_name
    info = vbox.info(name)
    if info is None:
        return
    owner = ctx.owner if ctx.vm_uuid and info.get("UUID") == ctx.vm_uuid else \
        cmd.owner_of(ctx.run_vbox(cmd.read_owner(name)))
    if owner != ctx.owner:
        ctx.emit(EventKind.NOTICE, f"the VM {name} does not carry this build's {cmd.OWNER_KEY} mark "
                 f"({owner or 'none'}); factory leaves it registered")
        return
    if info.get("VMState") in ("running", "paused", "starting", "gurumeditation", "stuck"):
        ctx.run_vbox(["controlvm", name, "poweroff"])
        for _ in range(60):
            if (vbox.info(name) or {}).get("VMState") not in ("running", "paused", "stopping"):
                break
            time.sleep(0.5)
    ctx.run_vbox(cmd.unregister(name))


class NatRule(Step[VBoxContext]):
    """The SSH port: a host port from host_port_min..max, held under factory's port lock for the whole build,
    forwarded by a NAT rule on ssh_listen_address (set before start, so no race with the guest)."""

    name, title = "ssh-port", "Forwarding the SSH port"

    def applies(self, ctx: VBoxContext) -> bool:
        return ctx.v.communicator == "ssh" and not ctx.v.skip_nat_mapping

    def run(self, ctx: VBoxContext) -> None:
        from factory.machine.ports import reserve

        v = ctx.v
        ctx.ssh_lease = lease = reserve(v.host_port_min, v.host_port_max, purpose="SSH port forwarding",
                                        host=v.ssh_listen_address)
        ctx.cleanups.push(f"release port {lease.port}", lease.release)
        ctx.run_vbox(cmd.nat_rule(ctx.vm_name, v.ssh_listen_address, lease.port, v.ssh_port))
        ctx.ssh_address = Endpoint(v.ssh_listen_address, lease.port, forwarded=True)
        ctx.say(f"SSH forwarded from {ctx.ssh_address} (NAT rule {cmd.NAT_RULE})")


class CustomCommands(Step[VBoxContext]):
    """The template's own `vboxmanage` (before start) or `vboxmanage_post` (after shutdown) commands."""

    def __init__(self, option: str) -> None:
        self.option = option
        self.name = option.replace("_", "-")
        self.title = f"Running {option} commands"

    def _commands(self, ctx: VBoxContext) -> list[list[str]]:
        return ctx.v.vboxmanage if self.option == "vboxmanage" else ctx.v.vboxmanage_post

    def applies(self, ctx: VBoxContext) -> bool:
        return bool(self._commands(ctx))

    def options(self, ctx: VBoxContext) -> Mapping[str, Any]:
        return {self.option: self._commands(ctx)}

    def run(self, ctx: VBoxContext) -> None:
        values = ctx.template_values
        for i, args in enumerate(self._commands(ctx)):
            try:
                ctx.run_vbox([expand(a, values, where=f"{self.option}[{i}]") for a in args])
            except FactoryError as exc:   # the template's own command: say which one
                raise FactoryError(f"{self.option}[{i}]: {exc.message}", hint=exc.hint, where=exc.where) from None


class Boot(Step[VBoxContext]):
    name, title = "boot", "Starting the VM"

    def options(self, ctx: VBoxContext) -> Mapping[str, Any]:
        return {"headless": ctx.v.headless, "boot_command": list(ctx.v.boot_command)}

    def run(self, ctx: VBoxContext) -> None:
        assert ctx.workdir is not None
        log = serial_log(ctx)
        log.touch()
        ctx.serial = SerialFollower(log, lambda line: ctx.output("serial", line),
                                    on_trouble=lambda trouble: vm.guest_trouble(ctx, trouble)).start()
        ctx.cleanups.push("stop following the serial log", ctx.serial.stop)
        spec = MachineSpec(name=ctx.vm_name, workdir=ctx.workdir, serial_log=log, accel="virtualbox")
        machine = ctx.vbox_driver.adopt(spec, headless=ctx.v.headless, ssh=ctx.ssh_address)
        ctx.machine = machine
        ctx.cleanups.push("power off the VM", machine.stop)
        ctx.output("vboxmanage", " ".join(cmd.start(ctx.vm_name, ctx.v.headless)))
        machine.start()
        ctx.say(f"VM {ctx.vm_name} started ({'headless' if ctx.v.headless else 'gui'})")
        type_boot_command(ctx, machine)


def type_boot_command(ctx: VBoxContext, machine: VBoxMachine) -> None:
    v = ctx.v
    option = "boot_steps" if v.boot_steps else "boot_command"
    groups = v.boot_steps or tuple(keys.BootStep(c) for c in v.boot_command)
    if not groups:
        return
    values = ctx.template_values
    parsed = [(g, keys.parse(expand(g.keys, values, where=f"{option}[{i}]"), where=f"{option}[{i}]"))
              for i, g in enumerate(groups)]
    if v.boot_wait > 0:
        ctx.say(f"waiting {v.boot_wait:g}s (boot_wait)")
        time.sleep(v.boot_wait)
    ctx.say(f"typing the boot command ({len(parsed)} group(s), keyboardputscancode)")
    for i, (group, actions) in enumerate(parsed):
        if group.description:
            ctx.say(f"boot step: {group.description}")
        ctx.machine_alive()
        machine.send_keys(actions, v.boot_key_interval)
        if i + 1 < len(parsed):
            time.sleep(v.boot_keygroup_interval)


class Connect(Step[VBoxContext]):
    name, title = "connect", "Waiting for SSH"

    def applies(self, ctx: VBoxContext) -> bool:
        return ctx.v.communicator == "ssh"

    def run(self, ctx: VBoxContext) -> None:
        from factory.comm.ssh import connect

        v = ctx.v
        assert ctx.machine is not None
        if v.skip_nat_mapping:
            host, port = v.ssh_host or "127.0.0.1", v.ssh_port
        else:
            assert ctx.ssh_address is not None
            host, port = v.ssh_host or ctx.ssh_address.host, ctx.ssh_address.port
        settings = dataclasses.replace(ctx.ssh, host=host, port=port, keypair=ctx.keypair, timeout=v.ssh_timeout)
        ctx.say(f"waiting up to {v.ssh_timeout:g}s for SSH on {settings.target}")
        ctx.comm = connect(settings, alive=ctx.machine_alive, notify=lambda m: ctx.output("ssh", m))
        ctx.cleanups.push("close SSH", ctx.comm.close)
        ctx.say("connected over SSH")


class VersionFile(Step[VBoxContext]):
    """Packer's StepUploadVersion: the VirtualBox version into virtualbox_version_file in the guest."""

    name, title = "version-file", "Uploading the VirtualBox version"

    def applies(self, ctx: VBoxContext) -> bool:
        return bool(ctx.v.virtualbox_version_file) and ctx.v.communicator == "ssh"

    def run(self, ctx: VBoxContext) -> None:
        dest = ctx.v.virtualbox_version_file or ""
        ctx.connected.upload(ctx.vbox_version.encode(), dest)
        ctx.say(f"VirtualBox version {ctx.vbox_version} written to {dest} in the guest")


class GuestAdditions(Step[VBoxContext]):
    """guest_additions_mode upload/attach: the ISO from guest_additions_url, else the one installed with
    VirtualBox. factory does not download it from virtualbox.org: without one it says so and goes on."""

    name, title = "guest-additions", "Guest additions"

    def applies(self, ctx: VBoxContext) -> bool:
        return ctx.v.guest_additions_mode != "disable"

    def run(self, ctx: VBoxContext) -> None:
        iso = _guest_additions_iso(ctx)
        if iso is None:
            ctx.emit(EventKind.NOTICE, "guest additions: no VBoxGuestAdditions.iso beside VBoxManage or in "
                     "/usr/share/virtualbox and no guest_additions_url; skipped (set guest_additions_mode = "
                     "\"disable\" to silence this)")
            return
        if ctx.v.guest_additions_mode == "upload":
            dest = expand(ctx.v.guest_additions_path, ctx.template_values, where="guest_additions_path")
            ctx.connected.upload(iso, dest)
            ctx.say(f"guest additions ISO uploaded to {dest}")
        else:
            ctx.emit(EventKind.NOTICE, "guest_additions_mode = \"attach\" takes effect before boot in Packer; "
                     "factory attaches the ISO now, while the VM runs")
            iface = ctx.v.guest_additions_interface or "ide"
            ctx.run_vbox(cmd.attach_dvd(ctx.vm_name, cmd.Dvd("guest_additions", iso, iface)))


def _guest_additions_iso(ctx: VBoxContext) -> Path | None:
    from factory.media.cache import fetch

    v = ctx.v
    if v.guest_additions_url:
        checksum = f"sha256:{v.guest_additions_sha256}" if v.guest_additions_sha256 else "none"
        url = v.guest_additions_url
        return fetch([str(ctx.root / url) if "://" not in url and not Path(url).is_absolute() else url], checksum)
    exe = ctx.vbox_driver.vbox.exe
    for candidate in (exe.parent / "VBoxGuestAdditions.iso", exe.parent / "additions" / "VBoxGuestAdditions.iso",
                      Path("/usr/share/virtualbox/VBoxGuestAdditions.iso"),
                      Path("/usr/lib/virtualbox/additions/VBoxGuestAdditions.iso")):
        if candidate.is_file():
            return candidate
    return None


class ClearKeys(comm.ClearAuthorizedKeys):
    def applies(self, ctx: BuildContext) -> bool:
        c = ctx.comm_options
        return (c.communicator == "ssh" and c.ssh_clear_authorized_keys and ctx.keypair is not None
                and ctx.comm is not None)


class Shutdown(Step[VBoxContext]):
    """shutdown_command (or acpi_shutdown's power button, or nothing with disable_shutdown), then a wait of
    shutdown_timeout for VirtualBox to report the VM powered off; past it the VM is powered off and the build
    fails, as in Packer."""

    name, title = "shutdown", "Shutting down"

    def run(self, ctx: VBoxContext) -> None:
        from factory.comm.ssh import Disconnected

        v, machine = ctx.v, ctx.machine
        assert machine is not None
        if v.disable_shutdown:
            ctx.say(f"disable_shutdown: waiting up to {v.shutdown_timeout:g}s for the guest to power off")
        elif v.acpi_shutdown or not v.shutdown_command or ctx.comm is None:
            ctx.say("ACPI power button (controlvm acpipowerbutton)")
            machine.powerdown()
        else:
            ctx.say(f"running shutdown_command: {v.shutdown_command}")
            with contextlib.suppress(Disconnected):  # the guest going down may drop the session first
                ctx.comm.run(v.shutdown_command, on_line=lambda line: ctx.output("shutdown", line), timeout=60.0)
        if ctx.comm is not None:
            ctx.comm.close()
        if not ctx.wait_poweroff(v.shutdown_timeout):
            machine.stop()
            raise FactoryError(f"the VM did not power off within shutdown_timeout ({v.shutdown_timeout:g}s)",
                               hint="check shutdown_command (it needs sudo?), or raise shutdown_timeout")
        machine.stop()
        if v.post_shutdown_delay > 0:
            ctx.say(f"waiting {v.post_shutdown_delay:g}s (post_shutdown_delay)")
            time.sleep(v.post_shutdown_delay)
        if ctx.serial is not None:
            ctx.serial.stop()
        ctx.say("VM powered off")


class Detach(Step[VBoxContext]):
    """Packer's StepRemoveDevices: the NAT rule goes, and the DVDs (the installer stays with bundle_iso)."""

    name, title = "detach", "Removing build devices"

    def run(self, ctx: VBoxContext) -> None:
        if ctx.ssh_lease is not None:
            ctx.run_vbox(cmd.delete_nat_rule(ctx.vm_name))
        bundle = isinstance(ctx.v, VirtualBoxIsoSource) and ctx.v.bundle_iso
        for dvd in ctx.dvds:
            if not (bundle and dvd.role == "boot_iso"):
                ctx.run_vbox(cmd.detach_dvd(ctx.vm_name, dvd))
        if ctx.floppy is not None:
            ctx.run_vbox(cmd.detach_floppy(ctx.vm_name))


class Export(Step[VBoxContext]):
    """`VBoxManage export` into the staging folder (or virtualbox-vm's target_snapshot)."""

    name, title = "export", "Exporting the VM"

    def options(self, ctx: VBoxContext) -> Mapping[str, Any]:
        return {"format": ctx.v.format, "export_opts": ctx.v.export_opts, "skip_export": ctx.v.skip_export}

    def run(self, ctx: VBoxContext) -> None:
        v = ctx.v
        if isinstance(v, VirtualBoxVmSource) and v.target_snapshot:
            self._snapshot(ctx, v)
        if v.skip_export:
            ctx.say("skip_export: nothing exported")
            return
        assert ctx.staging is not None
        out = ctx.staging / f"{v.output_filename or ctx.vm_name}.{v.format}"
        ctx.run_vbox(cmd.export(ctx.vm_name, out, list(v.export_opts)))
        ctx.say("exported: " + ", ".join(sorted(p.name for p in ctx.staging.iterdir())))

    def _snapshot(self, ctx: VBoxContext, v: VirtualBoxVmSource) -> None:
        assert v.target_snapshot is not None
        listing = ctx.run_vbox(["snapshot", ctx.vm_name, "list", "--machinereadable"]) \
            if (ctx.vbox_driver.vbox.info(ctx.vm_name) or {}).get("CurrentSnapshotName") else ""
        if f'="{v.target_snapshot}"' in listing:
            if not v.force_delete_snapshot:
                raise FactoryError(f"virtualbox-vm: the snapshot {v.target_snapshot!r} already exists",
                                   hint="set force_delete_snapshot = true, or choose another target_snapshot")
            ctx.run_vbox(["snapshot", ctx.vm_name, "delete", v.target_snapshot])
        ctx.run_vbox(["snapshot", ctx.vm_name, "take", v.target_snapshot])


class Publish(Step[VBoxContext]):
    """Rename the staging folder onto output_directory; the artifact names the exported disk."""

    name, title = "finalize", "Publishing the artifact"

    def run(self, ctx: VBoxContext) -> None:
        assert ctx.staging is not None
        out = prepare.publish_output(ctx)
        files = prepare.output_files(out)
        disks = [p for p in files if p.suffix == ".vmdk"]
        ctx.keep_vm = ctx.v.keep_registered
        ctx.artifact = Artifact(builder_id="factory.virtualbox", build_name=ctx.build_name,
                                builder_type=ctx.source_type, files=files, disk=disks[0] if disks else None,
                                disk_format=DiskFormat.VMDK if disks else None, hardware=ctx.hardware,
                                vm_name=ctx.vm_name, state={"virtualbox": ctx.vbox_version})
        ctx.artifacts.append(ctx.artifact)
        ctx.emit(EventKind.ARTIFACT, "artifact: " + (", ".join(str(f) for f in files) or f"VM {ctx.vm_name}"))
