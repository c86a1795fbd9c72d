"""The state one source build carries from step to step, and its settings read from the source config."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from factory.artifact.model import Artifact, DiskFormat, Firmware, Hardware
from factory.build import RunnerContext
from factory.machine.driver import DirectBoot, DiskToolArgs, Driver, Endpoint, Feature, Machine
from factory.machine.httpd import HttpServer, guest_host
from factory.machine.keys import BootStep, boot_steps
from factory.machine.ports import PortLease
from factory.machine.serial import SerialFollower
from factory.schema.types import parse_duration, parse_size_mib

if TYPE_CHECKING:
    from factory.comm.ssh import SSHSettings


def _get(config: Any, name: str, default: Any = None) -> Any:
    value = getattr(config, name, default)
    return default if value is None else value


@dataclass(frozen=True)
class Settings:
    """The source options the steps act on, parsed once (durations in seconds, sizes in MiB)."""

    vm_name: str
    output_directory: Path
    disk_image: bool
    use_backing_file: bool
    disk_size_mib: int
    format: DiskFormat
    disk_interface: str
    disk_cache: str
    disk_discard: str
    disk_detect_zeroes: str
    cdrom_interface: str | None
    skip_compaction: bool
    disk_compression: bool
    accelerator: str
    machine_type: str
    cpu_model: str
    cpus: int
    topology: tuple[int, int, int] | None
    memory_mb: int
    net_device: str
    firmware: Firmware
    efi_code: Path | None
    efi_vars: Path | None
    bios_file: Path | None
    qemuargs: tuple[tuple[str, ...], ...]
    headless: bool
    vga: str
    qemu_binary: str
    skip_resize_disk: bool
    disk_additional_mib: tuple[int, ...]
    efi_drop_efivars: bool
    boot_command: tuple[str, ...]
    boot_steps: tuple[BootStep, ...]
    boot_wait: float
    boot_key_interval: float
    boot_keygroup_interval: float
    qemu_img_args: DiskToolArgs
    iso_target_path: Path | None
    iso_target_extension: str
    iso_skip_cache: bool
    http_network_protocol: str
    skip_nat_mapping: bool
    ssh_host: str | None
    ssh_port: int
    shutdown_command: str
    shutdown_timeout: float
    communicator: str
    ssh_username: str
    ssh_password: str | None
    ssh_private_key_file: Path | None
    ssh_timeout: float
    ssh_handshake_attempts: int
    pause_before_connecting: float
    host_port_min: int
    host_port_max: int
    http_directory: Path | None
    http_content: dict[str, str]
    http_port_min: int
    http_port_max: int
    http_bind_address: str
    cd_files: tuple[str, ...]
    cd_content: dict[str, str]
    cd_label: str | None
    serial_log: Path | None
    screenshot_on_failure: bool
    # Every communicator option parsed (factory.comm.config); Connect adds the target, key and scaled timeout.
    ssh: SSHSettings

    @property
    def hardware(self) -> Hardware:
        return Hardware(cpus=self.cpus, memory_mb=self.memory_mb, firmware=self.firmware,
                        disk_interface=self.disk_interface, net_device=self.net_device,
                        machine_type=self.machine_type)


def _path(root: Path, value: str | None) -> Path | None:
    return (root / os.path.expanduser(value)) if value else None


def _topology(config: Any) -> tuple[int, int, int] | None:
    sockets, cores, threads = (_get(config, k) for k in ("sockets", "cores", "threads"))
    if not (sockets or cores or threads):
        return None
    return int(sockets or 1), int(cores or 1), int(threads or 1)


def settings_from(config: Any, source_name: str, root: Path) -> Settings:
    """Read a builder config (QemuSource, or another builder's with the same Packer option names)."""
    efi_code, efi_vars = _get(config, "efi_firmware_code"), _get(config, "efi_firmware_vars")
    efi = bool(_get(config, "efi_boot", False) or efi_code or efi_vars)
    fmt = DiskFormat(_get(config, "format", "qcow2"))
    use_backing = bool(_get(config, "use_backing_file", False)) and fmt is DiskFormat.QCOW2
    from factory.comm.config import ssh_settings_from  # imported when used: paramiko is slow to import

    # With `iso = ...` factory creates the user itself: preseed_vars' username (PreseedVars' default).
    username = _get(config, "ssh_username") or (
        (_get(config, "preseed_vars", {}) or {}).get("username", "factory") if _get(config, "iso") else "root")
    return Settings(
        vm_name=_get(config, "vm_name", f"packer-{source_name}"),
        output_directory=root / _get(config, "output_directory", f"output-{source_name}"),
        disk_image=bool(_get(config, "disk_image", False)),
        use_backing_file=use_backing,
        disk_size_mib=parse_size_mib(_get(config, "disk_size", "40960M"), what="disk_size"),
        format=fmt,
        disk_interface=_get(config, "disk_interface", "virtio"),
        disk_cache=_get(config, "disk_cache", "writeback"),
        disk_discard=_get(config, "disk_discard", "ignore"),
        disk_detect_zeroes=_get(config, "disk_detect_zeroes", "off"),
        cdrom_interface=_get(config, "cdrom_interface"),
        skip_compaction=bool(_get(config, "skip_compaction", False)) or use_backing,
        disk_compression=bool(_get(config, "disk_compression", False)),
        accelerator=_get(config, "accelerator", "auto"),
        machine_type=_get(config, "machine_type", "pc"),
        cpu_model=_get(config, "cpu_model", ""),
        cpus=int(_get(config, "cpus", 1)),
        topology=_topology(config),
        memory_mb=int(_get(config, "memory", 512)),
        net_device=_get(config, "net_device", "virtio-net"),
        firmware=Firmware.EFI if efi else Firmware.BIOS,
        efi_code=_path(root, efi_code), efi_vars=_path(root, efi_vars),
        bios_file=_path(root, _get(config, "firmware")),
        qemuargs=tuple(tuple(str(a) for a in args) for args in _get(config, "qemuargs", [])),
        headless=bool(_get(config, "headless", False)),
        vga=_get(config, "vga", ""),
        qemu_binary=_get(config, "qemu_binary", ""),
        skip_resize_disk=bool(_get(config, "skip_resize_disk", False)),
        disk_additional_mib=tuple(parse_size_mib(v, what="disk_additional_size")
                                  for v in _get(config, "disk_additional_size", [])),
        efi_drop_efivars=bool(_get(config, "efi_drop_efivars", False)),
        boot_command=tuple(_get(config, "boot_command", [])),
        boot_steps=boot_steps(_get(config, "boot_steps", [])),
        boot_wait=max(0.0, parse_duration(_get(config, "boot_wait", "10s"), what="boot_wait")),
        boot_key_interval=parse_duration(_get(config, "boot_key_interval", "100ms"), what="boot_key_interval"),
        # Packer leaves the default to each builder; QEMU takes keys one by one, so no pause unless asked for.
        boot_keygroup_interval=max(0.0, parse_duration(_get(config, "boot_keygroup_interval", "0s"),
                                                       what="boot_keygroup_interval")),
        qemu_img_args=DiskToolArgs.parse(_get(config, "qemu_img_args", {})),
        iso_target_path=_path(root, _get(config, "iso_target_path")),
        iso_target_extension=str(_get(config, "iso_target_extension", "iso")).lower(),
        iso_skip_cache=bool(_get(config, "iso_skip_cache", False)),
        http_network_protocol=_get(config, "http_network_protocol", "tcp"),
        skip_nat_mapping=bool(_get(config, "skip_nat_mapping", False)),
        ssh_host=_get(config, "ssh_host"),
        ssh_port=int(_get(config, "ssh_port", 22)),
        shutdown_command=_get(config, "shutdown_command", ""),
        shutdown_timeout=parse_duration(_get(config, "shutdown_timeout", "5m"), what="shutdown_timeout"),
        communicator=_get(config, "communicator", "ssh"),
        ssh_username=username,
        ssh_password=_get(config, "ssh_password"),
        ssh_private_key_file=_path(root, _get(config, "ssh_private_key_file")),
        ssh_timeout=parse_duration(_get(config, "ssh_timeout", "5m"), what="ssh_timeout"),
        ssh_handshake_attempts=int(_get(config, "ssh_handshake_attempts", 10)),
        pause_before_connecting=parse_duration(_get(config, "pause_before_connecting", "0s")),
        host_port_min=int(_get(config, "host_port_min", 2222)),
        host_port_max=int(_get(config, "host_port_max", 4444)),
        http_directory=_path(root, _get(config, "http_directory")),
        http_content=dict(_get(config, "http_content", {})),
        http_port_min=int(_get(config, "http_port_min", 8000)),
        http_port_max=int(_get(config, "http_port_max", 9000)),
        # The guest reaches the host through user-net's 10.0.2.2 → 127.0.0.1; exposing more needs a reason,
        # so loopback is the default and a template's explicit address (e.g. a bridged guest) is honoured.
        http_bind_address=str(_get(config, "http_bind_address", "127.0.0.1")),
        cd_files=tuple(_get(config, "cd_files", [])),
        cd_content=dict(_get(config, "cd_content", {})),
        cd_label=_get(config, "cd_label"),
        serial_log=_path(root, _get(config, "serial_log")),
        screenshot_on_failure=bool(_get(config, "screenshot_on_failure", True)),
        ssh=ssh_settings_from(config, root, username),
    )


@dataclass
class BuildContext(RunnerContext):
    """Mutable state of one source build (the runner's context plus what steps produce)."""

    source_type: str = "qemu"
    source_name: str = ""
    root: Path = field(default_factory=Path.cwd)
    config: Any = None
    settings: Settings | None = None
    build: Any = None                      # factory.template Build (provisioners, post-processors)
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
    release: Any = None                    # factory.media.catalog.Release for `iso = "name"`
    direct_boot: DirectBoot | None = None
    unattended_files: dict[str, bytes] = field(default_factory=dict)
    disk: Path | None = None
    extra_disks: list[Path] = field(default_factory=list)
    seed: Path | None = None
    efi_code: Path | None = None
    efi_vars: Path | None = None
    keypair: Any = None
    ssh_lease: PortLease | None = None     # a host port reserved before the VM starts ({{ .SSHHostPort }})
    ssh_address: Endpoint | None = None    # where the running VM's SSH is reached (Machine.ssh_address)
    http: HttpServer | None = None
    machine: Machine | None = None
    serial: SerialFollower | None = None
    comm: Any = None
    artifact: Artifact | None = None
    artifacts: list[Artifact] = field(default_factory=list)
    kept_files: list[Path] = field(default_factory=list)
    console: Any = None                    # factory.steps.console.ConsoleState (VNC, QMP, TPM, floppy)

    def require(self, feature: Feature, what: str) -> None:
        """A clear error before anything runs when the build's driver cannot do what option `what` asks."""
        if self.driver is not None:
            self.driver.require(feature, what)

    @property
    def s(self) -> Settings:
        assert self.settings is not None
        return self.settings

    @property
    def template_values(self) -> dict[str, str]:
        """Values for `{{ .X }}` placeholders in boot_command, qemuargs and http_content."""
        ipv6 = self.s.http_network_protocol == "tcp6"
        host = (self.http.guest_host if self.http else self.driver.host_address(ipv6) if self.driver
                else guest_host(ipv6))
        values = {"Name": self.s.vm_name, "HTTPIP": host,
                  "HTTPPort": "",
                  "HTTPDir": str(self.s.http_directory or ""), "OutputDir": str(self.s.output_directory),
                  "SSHHostPort": "", "SSHPublicKey": ""}
        port = self.ssh_address or self.ssh_lease
        if port is not None:
            values["SSHHostPort"] = str(port.port)
        if self.http is not None:
            values["HTTPPort"] = str(self.http.port)
        if self.keypair is not None:
            values["SSHPublicKey"] = self.keypair.public_openssh
        return values
