"""Artifacts: what a build produces (a typed object post-processors consume) and the disk exporters.

    from factory.artifact import export, compact, formats
    export(Path("disk.qcow2"), "ova", Path("out/vm.ova"), hardware=Hardware(cpus=2, memory_mb=2048))
"""

from typing import TYPE_CHECKING

from factory.artifact.model import Artifact, DiskFormat, Firmware, Hardware

if TYPE_CHECKING:
    from factory.artifact.compaction import compact
    from factory.artifact.exporters import Exporter, ExportOptions, export, exporter_for, formats

_EXPORTERS = frozenset({"Exporter", "ExportOptions", "export", "exporter_for", "formats"})


def __getattr__(name: str) -> object:
    """The exporters load on first use: every build and every command imports the artifact model (through the
    drivers and the steps), but the exporters' OVF, VMDK and tar writers (and lxml) cost ~70 ms to import and
    only an export uses them."""
    if name == "compact":
        from factory.artifact.compaction import compact

        return compact
    if name in _EXPORTERS:
        from factory.artifact import exporters, vagrant  # noqa: F401  (vagrant's exporters register as it loads)

        return getattr(exporters, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["Artifact", "DiskFormat", "ExportOptions", "Exporter", "Firmware", "Hardware", "compact", "export",
           "exporter_for", "formats"]
