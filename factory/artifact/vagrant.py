"""Vagrant boxes (https://developer.hashicorp.com/vagrant/docs/boxes/format): a tar.gz holding metadata.json,
a Vagrantfile with the box's defaults, and the provider's disk files.

- libvirt (vagrant-libvirt's box format): box.img (qcow2), metadata.json with format and virtual_size in GB.
- virtualbox: box.ovf + the VMDK it references, metadata.json {"provider": "virtualbox"}.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from factory import events
from factory.artifact.exporters import (
    GIB,
    Exporter,
    ExportOptions,
    OvaParts,
    compact,
    metadata_json,
    write_box,
    write_ovf_files,
)
from factory.artifact.model import Firmware, Hardware
from factory.artifact.source import image_info, open_disk


def vagrantfile(provider: str, hw: Hardware, template: Path | None) -> bytes:
    """The box's embedded Vagrantfile: the user's template if given, else the VM's cpus, memory and firmware."""
    if template is not None:
        return template.read_bytes()
    lines = ['Vagrant.configure("2") do |config|']
    if provider == "libvirt":
        lines += ["  config.vm.provider :libvirt do |libvirt|", '    libvirt.driver = "kvm"',
                  f"    libvirt.cpus = {hw.cpus}", f"    libvirt.memory = {hw.memory_mb}"]
        if hw.firmware is Firmware.EFI:
            lines += ['    libvirt.machine_type = "q35"', '    libvirt.loader = "/usr/share/OVMF/OVMF_CODE.fd"']
    else:
        lines += ['  config.vm.provider :virtualbox do |vb|', f"    vb.cpus = {hw.cpus}",
                  f"    vb.memory = {hw.memory_mb}"]
        if hw.firmware is Firmware.EFI:
            lines.append('    vb.customize ["modifyvm", :id, "--firmware", "efi"]')
    lines += ["  end", "end"]
    return ("\n".join(lines) + "\n").encode()


def _included(opts: ExportOptions) -> list[tuple[str, Path | bytes]]:
    return [(p.name, p) for p in opts.include]


class VagrantLibvirtExporter(Exporter, format="vagrant-libvirt"):
    summary = "Vagrant box for vagrant-libvirt (box.img qcow2)"

    def run(self, disk: Path, out: Path) -> list[Path]:
        size = image_info(disk).virtual_size
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".factory-box-", dir=out.parent) as tmp:
            img = compact(disk, Path(tmp) / "box.img")
            meta = {"provider": "libvirt", "format": "qcow2", "virtual_size": -(-size // GIB)}
            with events.progress(f"packing {out.name}", None):
                write_box(out, [("metadata.json", metadata_json(meta)),
                                ("Vagrantfile", vagrantfile("libvirt", self.hw, self.opts.vagrantfile_template)),
                                ("box.img", img), *_included(self.opts)], self.opts.compression_level)
        return [out]


class VagrantVirtualBoxExporter(Exporter, format="vagrant-virtualbox"):
    summary = "Vagrant box for VirtualBox (box.ovf + streamOptimized VMDK)"

    def run(self, disk: Path, out: Path) -> list[Path]:
        out.parent.mkdir(parents=True, exist_ok=True)
        opts = ExportOptions(**{**self.opts.__dict__, "name": "box"})
        with tempfile.TemporaryDirectory(prefix=".factory-box-", dir=out.parent) as tmp:
            with open_disk(disk, scratch=Path(tmp)) as src, \
                    events.progress(f"writing {out.name}", src.virtual_size, activity="export") as bar:
                files = write_ovf_files(src, Path(tmp), OvaParts("box.ovf", "box.mf", "box-disk001.vmdk"),
                                        self.hw, opts, bar.advance)
            meta = metadata_json({"provider": "virtualbox"})
            members: list[tuple[str, Path | bytes]] = [
                ("metadata.json", meta),
                ("Vagrantfile", vagrantfile("virtualbox", self.hw, self.opts.vagrantfile_template)),
                *((f.name, f) for f in files), *_included(self.opts)]
            write_box(out, members, self.opts.compression_level)
        return [out]
