"""`export` / `ova` / `vmdk` / `vhd` / `vhdx` / `gce` and `vagrant`: the exporters as post-processors."""

from __future__ import annotations

import platform
from dataclasses import replace
from pathlib import Path
from typing import Any

from factory.artifact.exporters import ExportOptions, export
from factory.artifact.model import Artifact, Firmware, Hardware
from factory.artifact.vagrant import box_from_virtualbox_export
from factory.errors import FactoryError
from factory.placeholders import expand
from factory.post.base import PostContext, PostProcessor, Result, resolve

EXTENSIONS = {"gce": "tar.gz", "vagrant-libvirt": "box", "vagrant-virtualbox": "box"}
_DISK_FORMATS = ("qcow2", "raw", "vmdk", "vhd", "vhdx")
_DISK_SUFFIXES = (".qcow2", ".raw", ".img", ".vmdk", ".vhd", ".vhdx")


def input_disk(artifact: Artifact, who: str) -> Path:
    """The disk an artifact carries: its `disk`, else its only disk-like file."""
    if artifact.disk is not None:
        return artifact.disk
    disks = [f for f in artifact.files if f.suffix in _DISK_SUFFIXES or f.suffix == ""]
    disks = [f for f in disks if f.is_file()]
    if len(disks) != 1:
        raise FactoryError(f"{who}: the input artifact has {len(disks)} disk images ({artifact.describe()})",
                           hint="put it first in the chain, or use artifice to name a single disk")
    return disks[0]


def _hardware(config: Any, artifact: Artifact) -> Hardware:
    hw = artifact.hardware
    if config.cpus is not None:
        hw = replace(hw, cpus=config.cpus)
    if config.memory is not None:
        hw = replace(hw, memory_mb=config.memory)
    if config.firmware is not None:
        hw = replace(hw, firmware=Firmware(config.firmware))
    return hw


class Export(PostProcessor, type="export"):
    def process(self, config: Any, artifact: Artifact, ctx: PostContext) -> Result:
        fmt = config.format or (type(config).type_name if type(config).type_name != "export" else None)
        if fmt is None:
            raise FactoryError("export: `format` is required", hint='e.g. format = "ova"')
        if config.format and type(config).type_name not in ("export", config.format):
            raise FactoryError(f"format = {config.format!r} contradicts post-processor {type(config).type_name!r}",
                               hint='drop `format`, or use post-processor "export"')
        disk = input_disk(artifact, fmt)
        values = {"BuildName": ctx.source_name, "BuilderType": ctx.source_type, "Format": fmt,
                  "Extension": EXTENSIONS.get(fmt, fmt)}
        out = resolve(expand(config.output, values, "output"), ctx)
        opts = ExportOptions(name=config.vm_name or ctx.source_name, compress=config.disk_compression,
                             adapter=config.adapter_type, hw_version=config.hardware_version,
                             manifest_hash=config.manifest_hash, guest_os=config.guest_os,
                             compression_level=config.compression_level)
        files = export(disk, fmt, out, hardware=_hardware(config, artifact), options=opts, option="output")
        ctx.emit(f"Exported {disk.name} as {fmt}: " + ", ".join(str(f) for f in files))
        return Result(Artifact(f"factory.post-processor.{fmt}", artifact.build_name, artifact.builder_type,
                               tuple(files), disk=files[0] if fmt in _DISK_FORMATS else None,
                               hardware=artifact.hardware, artifact_id=str(files[0]), vm_name=artifact.vm_name),
                      keep_input=False)


# The per-format aliases declared in factory/schema/exports.py run the same implementation.
for _alias in ("ova", "vmdk", "vhd", "vhdx", "gce"):
    PostProcessor.registry[_alias] = Export


PROVIDERS = {"qemu": "libvirt", "libvirt": "libvirt", "virtualbox-iso": "virtualbox", "virtualbox-ovf": "virtualbox",
             "virtualbox-vm": "virtualbox"}


class Vagrant(PostProcessor, type="vagrant"):
    def process(self, config: Any, artifact: Artifact, ctx: PostContext) -> Result:
        provider = config.provider_override or PROVIDERS.get(artifact.builder_type)
        if provider is None:
            raise FactoryError(f"vagrant: no box provider for builder type {artifact.builder_type!r}",
                               hint='set provider_override = "libvirt" or "virtualbox"')
        arch = config.architecture or host_architecture()
        values = {"BuildName": ctx.source_name, "BuilderType": ctx.source_type, "Provider": provider,
                  "ArtifactId": artifact.artifact_id, "Architecture": arch}
        out = resolve(expand(config.output, values, "output"), ctx)
        template = resolve(config.vagrantfile_template, ctx) if config.vagrantfile_template else None
        if template is not None and not template.is_file():
            raise FactoryError(f"vagrant: vagrantfile_template {template} does not exist")
        opts = ExportOptions(name="box", compression_level=config.compression_level, vagrantfile_template=template,
                             include=tuple(resolve(i, ctx) for i in config.include), architecture=arch)
        if provider == "virtualbox" and _virtualbox_export(artifact):
            files = box_from_virtualbox_export(artifact.files, out, artifact.hardware, opts)
        else:
            files = export(input_disk(artifact, "vagrant"), f"vagrant-{provider}", out, hardware=artifact.hardware,
                           options=opts, option="output")
        ctx.emit(f"Created Vagrant box for {provider}: {files[0]}")
        return Result(Artifact("mitchellh.post-processor.vagrant", artifact.build_name, artifact.builder_type,
                               tuple(files), artifact_id=provider), keep_input=False)


# Python's platform.machine() → Go's GOARCH, which Packer's vagrant post-processor records (386 as Vagrant's i386).
_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "i386": "i386",
           "i686": "i386", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}


def host_architecture() -> str:
    """The build host's architecture in Go's names (Packer's default for the vagrant post-processor)."""
    machine = platform.machine().lower()
    return _GOARCH.get(machine, machine)


def _virtualbox_export(artifact: Artifact) -> bool:
    """The artifact is what VirtualBox exported (its OVF or OVA): boxed as it is, as Packer does."""
    return artifact.builder_type.startswith("virtualbox-") and \
        any(f.suffix.lower() in (".ovf", ".ova") for f in artifact.files)
