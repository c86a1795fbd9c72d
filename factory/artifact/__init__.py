"""Artifacts: what a build produces (a typed object post-processors consume) and the disk exporters.

    from factory.artifact import export, compact, formats
    export(Path("disk.qcow2"), "ova", Path("out/vm.ova"), hardware=Hardware(cpus=2, memory_mb=2048))
"""

from factory.artifact import vagrant as _vagrant  # noqa: F401  (registers the vagrant-* formats)
from factory.artifact.exporters import Exporter, ExportOptions, compact, export, exporter_for, formats
from factory.artifact.model import Artifact, DiskFormat, Firmware, Hardware

__all__ = ["Artifact", "DiskFormat", "ExportOptions", "Exporter", "Firmware", "Hardware", "compact", "export",
           "exporter_for", "formats"]
