"""`source "qemu"`: Packer's qemu builder options (packer-plugin-qemu 1.1.x) plus factory's own extras.

Support flags follow the QEMU engine's scope (issue 4): options it acts on are ACTED, the rest are accepted
for compatibility and reported as "accepted, not acted on" (Support.IGNORED).
"""

# opt() returns a dataclasses.field (factory.options); ruff cannot see that, so RUF009 misfires here.
# ruff: noqa: RUF009

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from factory.options import Component, Kind, Support, opt
from factory.schema.common import SourceOptions
from factory.schema.types import Checked, SizeMiB
from factory.schema.values import (
    CATALOG_RELEASE,
    MAX_CPUS,
    MAX_MEMORY_MIB,
    MAX_PORT,
    MIN_MEMORY_MIB,
    PRESEED_VARS,
    VNC_BASE_PORT,
    DiskFormat,
    DiskToolArgs,
    check_file_name,
    check_output_directory,
    check_vnc_password,
)

IGNORED = Support.IGNORED


@dataclass(frozen=True)
class QemuSource(SourceOptions, Checked, Component, kind=Kind.SOURCE, name="qemu"):
    """A QEMU virtual machine driven through QMP: install from an ISO or start from a cloud image."""

    summary: ClassVar[str] = ("Builds a QEMU/KVM machine image: boots an installer ISO (or a cloud disk image), "
                              "provisions it over SSH and writes a compacted qcow2 or raw disk.")

    # factory extras -------------------------------------------------------------------------------------------
    iso: str | None = opt(None, factory_only=True, check=CATALOG_RELEASE,
                          help="Name of a release in factory's ISO catalog (e.g. "
                          "`ubuntu-24.04`, see `factory iso-list`). factory fetches and verifies the ISO and "
                          "makes the unattended install itself from `preseed_vars`: no `iso_url`, "
                          "`iso_checksum` or `boot_command` needed.")
    preseed_vars: dict[str, str] = opt({}, factory_only=True, check=PRESEED_VARS,
                                       help="Variables of the unattended install made "
                                       "for `iso` (hostname, locale, keyboard, timezone, username, password, "
                                       "packages, ...). A plain `password` is stored only as a SHA-512 crypt "
                                       "hash.")
    install_method: str = opt("media", factory_only=True, choices=("media", "direct-kernel"),
                              help="How the unattended install made for `iso` "
                              "starts: `media` remasters the ISO with the config and boot arguments; "
                              "`direct-kernel` boots the ISO's kernel and initrd directly with the arguments.")
    serial_log: str | None = opt(None, factory_only=True, help="File that receives the guest's serial console "
                                 "(default: `<output_directory>/<vm_name>.serial.log` while building; kept on "
                                 "failure).")
    screenshot_on_failure: bool = opt(True, factory_only=True, help="Save a PNG screendump of the display "
                                      "next to the serial log when the build fails.")

    # media and disk -------------------------------------------------------------------------------------------
    iso_skip_cache: bool = opt(False, help="Let QEMU read an http(s) `iso_url` directly (its curl block "
                               "driver) instead of downloading it: the first URL that answers a HEAD request "
                               "is used, and `iso_checksum` cannot be verified (said at build time). Local "
                               "paths are used in place, as always.")
    disk_image: bool = opt(False, help="`iso_url` is a bootable disk image (e.g. a cloud image), not an "
                           "installer ISO: it is copied (or used as backing file) and resized to `disk_size`.")
    use_backing_file: bool = opt(False, help="With `disk_image` and `format = \"qcow2\"`: create an overlay "
                                 "whose backing file is the downloaded image instead of a copy. Forces "
                                 "`skip_compaction`.")
    disk_size: SizeMiB = opt("40960M", help="Size of the main disk: a number with K/M/G/T suffix (binary "
                         "multiples) or a bare number of MiB.")
    disk_interface: str = opt("virtio", choices=("virtio", "virtio-scsi", "ide", "sata", "scsi", "sd"),
                              help="Bus of the main disk: `virtio`, `virtio-scsi`, `ide`, `sata`, "
                              "`scsi`, `sd`.")
    disk_cache: str = opt("writeback", choices=("writeback", "writethrough", "none", "unsafe", "directsync"),
                          help="QEMU cache mode of the disk: `writeback`, `writethrough`, `none`, "
                          "`unsafe`, `directsync`.")
    disk_discard: str = opt("ignore", choices=("ignore", "unmap"),
                            help="Discard mode of the disk: `ignore` or `unmap`.")
    disk_detect_zeroes: str = opt("off", choices=("off", "on", "unmap"),
                                  help="detect-zeroes mode of the disk: `off`, `on`, `unmap`.")
    disk_additional_size: list[SizeMiB] = opt([], help="Sizes of extra disks, named `<vm_name>-1`, `-2`, ...")
    skip_resize_disk: bool = opt(False, help="Do not resize a `disk_image` to `disk_size`.")
    cdrom_interface: str | None = opt(None, choices=("virtio-scsi", "ide", "sata", "scsi", "virtio"),
                                      help="Bus of the installer CD-ROM: `virtio-scsi`, `ide`, `sata`, "
                                      "`scsi`, `virtio`. Unset: factory picks one that works for guests that "
                                      "have only virtio drivers (cloud kernels often lack AHCI).")
    format: DiskFormat = opt("qcow2", choices=("qcow2", "raw"), help="Output disk format: `qcow2` or `raw`.")
    skip_compaction: bool = opt(False, help="Do not compact the disk (zero/discard free space, then "
                                "`qemu-img convert`) after shutdown.")
    disk_compression: bool = opt(False, help="Compress the qcow2 output (`qemu-img convert -c`).")
    qemu_img_args: DiskToolArgs = opt({}, written=dict[str, list[str]], parse=DiskToolArgs.parse,
                                      help="Extra arguments per qemu-img subcommand, placed "
                                              "before the file names as Packer does: `create` (new and overlay "
                                              "disks), `convert` (the `disk_image` copy and the final "
                                              "compaction), `resize` (growing a `disk_image`).")
    output_directory: str | None = opt(None, check=check_output_directory,
                                       help="Directory the artifact is written to (default "
                                       "`output-<source name>`). Must be absent or empty unless `-force`.")
    vm_name: str | None = opt(None, check=check_file_name,
                              help="File name of the output disk, without extension added (default "
                                      "`packer-<source name>`).")

    # machine --------------------------------------------------------------------------------------------------
    accelerator: str = opt("auto", choices=("auto", "kvm", "tcg", "hvf", "whpx", "xen", "hax", "none"),
                           help="`auto` (factory's default): a real probe boots a tiny guest with KVM "
                           "under a short timeout and falls back to TCG with a loud notice; `kvm`, `tcg`, `hvf`, "
                           "`whpx`, `xen`, or `none` (QEMU's own default) force one.")
    qemu_binary: str = opt("qemu-system-x86_64", help="QEMU system emulator to run.")
    machine_type: str = opt("pc", help="QEMU machine type (`pc`, `q35`, ...); Secure Boot needs a q35 type.")
    cpu_model: str | None = opt(None, help="QEMU `-cpu` model (e.g. `host`); unset: `host` under KVM, "
                                "`max,la57=off,svm=off` under TCG (measured fastest there, see README).")
    cpus: int = opt(1, minimum=1, maximum=MAX_CPUS, help="Number of virtual CPUs.")
    sockets: int | None = opt(None, minimum=0, maximum=MAX_CPUS,
                                help="CPU sockets of the SMP topology (0 or unset: 1).")
    cores: int | None = opt(None, minimum=0, maximum=MAX_CPUS,
                              help="Cores per socket of the SMP topology (0 or unset: 1).")
    threads: int | None = opt(None, minimum=0, maximum=MAX_CPUS,
                                help="Threads per core of the SMP topology (0 or unset: 1).")
    memory: int = opt(512, minimum=MIN_MEMORY_MIB, maximum=MAX_MEMORY_MIB, help="Memory of the VM in MiB.")
    net_device: str = opt("virtio-net", help="NIC model (`virtio-net`, `e1000`, `rtl8139`, `vmxnet3`, ...).")
    net_bridge: str | None = opt(None, help="Attach the NIC to this host bridge instead of user networking.",
                                 support=IGNORED)
    vga: str | None = opt(None, help="Emulated VGA card (`std`, `virtio`, `qxl`, ...).")
    firmware: str | None = opt(None, help="Firmware file passed to QEMU (BIOS image). For UEFI use "
                               "`efi_boot`.")
    use_pflash: bool = opt(False, help="Load `firmware` as a read-only pflash drive instead of `-bios`.")
    efi_boot: bool = opt(False, help="Boot with UEFI: OVMF is found from QEMU's firmware descriptors "
                         "(Debian, Ubuntu, Fedora paths) and each build gets a writable copy of the VARS file.")
    efi_firmware_code: str | None = opt(None, help="OVMF CODE file; unset: discovered. Setting it implies "
                                        "`efi_boot`.")
    efi_firmware_vars: str | None = opt(None, help="OVMF VARS template copied per build; unset: discovered. "
                                        "Setting it implies `efi_boot`.")
    efi_drop_efivars: bool = opt(False, help="Leave the efivars.fd file out of the artifact.")
    vtpm: bool = opt(False, help="Attach an emulated TPM 2.0: a `swtpm` process per VM start (package "
                     "`swtpm`), its state kept in the build's scratch directory across the install and run "
                     "phases, stopped with the VM.")
    use_tpm1: bool = opt(False, help="Emulate TPM 1.2 instead of 2.0.")
    # Packer's documented default on x86 (its docs: "x86: tpm-tis (default)").
    tpm_device_type: str = opt("tpm-tis", choices=("tpm-tis", "tpm-crb", "tpm-tis-device", "tpm-spapr"),
                               help="TPM device model: `tpm-tis` (x86), `tpm-crb`, `tpm-tis-device` (ARM), "
                               "`tpm-spapr` (POWER).")
    qemuargs: list[list[str]] = opt([], help="Extra QEMU switches, each `[switch, value...]`; a switch given "
                                    "here replaces factory's default for it. `{{ .HTTPIP }}`, `{{ .HTTPPort }}`, "
                                    "`{{ .OutputDir }}`, `{{ .Name }}`, `{{ .SSHHostPort }}` are expanded.")

    # console --------------------------------------------------------------------------------------------------
    headless: bool = opt(False, help="Run without a display window. factory never needs one: keys go through "
                         "QMP and screenshots through `screendump`.")
    display: str | None = opt(None, help="QEMU `-display` backend when not `headless` (e.g. `gtk`, `sdl`). "
                              "Unset or `none`: QEMU's default where an X/Wayland display exists, else "
                              "`-display none` (factory never needs a window).")
    use_default_display: bool = opt(False, help="Pass no `-display` option at all (unless `headless`).")
    vnc_bind_address: str = opt("127.0.0.1", help="Address the VNC server binds to (IPv4 or a host name).")
    vnc_port_min: int = opt(VNC_BASE_PORT, minimum=VNC_BASE_PORT, maximum=MAX_PORT,
                            help="Lowest VNC port (at least 5900: QEMU takes a display number). The "
                            "port is taken under a cross-process lock, like the SSH port, and printed as "
                            "`vnc://host:port`.")
    vnc_port_max: int = opt(6000, minimum=VNC_BASE_PORT, maximum=MAX_PORT, help="Highest VNC port (inclusive).")
    vnc_use_password: bool = opt(False, help="Protect VNC with a password (VNC authentication). It is set "
                                 "through QMP, never on QEMU's command line; without `vnc_password` a random "
                                 "one is written to a file only you can read, and its path is printed.")
    vnc_password: str | None = opt(None, check=check_vnc_password,
                                   help="Password of the VNC server (at most 8 characters, as VNC "
                                   "authentication uses).", sensitive=True)
    disable_vnc: bool = opt(False, help="Do not start a VNC server (factory types keys over QMP, not VNC).")
    qmp_enable: bool = opt(False, help="Expose an extra QMP socket for you (factory keeps its own).")
    run_once: bool = opt(False, help="Deprecated Packer option (\"TODO: deprecate\" in its qemu builder), "
                         "which no current Packer release acts on; accepted so old templates load.",
                         support=IGNORED)
    qmp_socket_path: str | None = opt(None, help="Path of the QMP socket exposed with `qmp_enable` (default "
                                      "`<vm_name>.monitor` in the build's scratch directory; printed).")

    # What several options decide together, as Packer's qemu builder reads them -----------------------------------
    @property
    def efi(self) -> bool:
        """UEFI boot: `efi_boot`, or either OVMF file set."""
        return bool(self.efi_boot or self.efi_firmware_code or self.efi_firmware_vars)

    @property
    def uses_backing_file(self) -> bool:
        """`use_backing_file` counts only for a qcow2 output."""
        return self.use_backing_file and self.format == DiskFormat.QCOW2

    @property
    def skips_compaction(self) -> bool:
        """Packer forces `skip_compaction` with a backing file (compacting would copy the whole base in)."""
        return self.skip_compaction or self.uses_backing_file

    @property
    def topology(self) -> tuple[int, int, int] | None:
        """(sockets, cores, threads) when any is set; the others default to 1."""
        if not (self.sockets or self.cores or self.threads):
            return None
        return self.sockets or 1, self.cores or 1, self.threads or 1

    ORDERED: ClassVar[tuple[tuple[str, str], ...]] = (*SourceOptions.ORDERED, ("vnc_port_min", "vnc_port_max"))
    EXCLUSIVE: ClassVar[tuple[tuple[str, ...], ...]] = (*SourceOptions.SOURCE_EXCLUSIVE, ("iso", "iso_url"),
                                                       ("iso", "iso_urls"))
    REQUIRES: ClassVar[tuple[tuple[str, str, str], ...]] = (*SourceOptions.ISO_REQUIRES,
        ("skip_nat_mapping", "ssh_host", "without a forwarded port factory must be told where the guest is: set "
                                         "ssh_host (and ssh_port) to its address as the host reaches it"),)

