"""The vagrant post-processor on a VirtualBox build's artifact: VirtualBox's own export boxed as Packer's vagrant
post-processor does (OVA unpacked, descriptor renamed box.ovf, metadata.json with the provider and architecture). The
export comes from the VBoxManage stand-in (tests/fixtures/vboxmanage_standin.py; VirtualBox cannot be installed
here), without booting anything."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from fixtures.vbox import StandIn
from lxml import etree

from factory.artifact.exporters import ExportOptions
from factory.artifact.model import Artifact, Hardware
from factory.artifact.vagrant import box_from_virtualbox_export
from factory.errors import FactoryError
from factory.post import PostContext, run_chains
from factory.post.export import host_architecture
from factory.template import load

TEMPLATE = '''
source "virtualbox-ovf" "v" {
  source_path  = "x.ova"
  checksum     = "none"
  ssh_username = "u"
}
build {
  sources = ["source.virtualbox-ovf.v"]
  post-processor "vagrant" {}
}
'''


def _standin_export(vboxmanage: StandIn, tmp: Path, output: str, *extra: str) -> list[Path]:
    """A VM with one 32 MiB disk, exported by the stand-in's `VBoxManage export` (what a build's Export step
    runs); the files it wrote."""
    disk = tmp / "v.vdi"
    base = str(tmp / "vms")
    for args in (["createvm", "--name", "v", "--ostype", "Debian_64", "--basefolder", base, "--register"],
                 ["storagectl", "v", "--name", "IDE Controller", "--add", "ide", "--controller", "PIIX4"],
                 ["createmedium", "disk", "--filename", str(disk), "--size", "32", "--format", "VDI"],
                 ["storageattach", "v", "--storagectl", "IDE Controller", "--port", "0", "--device", "0",
                  "--type", "hdd", "--medium", str(disk)]):
        vboxmanage(*args)
    out = tmp / "output-v"
    out.mkdir()
    vboxmanage("export", "v", "--output", str(out / output), *extra)
    return sorted(out.iterdir())


def _unpack(box: Path, dest: Path) -> list[str]:
    listing = subprocess.run(["tar", "-tzf", str(box)], check=True, capture_output=True, text=True).stdout.split()
    dest.mkdir()
    subprocess.run(["tar", "-xzf", str(box), "-C", str(dest)], check=True)
    return listing


@pytest.mark.parametrize("output", ["v.ova", "v.ovf"])
def test_a_virtualbox_export_becomes_a_virtualbox_box(vboxmanage: StandIn, tmp_path: Path, shared_schemas: Path,
                                                      output: str) -> None:
    files = _standin_export(vboxmanage, tmp_path, output, "--manifest")
    artifact = Artifact("factory.virtualbox", "b.virtualbox-ovf.v", "virtualbox-ovf", tuple(files),
                        hardware=Hardware(cpus=1, memory_mb=512), vm_name="v")
    ctx = PostContext("b", "virtualbox-ovf", "v", "run-1", emit=lambda _: None, root=tmp_path)
    (tmp_path / "t.pkr.hcl").write_text(TEMPLATE)
    out = run_chains(load(tmp_path / "t.pkr.hcl").builds[0].post_processors, artifact, ctx)
    box = tmp_path / f"packer_v_virtualbox_{host_architecture()}.box"
    assert out[0].files == (box,) and out[0].artifact_id == "virtualbox"
    assert not any(f.exists() for f in files)          # Packer's virtualbox provider does not keep its input

    listing = _unpack(box, tmp_path / "box")
    assert listing == ["metadata.json", "Vagrantfile", "box.ovf", "box.mf", "v-disk001.vmdk"]
    x = tmp_path / "box"
    assert json.loads((x / "metadata.json").read_text()) == {"provider": "virtualbox",
                                                              "architecture": host_architecture()}
    schema = etree.XMLSchema(etree.parse(str(shared_schemas / "ovf" / "dsp8023_1.1.1.xsd")))
    assert schema.validate(etree.parse(str(x / "box.ovf"))), schema.error_log
    subprocess.run(["qemu-img", "check", str(x / "v-disk001.vmdk")], check=True, capture_output=True)
    # The manifest names box.ovf now and still holds every file's digest (VirtualBox checks it on import).
    for line in (x / "box.mf").read_text().splitlines():
        name = line[line.index("(") + 1:line.index(")")]
        assert line.endswith(hashlib.sha1((x / name).read_bytes()).hexdigest()), line
    # The box imports back into VirtualBox (here: the stand-in), as `vagrant up` does with box.ovf.
    vboxmanage("import", str(x / "box.ovf"), "--vsys", "0", "--vmname", "from-box",
               "--basefolder", str(tmp_path / "vms2"))
    assert "from-box" in vboxmanage.registered()


def test_base_mac_comes_from_virtualboxs_own_ovf_section(tmp_path: Path) -> None:
    """Real VirtualBox adds a vbox:Machine section (the stand-in does not): its first adapter's MAC becomes the
    Vagrantfile's base_mac, as in Packer."""
    ovf = tmp_path / "m.ovf"
    ovf.write_text('<?xml version="1.0"?><Envelope><vbox:Machine><Hardware><Network>'
                   '<Adapter slot="0" enabled="true" MACAddress="080027A1B2C3" type="virtio"/>'
                   '</Network></Hardware></vbox:Machine></Envelope>')
    (box,) = box_from_virtualbox_export([ovf], tmp_path / "m.box", Hardware(), ExportOptions())
    _unpack(box, tmp_path / "x")
    assert (tmp_path / "x" / "Vagrantfile").read_text() == (
        'Vagrant.configure("2") do |config|\n  config.vm.base_mac = "080027A1B2C3"\nend\n')


def test_an_artifact_without_an_ovf_cannot_be_boxed(tmp_path: Path) -> None:
    disk = tmp_path / "v.vmdk"
    disk.write_bytes(b"")
    with pytest.raises(FactoryError, match="has 0 OVF descriptors"):
        box_from_virtualbox_export([disk], tmp_path / "v.box", Hardware(), ExportOptions())
