"""`source "virtualbox-iso"`, `"virtualbox-ovf"` and `"virtualbox-vm"`: the official Packer VirtualBox plugin's
builders (packer-plugin-virtualbox 1.1.x, every option its generated docs list).

The three share Packer's vboxcommon configs (export, output, run, shutdown, communicator, VBoxManage, guest
additions), declared once here as `VirtualBoxCommon`; each builder adds its own: hardware and disks for
`virtualbox-iso`, the appliance to import for `virtualbox-ovf`, the registered VM and its snapshots for
`virtualbox-vm`. factory runs them through VBoxManage only (factory/machine/virtualbox.py).
"""

# opt() returns a dataclasses.field (factory.options); ruff cannot see that, so RUF009 misfires here.
# ruff: noqa: RUF009

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from factory.options import Component, Kind, Support, opt
from factory.schema.common import (
    BootOptions,
    CdOptions,
    CommunicatorOptions,
    FloppyOptions,
    HttpOptions,
    IsoOptions,
    ShutdownOptions,
)
from factory.schema.types import Checked, Duration
from factory.schema.values import check_file_name, check_output_directory, file_name_check

IGNORED = Support.IGNORED

NIC_TYPES = ("82540EM", "82543GC", "82545EM", "Am79C970A", "Am79C973", "Am79C960", "virtio")
HARD_DRIVE_INTERFACES = ("ide", "sata", "scsi", "pcie", "virtio")
ISO_INTERFACES = ("ide", "sata", "virtio")


