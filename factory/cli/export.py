"""`factory export DISK --format FORMAT -o OUT`: convert or package an existing qcow2/raw disk."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from factory import ui
from factory.cli import app
from factory.errors import die


@app.command("export")
def export_cmd(
    disk: Annotated[Path, typer.Argument(help="qcow2 or raw disk image to export.")],
    format: Annotated[str, typer.Option("--format", "-f", help="qcow2, raw, vmdk, vhdx, ova, vhd, gce, "
                                        "vagrant-libvirt, vagrant-virtualbox.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write.")],
    cpus: Annotated[int, typer.Option("--cpus", help="CPUs in descriptors (OVA, Vagrant).")] = 1,
    memory: Annotated[int, typer.Option("--memory", help="Memory in MiB in descriptors.")] = 1024,
    firmware: Annotated[str, typer.Option("--firmware", help="bios or efi.")] = "bios",
    disk_interface: Annotated[str, typer.Option("--disk-interface", help="virtio, ide, sata, scsi.")] = "virtio",
    nic: Annotated[str, typer.Option("--nic", help="NIC model (virtio-net, e1000, vmxnet3).")] = "virtio-net",
    name: Annotated[str, typer.Option("--name", help="VM name in packages (default: OUT's stem).")] = "",
    guest_os: Annotated[str, typer.Option("--guest-os", help="debian, ubuntu, rhel, linux (OVF).")] = "linux",
    compress: Annotated[bool, typer.Option("--compress", help="qcow2: compressed clusters.")] = False,
    adapter: Annotated[str | None, typer.Option("--adapter", help="VMDK adapter: ide, lsilogic, buslogic, "
                                                "legacyESX.")] = None,
    hw_version: Annotated[int, typer.Option("--hw-version", help="VMware hardware version (vmx-NN).")] = 14,
    manifest_hash: Annotated[str, typer.Option("--manifest-hash", help="OVA manifest: sha256 or sha1.")] = "sha256",
    level: Annotated[int, typer.Option("--level", help="Deflate/gzip level 1-9.")] = 6,
) -> None:
    """Export an existing disk image to another format or package (OVA, VHD for Azure, GCE, Vagrant ...)."""
    from factory.artifact import ExportOptions, Firmware, Hardware, export
    from factory.options import options_of
    from factory.schema.exports import ExportPostProcessor
    from factory.schema.values import MAX_CPUS, MAX_MEMORY_MIB, check_file_name

    # The export post-processor declares these options' ranges once; the command applies the same.
    declared = {o.name: o for o in options_of(ExportPostProcessor)}
    hw_min = declared["hardware_version"].minimum or 1
    level_min, level_max = declared["compression_level"].minimum, declared["compression_level"].maximum

    if firmware not in ("bios", "efi"):
        die(f"--firmware {firmware!r} is not bios or efi", hint="use --firmware bios or --firmware efi")
    if cpus < 1 or memory < 1:
        die("--cpus and --memory must be positive", hint="e.g. --cpus 2 --memory 2048")
    if cpus > MAX_CPUS:
        die(f"--cpus {cpus} is more than a VM can have (at most {MAX_CPUS})", hint="e.g. --cpus 2")
    if memory > MAX_MEMORY_MIB:
        die(f"--memory {memory} MiB is more than a VM can have (at most {MAX_MEMORY_MIB} MiB, 16 TiB)",
            hint="--memory is in MiB: e.g. --memory 2048")
    if hw_version < hw_min:
        die(f"--hw-version {hw_version} is not a VMware hardware version", hint="e.g. --hw-version 14 (vmx-14)")
    if name:
        check_file_name(name, "--name")  # it names files inside the package: '../x' would climb out on unpacking
    if not (level_min or 0) <= level <= (level_max or 9):
        die(f"--level {level} is out of range", hint=f"use {level_min:g} (fast) to {level_max:g} (small)")
    hw = Hardware(cpus=cpus, memory_mb=memory, firmware=Firmware(firmware), disk_interface=disk_interface,
                  net_device=nic)
    opts = ExportOptions(name=name, compress=compress, adapter=adapter, hw_version=hw_version,
                         manifest_hash=manifest_hash, guest_os=guest_os, compression_level=level)
    for path in export(disk, format, output, hardware=hw, options=opts):
        ui.success(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")
