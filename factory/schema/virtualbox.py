"""`source "virtualbox-iso"`: Packer's virtualbox-iso builder options (packer-plugin-virtualbox 1.1.x).

Declared so multi-hypervisor templates validate and `inspect` shows them; factory has no VirtualBox driver
yet (`PLANNED`), so `factory build` refuses this source with a clear message.
"""

# opt() returns a dataclasses.field (factory.options); ruff cannot see that, so RUF009 misfires here.
# ruff: noqa: RUF009

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from factory.options import Component, Kind, Support, opt
from factory.schema.common import SourceOptions
from factory.schema.types import Checked, Duration

IGNORED = Support.IGNORED


@dataclass(frozen=True)
class VirtualBoxIsoSource(SourceOptions, Checked, Component, kind=Kind.SOURCE,
                          name="virtualbox-iso"):
    """A VirtualBox machine installed from an ISO and exported as OVF/OVA."""

    summary: ClassVar[str] = ("Builds a VirtualBox machine from an installer ISO and exports it as OVF or OVA. "
                              "Declared for validation and inspect; factory's VirtualBox driver is not "
                              "implemented yet.")
    PLANNED: ClassVar[bool] = True

    # hardware -------------------------------------------------------------------------------------------------
    guest_os_type: str = opt("Other", help="VirtualBox OS type id (`VBoxManage list ostypes`), e.g. "
                             "`Ubuntu_64`; a wrong value costs performance.")
    cpus: int = opt(1, help="Number of virtual CPUs.")
    memory: int = opt(512, help="Memory of the VM in MiB.")
    chipset: str = opt("piix3", help="Chipset: `piix3` or `ich9`.")
    firmware: str = opt("bios", help="Firmware: `bios` or `efi`.")
    nested_virt: bool = opt(False, help="Expose VT-x/AMD-V to the guest.")
    rtc_time_base: str = opt("local", help="RTC time base: `UTC` or `local`.")
    nic_type: str = opt("82540EM", help="NIC model: `82540EM`, `82543GC`, `82545EM`, `Am79C970A`, `Am79C973`, "
                        "`Am79C960`, `virtio`.")
    audio_controller: str = opt("ac97", help="Audio controller: `ac97`, `hda`, `sb16`.")
    gfx_controller: str | None = opt(None, help="Graphics controller: `vboxvga`, `vboxsvga`, `vmsvga`, `none`.")
    gfx_vram_size: int = opt(4, help="Video memory in MiB.")
    gfx_accelerate_3d: bool = opt(False, help="Enable 3D acceleration.")
    gfx_efi_resolution: str | None = opt(None, help="EFI screen resolution `WIDTHxHEIGHT`.")
    sound: str = opt("none", help="Host audio driver (`none`, `pulse`, `alsa`, `null`, ...).")
    usb: bool = opt(False, help="Enable the USB bus.")

    # disks ----------------------------------------------------------------------------------------------------
    disk_size: int = opt(40000, help="Size of the main disk in MiB.")
    disk_additional_size: list[int] = opt([], help="Sizes in MiB of extra disks.")
    hard_drive_interface: str = opt("ide", help="Controller of the main disk: `ide`, `sata`, `scsi`, `pcie` "
                                    "(NVMe), `virtio`.")
    hard_drive_discard: bool = opt(False, help="Shrink the VDI on guest TRIM.")
    hard_drive_nonrotational: bool = opt(False, help="Report the disk as an SSD.")
    sata_port_count: int = opt(1, help="Ports of the SATA controller (up to 30).")
    nvme_port_count: int = opt(1, help="Ports of the NVMe controller (up to 255).")
    iso_interface: str = opt("ide", help="Controller of the installer ISO: `ide`, `sata`, `virtio`.")

    # guest additions and VBoxManage ---------------------------------------------------------------------------
    guest_additions_mode: str = opt("upload", help="Guest additions: `upload`, `attach` or `disable`.")
    guest_additions_interface: str | None = opt(None, help="Controller used with `guest_additions_mode = "
                                                "\"attach\"` (`ide`, `sata`).")
    guest_additions_path: str = opt("VBoxGuestAdditions.iso", help="Upload path of the guest additions ISO in "
                                    "the guest.")
    guest_additions_sha256: str | None = opt(None, help="SHA-256 of the guest additions ISO.")
    guest_additions_url: str | None = opt(None, help="URL of the guest additions ISO.")
    virtualbox_version_file: str = opt(".vbox_version", help="Guest path that receives the VirtualBox version; "
                                       "empty to skip.")
    vboxmanage: list[list[str]] = opt([], help="Extra `VBoxManage` commands run before boot; `{{.Name}}` is the "
                                      "VM name.")
    vboxmanage_post: list[list[str]] = opt([], help="Extra `VBoxManage` commands run after shutdown, before "
                                           "export.")
    bundle_iso: bool = opt(False, help="Keep attached ISOs in the exported machine.")
    keep_registered: bool = opt(False, help="Leave the VM registered in VirtualBox after the build.")

    # run, shutdown and export ---------------------------------------------------------------------------------
    headless: bool = opt(False, help="Start the VM without a console window.")
    vrdp_bind_address: str = opt("127.0.0.1", help="Address the VRDP server binds to.")
    vrdp_port_min: int = opt(5900, help="Lowest VRDP port.")
    vrdp_port_max: int = opt(6000, help="Highest VRDP port.")
    post_shutdown_delay: str = opt("0s", help="Duration to wait after the VM stopped.")
    # Packer's VirtualBox builders pause 100ms between key groups (its docs), where its QEMU builder does not.
    boot_keygroup_interval: Duration = opt("100ms", help="Duration to wait between two key groups: the "
                                           "elements of `boot_command`, or the steps of `boot_steps`.")
    disable_shutdown: bool = opt(False, help="Do not halt the VM; wait for it to stop by itself.")
    acpi_shutdown: bool = opt(False, help="Shut down through the ACPI power button.")
    skip_export: bool = opt(False, help="Do not export the VM.")
    format: str = opt("ovf", help="Export format: `ovf` or `ova`.")
    export_opts: list[str] = opt([], help="Extra arguments to `VBoxManage export`.")
    output_directory: str | None = opt(None, help="Output directory (default `output-<source name>`).")
    output_filename: str | None = opt(None, help="Base name of the exported files (default `vm_name`).")
    vm_name: str | None = opt(None, help="Name of the VM and of its OVF (default `packer-<source name>`).")

    DURATIONS: ClassVar[frozenset[str]] = frozenset({"post_shutdown_delay"})
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        "format": ("ovf", "ova"),
        "firmware": ("bios", "efi"),
        "chipset": ("piix3", "ich9"),
        "guest_additions_mode": ("upload", "attach", "disable"),
        "hard_drive_interface": ("ide", "sata", "scsi", "pcie", "virtio"),
        "iso_interface": ("ide", "sata", "virtio"),
    }
    EXCLUSIVE: ClassVar[tuple[tuple[str, ...], ...]] = SourceOptions.SOURCE_EXCLUSIVE