@dataclass(frozen=True)
class VirtualBoxCommon(HttpOptions, FloppyOptions, CdOptions, BootOptions, ShutdownOptions, CommunicatorOptions):
    """What Packer's three VirtualBox builders share (its vboxcommon package)."""

    # export and output (ExportConfig, OutputConfig) -----------------------------------------------------------
    format: str = opt("ovf", choices=("ovf", "ova"), help="Export format: `ovf` (an .ovf, a .mf and the .vmdk "
                      "disks in `output_directory`) or `ova` (one tar file), written by `VBoxManage export`.")
    export_opts: list[str] = opt([], help="Extra arguments to `VBoxManage export`, e.g. `--manifest`, "
                                 "`--vsys`, `0`, `--description`, `...`.")
    output_directory: str | None = opt(None, check=check_output_directory,
                                       help="Directory the export is written to (default "
                                       "`output-<source name>`). Must be absent or empty unless `-force`.")
    output_filename: str | None = opt(None, check=file_name_check("output_filename"),
                                      help="Base name of the exported files, without extension (default "
                                      "`vm_name`).")

    # run (RunConfig) ------------------------------------------------------------------------------------------
    headless: bool = opt(False, help="Start the VM with `startvm --type headless` (no window) instead of "
                         "`--type gui`; the console is then reached over VRDP.")
    vrdp_bind_address: str = opt("127.0.0.1", help="Address the VM's VRDP server binds to (headless builds). Not "
                                 "acted on: VRDP needs VirtualBox's Extension Pack, and factory never needs a "
                                 "console (keys go through keyboardputscancode).", support=IGNORED)
    vrdp_port_min: int = opt(5900, minimum=1, maximum=65535, help="Lowest VRDP port.", support=IGNORED)
    vrdp_port_max: int = opt(6000, minimum=1, maximum=65535, help="Highest VRDP port (inclusive).",
                             support=IGNORED)

    # shutdown (ShutdownConfig) --------------------------------------------------------------------------------
    post_shutdown_delay: Duration = opt("0s", help="Duration to wait after the VM powered off, before "
                                        "`vboxmanage_post` and the export (lets VirtualBox release the disks).")
    disable_shutdown: bool = opt(False, help="Do not run `shutdown_command` nor press the power button: wait up "
                                 "to `shutdown_timeout` for the guest to power off by itself (e.g. from the last "
                                 "provisioner).")
    acpi_shutdown: bool = opt(False, help="Shut down with `controlvm <vm> acpipowerbutton` instead of "
                              "`shutdown_command`.")

    # communicator (CommConfig; host_port_min/max and skip_nat_mapping are the shared declarations) -----------
    ssh_listen_address: str = opt("127.0.0.1", help="Host address of the NAT rule that forwards a port from "
                                  "`host_port_min`..`host_port_max` to the guest's `ssh_port`.")

    # VBoxManage (VBoxManageConfig, VBoxVersionConfig) ---------------------------------------------------------
    vboxmanage: list[list[str]] = opt([], help="Extra `VBoxManage` commands run before the VM starts, each a "
                                      "list of arguments; `{{.Name}}` is the VM name (factory also expands "
                                      "`{{ .HTTPIP }}`, `{{ .HTTPPort }}` and `{{ .SSHHostPort }}`).")
    vboxmanage_post: list[list[str]] = opt([], help="Extra `VBoxManage` commands run after the VM powered off, "
                                           "before the export.")
    virtualbox_version_file: str | None = opt(".vbox_version", help="Guest path that receives the VirtualBox "
                                              "version (`VBoxManage --version`) after SSH connects; empty to "
                                              "skip.")

    # guest additions (GuestAdditionsConfig) -------------------------------------------------------------------
    guest_additions_mode: str = opt("upload", choices=("upload", "attach", "disable"),
                                    help="`upload` the guest additions ISO to `guest_additions_path` over SSH, "
                                    "`attach` it as a DVD, or `disable`. The ISO is `guest_additions_url`, else "
                                    "the one installed with VirtualBox (`VBoxGuestAdditions.iso` beside "
                                    "VBoxManage or in /usr/share/virtualbox); factory does not download it.")
    guest_additions_interface: str | None = opt(None, choices=("ide", "sata", "virtio"),
                                                help="Controller of the attached guest additions ISO (default: "
                                                "`iso_interface`, else `ide`).")
    guest_additions_path: str = opt("VBoxGuestAdditions.iso", help="Guest path of the uploaded guest additions "
                                    "ISO; `{{ .Version }}` is the VirtualBox version.")
    guest_additions_sha256: str | None = opt(None, help="SHA-256 the guest additions ISO must have.")
    guest_additions_url: str | None = opt(None, help="URL or path of the guest additions ISO.")

    # the VM ---------------------------------------------------------------------------------------------------
    keep_registered: bool = opt(False, help="Leave the VM registered in VirtualBox after a successful build (its "
                                "files then go to VirtualBox's default machine folder); by default factory "
                                "unregisters and deletes it (`unregistervm --delete`), as it always does after a "
                                "failure or Ctrl-C.")
    skip_export: bool = opt(False, help="Do not export the VM (the artifact is then the VM itself, with "
                            "`keep_registered`).")
    vm_name: str | None = opt(None, check=check_file_name,
                              help="Name of the VM in VirtualBox and of the exported files (default "
                              "`packer-<source name>`). factory refuses a name an existing VM has.")

    # Packer's VirtualBox builders pause 100ms between key groups (its docs), where its QEMU builder does not.
    boot_keygroup_interval: Duration = opt("100ms", minimum=0, help="Duration to wait between two key groups: the "
                                           "elements of `boot_command`, or the steps of `boot_steps`.")

    SOURCE_EXCLUSIVE: ClassVar[tuple[tuple[str, ...], ...]] = (
        ("http_directory", "http_content"), ("boot_command", "boot_steps"))
    NAT_REQUIRES: ClassVar[tuple[tuple[str, str, str], ...]] = (
        ("skip_nat_mapping", "ssh_host", "without a NAT rule factory must be told where the guest is: set ssh_host "
                                         "(and ssh_port) to its address as the host reaches it"),)
    ORDERED: ClassVar[tuple[tuple[str, str], ...]] = (("http_port_min", "http_port_max"),
                                                      ("host_port_min", "host_port_max"),
                                                      ("vrdp_port_min", "vrdp_port_max"))


