"""Vagrant boxes (https://developer.hashicorp.com/vagrant/docs/boxes/format): a tar.gz holding metadata.json,
a Vagrantfile with the box's defaults, and the provider's disk files.

- libvirt (vagrant-libvirt's box format): box.img (qcow2), metadata.json with format and virtual_size in GB.
- virtualbox: box.ovf + the VMDK it references, metadata.json {"provider": "virtualbox"}. From a disk, factory
  writes the OVF; from a VirtualBox build, VirtualBox's own export goes in as Packer's vagrant post-processor puts
  it (box_from_virtualbox_export).
"""

from __future__ import annotations

import re
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

from factory import events
from factory.artifact.compaction import compact
from factory.artifact.exporters import (
    GIB,
    Exporter,
    ExportOptions,
    OvaParts,
    metadata_json,
    write_box,
    write_ovf_files,
)
from factory.artifact.model import Firmware, Hardware
from factory.artifact.source import image_info, open_disk
from factory.errors import FactoryError

# The NAT adapter's MAC in the vbox:Machine section VirtualBox adds to its OVF (the pattern Packer reads).
_BASE_MAC = re.compile(rb'<Adapter slot="0"[^>]*?MACAddress="([0-9A-Fa-f]{12})"')


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


def _metadata(opts: ExportOptions, meta: dict[str, object]) -> bytes:
    """metadata.json, with the architecture Packer's vagrant post-processor records when one is given."""
    return metadata_json({**meta, "architecture": opts.architecture} if opts.architecture else meta)


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
                write_box(out, [("metadata.json", _metadata(self.opts, meta)),
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
            meta = _metadata(self.opts, {"provider": "virtualbox"})
            members: list[tuple[str, Path | bytes]] = [
                ("metadata.json", meta),
                ("Vagrantfile", vagrantfile("virtualbox", self.hw, self.opts.vagrantfile_template)),
                *((f.name, f) for f in files), *_included(self.opts)]
            write_box(out, members, self.opts.compression_level)
        return [out]


def box_from_virtualbox_export(files: Sequence[Path], out: Path, hw: Hardware, opts: ExportOptions) -> list[Path]:
    """A virtualbox box from what `VBoxManage export` wrote (an OVA, or an OVF with its VMDKs and manifest), the
    way Packer's vagrant post-processor makes it: the files go in unchanged (an OVA unpacked), the descriptor
    renamed box.ovf, and the Vagrantfile sets `config.vm.base_mac` to the first adapter's MAC when VirtualBox's
    OVF names one. Unlike Packer, the manifest is renamed box.mf with its descriptor line rewritten: VirtualBox
    looks for the manifest beside box.ovf under the same stem and checks it on import."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".factory-box-", dir=out.parent) as tmp:
        # Descriptor first, then the manifest, as in an OVA (an ovf artifact lists its files sorted by name).
        parts = sorted(_unpacked(files, Path(tmp)), key=lambda p: {".ovf": 0, ".mf": 1}.get(p.suffix.lower(), 2))
        ovfs = [p for p in parts if p.suffix.lower() == ".ovf"]
        if len(ovfs) != 1:
            raise FactoryError(f"vagrant: the VirtualBox artifact has {len(ovfs)} OVF descriptors "
                               f"({', '.join(p.name for p in files)})",
                               hint='export with format = "ovf" or "ova" (skip_export leaves nothing to box)')
        ovf = ovfs[0]
        descriptor = ovf.read_bytes()
        renamed: dict[str, Path | bytes] = {ovf.name: descriptor}
        for p in parts:
            if p.suffix.lower() == ".mf":
                text = p.read_text()
                renamed[p.name] = re.sub(rf"\({re.escape(ovf.name)}\)=", "(box.ovf)=", text).encode()
        mac = _BASE_MAC.search(descriptor)
        if opts.vagrantfile_template is not None:
            vagrant_file = opts.vagrantfile_template.read_bytes()
        elif mac:
            vagrant_file = (f'Vagrant.configure("2") do |config|\n  config.vm.base_mac = "{mac[1].decode()}"\n'
                            "end\n").encode()
        else:
            vagrant_file = vagrantfile("virtualbox", hw, None)
        members: list[tuple[str, Path | bytes]] = [("metadata.json", _metadata(opts, {"provider": "virtualbox"})),
                                                   ("Vagrantfile", vagrant_file)]
        for p in parts:
            name = {".ovf": "box.ovf", ".mf": "box.mf"}.get(p.suffix.lower(), p.name)
            members.append((name, renamed.get(p.name, p)))
        write_box(out, [*members, *_included(opts)], opts.compression_level)
    return [out]


def _unpacked(files: Sequence[Path], scratch: Path) -> list[Path]:
    """The artifact's files, an OVA's members in their place (regular files only, by base name: an OVA is a flat
    tar, and a member path must never reach outside the scratch folder)."""
    out: list[Path] = []
    for path in files:
        if path.suffix.lower() != ".ova":
            out.append(path)
            continue
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                if not member.isfile():
                    continue
                dest = scratch / Path(member.name).name
                src = tar.extractfile(member)
                assert src is not None
                with src, open(dest, "wb") as fh:
                    while chunk := src.read(1 << 20):
                        fh.write(chunk)
                out.append(dest)
    return out
