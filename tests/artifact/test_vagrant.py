"""Vagrant boxes: the documented layout (metadata.json, Vagrantfile, provider files), checked member by member."""

from __future__ import annotations

import gzip
import json
import subprocess
import tarfile
from pathlib import Path

from lxml import etree

from factory.artifact import ExportOptions, Firmware, Hardware, export

HW = Hardware(cpus=2, memory_mb=1024, firmware=Firmware.EFI)


def _read(box: Path) -> dict[str, bytes]:
    with tarfile.open(box, "r:gz") as tar:
        out = {}
        for m in tar.getmembers():
            assert m.mtime == 0 and m.uid == 0 and m.gid == 0 and not m.name.startswith(("/", "./"))
            fh = tar.extractfile(m)
            assert fh is not None
            out[m.name] = fh.read()
        return out


def test_libvirt_box(boot_qcow2: tuple[Path, str], tmp_path: Path) -> None:
    disk, _ = boot_qcow2
    box = tmp_path / "vm.box"
    export(disk, "vagrant-libvirt", box, hardware=HW)
    files = _read(box)
    assert list(files) == ["metadata.json", "Vagrantfile", "box.img"]
    assert json.loads(files["metadata.json"]) == {"format": "qcow2", "provider": "libvirt", "virtual_size": 1}
    vagrantfile = files["Vagrantfile"].decode()
    assert "libvirt.cpus = 2" in vagrantfile and "libvirt.memory = 1024" in vagrantfile
    img = tmp_path / "box.img"
    img.write_bytes(files["box.img"])
    subprocess.run(["qemu-img", "compare", "-F", "qcow2", str(disk), str(img)], check=True, capture_output=True)


def test_virtualbox_box(boot_disk: tuple[Path, str], tmp_path: Path, shared_schemas: Path) -> None:
    disk, _ = boot_disk
    box = tmp_path / "vm.box"
    template = tmp_path / "Vagrantfile.tpl"
    template.write_text('Vagrant.configure("2") do |config|\n  config.ssh.username = "factory"\nend\n')
    export(disk, "vagrant-virtualbox", box, hardware=HW, options=ExportOptions(vagrantfile_template=template))
    files = _read(box)
    assert list(files) == ["metadata.json", "Vagrantfile", "box.ovf", "box.mf", "box-disk001.vmdk"]
    assert json.loads(files["metadata.json"]) == {"provider": "virtualbox"}
    assert files["Vagrantfile"] == template.read_bytes()
    schema = etree.XMLSchema(etree.parse(str(shared_schemas / "ovf" / "dsp8023_1.1.1.xsd")))
    schema.assertValid(etree.fromstring(files["box.ovf"]))
    assert b'ovf:href="box-disk001.vmdk"' in files["box.ovf"]
    vmdk = tmp_path / "d.vmdk"
    vmdk.write_bytes(files["box-disk001.vmdk"])
    subprocess.run(["qemu-img", "compare", str(disk), str(vmdk)], check=True, capture_output=True)


def test_boxes_are_bit_identical(boot_disk: tuple[Path, str], tmp_path: Path) -> None:
    disk, _ = boot_disk
    for fmt in ("vagrant-libvirt", "vagrant-virtualbox"):
        a, b = tmp_path / "a" / f"{fmt}.box", tmp_path / "b" / f"{fmt}.box"
        export(disk, fmt, a, hardware=HW)
        export(disk, fmt, b, hardware=HW)
        assert a.read_bytes() == b.read_bytes(), fmt
        assert gzip.decompress(a.read_bytes())[:100].rstrip(b"\0") == b"metadata.json"