@dataclass(frozen=True)
class VirtualBoxIsoSource(IsoOptions, VirtualBoxCommon, Checked, Component, kind=Kind.SOURCE,
                          name="virtualbox-iso"):
    """A VirtualBox machine installed from an ISO and exported as OVF/OVA."""

    summary: ClassVar[str] = ("Builds a VirtualBox machine through VBoxManage: creates the VM and its disk, boots "
                              "an installer ISO, provisions it over SSH and exports it as OVF or OVA.")

    # hardware (HWConfig and the builder's own) ----------------------------------------------------------------
    guest_os_type: str = opt("Other", help="VirtualBox OS type id (`VBoxManage list ostypes`), e.g. "
                             "`Debian_64`; a wrong value costs performance.")
    cpus: int = opt(1, minimum=1, help="Number of virtual CPUs.")
    memory: int = opt(512, minimum=4, help="Memory of the VM in MiB.")
    chipset: str = opt("piix3", choices=("piix3", "ich9"), help="Chipset: `piix3` or `ich9`.")
    firmware: str = opt("bios", choices=("bios", "efi"), help="Firmware: `bios` or `efi`.")
    nested_virt: bool = opt(False, help="Expose VT-x/AMD-V to the guest.")
    rtc_time_base: str = opt("local", choices=("UTC", "local"), help="RTC time base: `UTC` or `local`.")
    nic_type: str = opt("82540EM", choices=NIC_TYPES, help="NIC model: `82540EM`, `82543GC`, `82545EM`, "
                        "`Am79C970A`, `Am79C973`, `Am79C960`, `virtio`.")
    audio_controller: str = opt("ac97", choices=("ac97", "hda", "sb16"), help="Audio controller: `ac97`, `hda`, "
                                "`sb16`.")
    usb_controller: str | None = opt(None, help="USB controller: `ohci`, `ehci` or `xhci` (needs `usb`).")
    mouse: str | None = opt(None, help="Pointing device: `ps2`, `usb`, `usbtablet`, `usbmultitouch`.")
    keyboard: str | None = opt(None, help="Keyboard: `ps2`, `usb`.")
    gfx_controller: str | None = opt(None, choices=("vboxvga", "vboxsvga", "vmsvga", "none"),
                                     help="Graphics controller: `vboxvga`, `vboxsvga`, `vmsvga`, `none` "
                                     "(unset: VirtualBox's default for `guest_os_type`).")
    gfx_vram_size: int = opt(4, minimum=1, maximum=256, help="Video memory in MiB.")
    gfx_accelerate_3d: bool = opt(False, help="Enable 3D acceleration.")
    gfx_efi_resolution: str | None = opt(None, help="EFI screen resolution `WIDTHxHEIGHT`.")
    sound: str = opt("none", help="Host audio driver (`none`, `pulse`, `alsa`, `oss`, `null`, ...).")
    usb: bool = opt(False, help="Enable the USB bus.")

    # disks ----------------------------------------------------------------------------------------------------
    disk_size: int = opt(40000, minimum=1, help="Size of the main disk in MiB (a VDI made with `createmedium`).")
    disk_additional_size: list[int] = opt([], help="Sizes in MiB of extra disks, named `<vm_name>-1`, `-2`, "
                                          "...; on the main disk's controller.")
    hard_drive_interface: str = opt("ide", choices=HARD_DRIVE_INTERFACES,
                                    help="Controller of the main disk: `ide` (PIIX4), `sata` (AHCI), `scsi` "
                                    "(LsiLogic), `pcie` (NVMe), `virtio` (virtio-scsi).")
    hard_drive_discard: bool = opt(False, help="Shrink the VDI on guest TRIM.")
    hard_drive_nonrotational: bool = opt(False, help="Report the disk as an SSD.")
    sata_port_count: int = opt(1, minimum=1, maximum=30, help="Ports of the SATA controller (up to 30).")
    nvme_port_count: int = opt(1, minimum=1, maximum=255, help="Ports of the NVMe controller (up to 255).")
    iso_interface: str = opt("ide", choices=ISO_INTERFACES, help="Controller of the installer ISO: `ide`, "
                             "`sata`, `virtio`.")
    bundle_iso: bool = opt(False, help="Keep the installer ISO attached in the exported machine.")

    EXCLUSIVE: ClassVar[tuple[tuple[str, ...], ...]] = (("iso_url", "iso_urls"),
                                                       *VirtualBoxCommon.SOURCE_EXCLUSIVE)
    REQUIRES: ClassVar[tuple[tuple[str, str, str], ...]] = (*IsoOptions.ISO_REQUIRES,
                                                          *VirtualBoxCommon.NAT_REQUIRES)


