"""The artifact a builder hands to post-processors: files, the primary disk and the virtual hardware it ran on.

Exporters (OVA, Vagrant ...) read `hardware` to write descriptors; post-processors return new Artifacts, so
chains compose (Packer's semantics: each post-processor's output is the next one's input).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from factory.schema.values import DiskFormat as DiskFormat  # declared with the options that name it


class Firmware(StrEnum):
    BIOS = "bios"
    EFI = "efi"


@dataclass(frozen=True)
class Hardware:
    """The virtual machine the disk was built in, as exporters need to describe it."""

    cpus: int = 1
    memory_mb: int = 1024
    firmware: Firmware = Firmware.BIOS
    disk_interface: str = "virtio"      # virtio | ide | sata | scsi | virtio-scsi
    net_device: str = "virtio-net"      # virtio-net | e1000 | ...
    machine_type: str = "pc"


@dataclass(frozen=True)
class Artifact:
    """One output of a build or post-processor (Packer's Artifact: builder id, files, id, state)."""

    builder_id: str                      # e.g. "factory.qemu", "packer.post-processor.manifest"
    build_name: str                      # e.g. "debian.qemu.cloud" (build.source-type.source-name)
    builder_type: str                    # source type, e.g. "qemu"
    files: tuple[Path, ...]
    disk: Path | None = None             # the primary disk image, when there is one
    disk_format: DiskFormat | None = None
    hardware: Hardware = field(default_factory=Hardware)
    artifact_id: str = "VM"
    vm_name: str = ""
    state: dict[str, str] = field(default_factory=dict)

    def summary(self) -> str:
        """Packer's Artifact.String(): what it is, without the build's name."""
        if not self.files:  # Packer's null builder says so rather than print an empty list
            return "did not export anything"
        return ", ".join(str(f) for f in self.files)

    def describe(self) -> str:
        return f"{self.build_name}: {self.summary()}"

    def event_data(self) -> dict[str, object]:
        """What an ARTIFACT event carries, so monitors (Packer's machine-readable lines, the report) and a
        parallel build's parent know the artifact without the object."""
        return {"builder_id": self.builder_id, "id": self.artifact_id, "string": self.summary(),
                "files": [str(f) for f in self.files]}
