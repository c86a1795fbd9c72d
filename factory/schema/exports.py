"""The exports as post-processors: `post-processor "export" { format = "ova" }` and one alias per format.

Packer has no built-in OVA/VHD/GCE converter post-processor (users chain shell-local with qemu-img or
ovftool), so factory names them after the format: `post-processor "ova" {}` is `export` with format = "ova".
The options are declared once, on ExportPostProcessor; the aliases inherit them unchanged.
"""

# opt() returns a dataclasses.field (factory.options); ruff cannot see that, so RUF009 misfires here.

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from factory.options import Component, Kind, opt
from factory.schema.types import Checked
from factory.schema.values import MAX_CPUS, MAX_MEMORY_MIB, check_file_name

EXPORT_FORMATS = ("qcow2", "raw", "vmdk", "vhdx", "ova", "vhd", "gce", "vagrant-libvirt", "vagrant-virtualbox")


@dataclass(frozen=True)
class ExportPostProcessor(Checked, Component, kind=Kind.POST_PROCESSOR, name="export"):
    """Convert the build's disk into another format or package (OVA, VMDK, VHD, GCE, Vagrant ...)."""

    summary: ClassVar[str] = ("Exports the artifact's disk: qcow2, raw, vmdk, vhdx, ova, vhd (Azure), gce, "
                              "vagrant-libvirt, vagrant-virtualbox.")

    format: str | None = opt(None, help="Export format; required for `export`, implied by the alias "
                             "(`ova`, `vmdk`, `vhd`, `vhdx`, `gce`).", factory_only=True)
    output: str = opt("packer_{{.BuildName}}_{{.BuilderType}}.{{.Extension}}", help="Output path. "
                      "`{{.BuildName}}`, `{{.BuilderType}}`, `{{.Format}}` and `{{.Extension}}` are expanded.",
                      factory_only=True)
    vm_name: str | None = opt(None, check=check_file_name,
                              help="VM name inside OVF descriptors and file names of packages "
                              "(default: the build's source name).", factory_only=True)
    # The limits `factory export` applies to --cpus, --memory and --hw-version: what a VM can have.
    cpus: int | None = opt(None, minimum=1, maximum=MAX_CPUS,
                           help="CPUs written into descriptors (default: the build's).", factory_only=True)
    memory: int | None = opt(None, minimum=1, maximum=MAX_MEMORY_MIB,
                             help="Memory in MiB written into descriptors (default: the build's).", factory_only=True)
    firmware: str | None = opt(None, help="`bios` or `efi` in descriptors (default: the build's).",
                               factory_only=True)
    disk_compression: bool = opt(False, help="qcow2: compress clusters.", factory_only=True)
    adapter_type: str | None = opt(None, help="VMDK adapter: `ide`, `lsilogic`, `buslogic`, `legacyESX` "
                                   "(default: from the disk interface).", factory_only=True)
    hardware_version: int = opt(14, minimum=1, help="VMware virtual hardware version in OVF (`vmx-NN`).",
                                factory_only=True)
    manifest_hash: str = opt("sha256", help="OVA manifest digest: `sha256`, or `sha1` for old tools.",
                             factory_only=True)
    guest_os: str = opt("linux", help="Guest OS in OVF: `debian`, `ubuntu`, `rhel`, `linux`.", factory_only=True)
    # 1-9 as `factory export --level`: a 0 would not mean "stored" for VMDK grains (deflate() maps it to ISA-L's 1).
    compression_level: int = opt(6, minimum=1, maximum=9,
                                 help="Deflate level for VMDK grains and gzip'd packages (1-9).", factory_only=True)

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        "format": EXPORT_FORMATS, "firmware": ("bios", "efi"), "manifest_hash": ("sha256", "sha1"),
        "adapter_type": ("ide", "lsilogic", "buslogic", "legacyESX"),
        "guest_os": ("debian", "ubuntu", "rhel", "linux")}


@dataclass(frozen=True)
class OvaPostProcessor(ExportPostProcessor, kind=Kind.POST_PROCESSOR, name="ova"):
    """Package the disk as an OVA (OVF 1.0 + streamOptimized VMDK + manifest) for VirtualBox and VMware."""


@dataclass(frozen=True)
class VmdkPostProcessor(ExportPostProcessor, kind=Kind.POST_PROCESSOR, name="vmdk"):
    """Convert the disk to a streamOptimized VMDK."""


@dataclass(frozen=True)
class VhdPostProcessor(ExportPostProcessor, kind=Kind.POST_PROCESSOR, name="vhd"):
    """Convert the disk to a fixed, MiB-aligned VHD for Azure."""


@dataclass(frozen=True)
class VhdxPostProcessor(ExportPostProcessor, kind=Kind.POST_PROCESSOR, name="vhdx"):
    """Convert the disk to VHDX for Hyper-V."""


@dataclass(frozen=True)
class GcePostProcessor(ExportPostProcessor, kind=Kind.POST_PROCESSOR, name="gce"):
    """Package the disk as a GCE image tarball (disk.raw in a sparse GNU tar.gz)."""