@dataclass(frozen=True)
class VirtualBoxOvfSource(VirtualBoxCommon, Checked, Component, kind=Kind.SOURCE, name="virtualbox-ovf"):
    """A VirtualBox machine imported from an OVF or OVA, provisioned and exported again."""

    summary: ClassVar[str] = ("Imports an OVF/OVA appliance into VirtualBox (`VBoxManage import`), boots it, "
                              "provisions it over SSH and exports it as OVF or OVA.")

    source_path: str = opt(required=True, help="Path or URL of the .ovf or .ova to import (fetched and verified "
                           "through factory's download cache).")
    checksum: str = opt(required=True, help="Checksum of `source_path` (`sha256:HEX`, `file:URL`, ... as "
                        "`iso_checksum`), or `none`.")
    target_path: str | None = opt(None, help="Where a downloaded `source_path` is stored (as `iso_target_path`).")
    import_flags: list[str] = opt([], help="Extra arguments to `VBoxManage import`, e.g. `--eula`, `accept`.")
    import_opts: str | None = opt(None, help="`--options` of `VBoxManage import`: `keepallmacs`, `keepnatmacs` "
                                  "or `importtovdi`.")

    EXCLUSIVE: ClassVar[tuple[tuple[str, ...], ...]] = VirtualBoxCommon.SOURCE_EXCLUSIVE
    REQUIRES: ClassVar[tuple[tuple[str, str, str], ...]] = VirtualBoxCommon.NAT_REQUIRES


@dataclass(frozen=True)
class VirtualBoxVmSource(VirtualBoxCommon, Checked, Component, kind=Kind.SOURCE, name="virtualbox-vm"):
    """An existing registered VirtualBox VM, provisioned in place (optionally from and into snapshots)."""

    summary: ClassVar[str] = ("Starts an existing, registered VirtualBox VM (optionally restored to a snapshot), "
                              "provisions it over SSH, snapshots it and optionally exports it. The only builder "
                              "whose VM factory did not create; factory never deletes it.")

    vm_name: str | None = opt(required=True, help="Name of the registered VM to build on (`VBoxManage list "
                              "vms`); it must be powered off.")
    attach_snapshot: str | None = opt(None, help="Snapshot the VM is restored to before it starts "
                                      "(`snapshot <vm> restore`).")
    target_snapshot: str | None = opt(None, help="Snapshot taken of the result after shutdown (`snapshot <vm> "
                                      "take`).")
    force_delete_snapshot: bool = opt(False, help="Delete an existing `target_snapshot` first instead of failing.")
    keep_registered: bool = opt(False, help="No effect here: the VM existed before the build, and factory "
                                "never unregisters or deletes a VM it did not create.", support=IGNORED)

    EXCLUSIVE: ClassVar[tuple[tuple[str, ...], ...]] = VirtualBoxCommon.SOURCE_EXCLUSIVE
    REQUIRES: ClassVar[tuple[tuple[str, str, str], ...]] = VirtualBoxCommon.NAT_REQUIRES


VirtualBoxSource = VirtualBoxIsoSource | VirtualBoxOvfSource | VirtualBoxVmSource
