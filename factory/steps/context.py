"""The state one source build carries from step to step. Options are read by attribute from the source's typed
config (factory/schema), never by name: what a build adds to them (paths against the build root, names from the
source name) is derived here."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from factory.artifact.model import Artifact, Firmware, Hardware
from factory.build import RunnerContext
from factory.errors import FactoryError
from factory.machine.driver import DirectBoot, Driver, Endpoint, Feature, Machine
from factory.machine.httpd import HttpServer, guest_host
from factory.machine.ports import PortLease
from factory.machine.serial import SerialFollower
from factory.options import Component
from factory.schema.common import BootOptions, CommunicatorOptions, HttpOptions, ShutdownOptions
from factory.schema.libvirt import LibvirtSource
from factory.schema.qemu import QemuSource

if TYPE_CHECKING:
    from factory.comm.keys import KeyPair
    from factory.comm.ssh import Communicator, SSHSettings
    from factory.media.catalog import Release
    from factory.steps.console import ConsoleState
    from factory.template.model import Build


@dataclass
class BuildContext(RunnerContext):
    """Mutable state of one source build (the runner's context plus what steps produce)."""

    source_type: str = "qemu"
    source_name: str = ""
    root: Path = field(default_factory=Path.cwd)
    config: Component | None = None        # the source's typed options (factory/schema), read by attribute
    build: Build | None = None             # the build block: its provisioners and post-processors
    force: bool = False
    debug: bool = False
    run_uuid: str = ""
    driver: Driver | None = None
    accel: str = "tcg"
    emulated: bool = False                 # the driver's probe found no hardware virtualisation
    timeout_factor: float = 1.0
    staging: Path | None = None            # becomes output_directory on success
    workdir: Path | None = None            # scratch: sockets, seed, logs; removed at the end
    media: Path | None = None
    media_url: str | None = None           # iso_skip_cache: the URL the hypervisor reads itself
    release: Release | None = None         # the catalog release of `iso = "name"`
    direct_boot: DirectBoot | None = None
    unattended_files: dict[str, bytes] = field(default_factory=dict)
    disk: Path | None = None
    unbootable: str = ""                  # why the firmware likely finds nothing to boot (told at SSH timeout)
    resume_state: Path | None = None       # a checkpoint's saved VM state the machine continues from
    extra_disks: list[Path] = field(default_factory=list)
    seed: Path | None = None
    efi_code: Path | None = None
    efi_vars: Path | None = None
    keypair: KeyPair | None = None         # the build's temporary SSH key pair
    ssh_lease: PortLease | None = None     # a host port reserved before the VM starts ({{ .SSHHostPort }})
    ssh_address: Endpoint | None = None    # where the running VM's SSH is reached (Machine.ssh_address)
    http: HttpServer | None = None
    machine: Machine | None = None
    serial: SerialFollower | None = None
    comm: Communicator | None = None
    artifact: Artifact | None = None
    artifacts: list[Artifact] = field(default_factory=list)
    kept_files: list[Path] = field(default_factory=list)
    console: ConsoleState | None = None    # VNC, QMP, TPM, floppy

    @property
    def connected(self) -> Communicator:
        """The guest's SSH connection, for steps that only run once the communicator step has connected."""
        if self.comm is None:
            raise FactoryError("internal: a step needs the SSH connection before the build connected",
                               hint="report this with the build's log (--debug)")
        return self.comm

    def machine_alive(self) -> None:
        """Raise when the machine is gone, or its guest kernel said it cannot recover (a panic, a lasting
        lockup: factory.machine.kernel_watch): what every wait on the guest checks while it polls."""
        if self.machine is None:
            raise FactoryError("internal: a step waits on the machine before it started",
                               hint="report this with the build's log (--debug)")
        self.machine.alive()
        if self.serial is not None:
            self.serial.check()

    def wait_poweroff(self, timeout: float, *, last_words: bool = False) -> bool:
        """Machine.wait_poweroff, checking the guest kernel's health every second: False on timeout.

        last_words: once the VM is off, read its console to the end and check again: an installer runs with
        -no-reboot, so a kernel that panics and reboots (panic=N) ends the VM as a finished install does."""
        assert self.machine is not None
        deadline = time.monotonic() + timeout
        while True:
            off = self.machine.wait_poweroff(min(1.0, max(deadline - time.monotonic(), 0.0)))
            if self.serial is not None and (last_words or not off):
                if off:
                    self.serial.caught_up(1.0)
                self.serial.check()
            if off or time.monotonic() >= deadline:
                return off

    def require(self, feature: Feature, what: str) -> None:
        """A clear error before anything runs when the build's driver cannot do what option `what` asks."""
        if self.driver is not None:
            self.driver.require(feature, what)

    @property
    def s(self) -> QemuSource:
        """The machine source's options, typed: a misspelt option is a mypy error, not a silent default."""
        if not isinstance(self.config, QemuSource):
            raise TypeError(f"source type {self.source_type!r} has no machine options")
        return self.config

    @property
    def lv(self) -> LibvirtSource:
        """A `source "libvirt"`'s options, typed."""
        if not isinstance(self.config, LibvirtSource):
            raise TypeError(f"source type {self.source_type!r} is not libvirt")
        return self.config

    @property
    def machine_options(self) -> QemuSource | LibvirtSource:
        """The options every machine source has (serial_log, screenshot_on_failure, output_directory)."""
        if not isinstance(self.config, QemuSource | LibvirtSource):
            raise TypeError(f"source type {self.source_type!r} has no machine options")
        return self.config

    @property
    def comm_options(self) -> CommunicatorOptions:
        """The communicator options, which every buildable source has (the null builder has only these)."""
        if not isinstance(self.config, CommunicatorOptions):
            raise TypeError(f"source type {self.source_type!r} has no communicator options")
        return self.config

    @property
    def shutdown_options(self) -> ShutdownOptions:
        """shutdown_command / shutdown_timeout, which every machine source has."""
        if not isinstance(self.config, ShutdownOptions):
            raise TypeError(f"source type {self.source_type!r} has no shutdown options")
        return self.config

    @property
    def boot_options(self) -> BootOptions:
        """boot_command, boot_wait ..., which every machine source has."""
        if not isinstance(self.config, BootOptions):
            raise TypeError(f"source type {self.source_type!r} has no boot options")
        return self.config

    @property
    def http_options(self) -> HttpOptions:
        """The HTTP server's options, which every machine source has."""
        if not isinstance(self.config, HttpOptions):
            raise TypeError(f"source type {self.source_type!r} has no HTTP options")
        return self.config

    def path(self, value: str | None) -> Path | None:
        """A path option (`~` expanded) against the build's root, as Packer reads them from its working directory."""
        return (self.root / os.path.expanduser(value)) if value else None

    @property
    def vm_name(self) -> str:
        """The VM's name: qemu's vm_name (also the disk's file name); libvirt's domain name, which carries
        factory's prefix and the run's ID so that two builds of one template never collide."""
        if isinstance(self.config, LibvirtSource):
            return self.config.domain_name or f"factory-{self.source_name}-{self.run_uuid[:8]}"
        return self.s.vm_name or f"packer-{self.source_name}"

    @property
    def output_directory(self) -> Path:
        return self.root / (self.machine_options.output_directory or f"output-{self.source_name}")

    @property
    def firmware(self) -> Firmware:
        return Firmware.EFI if self.s.efi else Firmware.BIOS

    @property
    def hardware(self) -> Hardware:
        s = self.s
        return Hardware(cpus=s.cpus, memory_mb=s.memory, firmware=self.firmware, disk_interface=s.disk_interface,
                        net_device=s.net_device, machine_type=s.machine_type)

    @property
    def ssh_username(self) -> str:
        """ssh_username, or with `iso = ...` the user factory creates itself (preseed_vars' username, else
        PreseedVars' default), or root."""
        c = self.comm_options
        if c.ssh_username:
            return c.ssh_username
        if isinstance(c, QemuSource) and c.iso:
            return c.preseed_vars.get("username", "factory")
        return "root"

    @property
    def ssh(self) -> SSHSettings:
        """Every communicator option parsed (factory.comm.config); Connect adds the target, key and timeout."""
        from factory.comm.config import ssh_settings_from  # imported when used: paramiko is slow to import

        return ssh_settings_from(self.comm_options, self.root, self.ssh_username)

    @property
    def template_values(self) -> dict[str, str]:
        """Values for `{{ .X }}` placeholders in boot_command, qemuargs and http_content."""
        ipv6 = self.http_options.http_network_protocol == "tcp6"
        host = (self.http.guest_host if self.http else self.driver.host_address(ipv6) if self.driver
                else guest_host(ipv6))
        values = {"Name": self.vm_name, "HTTPIP": host,
                  "HTTPPort": "",
                  "HTTPDir": str(self.path(self.http_options.http_directory) or ""),
                  "OutputDir": str(self.output_directory),
                  "SSHHostPort": "", "SSHPublicKey": ""}
        port = self.ssh_address or self.ssh_lease
        if port is not None:
            values["SSHHostPort"] = str(port.port)
        if self.http is not None:
            values["HTTPPort"] = str(self.http.port)
        if self.keypair is not None:
            values["SSHPublicKey"] = self.keypair.public_openssh
        return values
