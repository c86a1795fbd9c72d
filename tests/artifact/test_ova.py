"""OVA packages, checked by the DMTF schema, cot (the OVF tool we can run here), tar and qemu-img."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from lxml import etree

from factory.artifact import ExportOptions, Firmware, Hardware, export, ovf

HW = Hardware(cpus=2, memory_mb=2048, firmware=Firmware.EFI, disk_interface="sata", net_device="virtio-net")


def _schema(shared_schemas: Path) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(shared_schemas / "ovf" / "dsp8023_1.1.1.xsd")))


def _members(path: Path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        out = {}
        for m in tar.getmembers():
            fh = tar.extractfile(m)
            assert fh is not None
            out[m.name] = fh.read()
        return out


def test_descriptor_golden_and_schema_valid(golden, shared_schemas: Path) -> None:  # type: ignore[no-untyped-def]
    text = ovf.render("vm", HW, ovf.DiskRef("vm-disk1.vmdk", 123456, 64 << 20, 5 << 20),
                      hw_version=14, os_name="debian")
    golden("artifact/vm.ovf", text.decode())
    _schema(shared_schemas).assertValid(etree.fromstring(text))


@pytest.mark.parametrize("iface", ["ide", "sata", "scsi", "virtio"])
def test_every_controller_validates(iface: str, shared_schemas: Path) -> None:
    text = ovf.render("vm", Hardware(disk_interface=iface), ovf.DiskRef("d.vmdk", None, 1 << 30, 0))
    _schema(shared_schemas).assertValid(etree.fromstring(text))


def test_ova_layout_manifest_schema_and_disk(boot_qcow2: tuple[Path, str], tmp_path: Path,
                                             shared_schemas: Path) -> None:
    disk, _ = boot_qcow2
    out = tmp_path / "appliance.ova"
    assert export(disk, "ova", out, hardware=HW) == [out]
    with tarfile.open(out) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == ["appliance.ovf", "appliance.mf", "appliance-disk1.vmdk"]
    raw = out.read_bytes()
    assert raw[257:265] == b"ustar\x0000"                     # POSIX USTAR, not GNU or PAX
    assert all(m.mtime == 0 and m.uid == 0 and m.gid == 0 for m in members)
    files = _members(out)
    manifest = files["appliance.mf"].decode().splitlines()
    assert manifest == [f"SHA256({name})= {hashlib.sha256(files[name]).hexdigest()}"
                        for name in ("appliance.ovf", "appliance-disk1.vmdk")]
    tree = etree.fromstring(files["appliance.ovf"])
    _schema(shared_schemas).assertValid(tree)
    ns = {"ovf": ovf.OVF, "rasd": ovf.RASD, "vssd": ovf.VSSD, "vmw": ovf.VMW}
    size = tree.find("ovf:References/ovf:File", ns).get(f"{{{ovf.OVF}}}size")  # type: ignore[union-attr]
    assert int(size) == len(files["appliance-disk1.vmdk"])
    assert tree.findtext(".//vssd:VirtualSystemType", namespaces=ns) == "vmx-14 virtualbox-2.2"
    assert tree.find(".//vmw:Config", ns).get(f"{{{ovf.VMW}}}value") == "efi"  # type: ignore[union-attr]
    quantities = {i.findtext("rasd:ResourceType", namespaces=ns): i.findtext("rasd:VirtualQuantity", namespaces=ns)
                  for i in tree.iterfind(".//ovf:Item", ns)}
    assert quantities["3"] == "2" and quantities["4"] == "2048"
    vmdk = tmp_path / "x.vmdk"
    vmdk.write_bytes(files["appliance-disk1.vmdk"])
    subprocess.run(["qemu-img", "compare", str(disk), str(vmdk)], check=True, capture_output=True)


def test_cot_reads_the_ova_and_verifies_a_sha1_manifest(boot_disk: tuple[Path, str], tmp_path: Path) -> None:
    # cot verifies OVF 1.x manifests as SHA1 only, so the SHA1 variant is the one it can check end to end.
    disk, _ = boot_disk
    out = tmp_path / "vm.ova"
    export(disk, "ova", out, hardware=Hardware(cpus=3, memory_mb=1536),
           options=ExportOptions(manifest_hash="sha1"))
    cot = Path(sys.executable).parent / "cot"
    proc = subprocess.run([str(cot), "--verbose", "info", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "ERROR" not in proc.stderr and "tampered" not in proc.stderr
    assert "vmx-14 virtualbox-2.2" in proc.stdout
    assert "3" in proc.stdout and "1.5 GiB" in proc.stdout
    assert _members(out)["vm.mf"].startswith(b"SHA1(vm.ovf)= ")


def test_ova_is_bit_identical_across_exports(boot_disk: tuple[Path, str], tmp_path: Path) -> None:
    disk, _ = boot_disk
    a, b = tmp_path / "a" / "vm.ova", tmp_path / "b" / "vm.ova"
    export(disk, "ova", a, hardware=HW)
    export(disk, "ova", b, hardware=HW)
    assert a.read_bytes() == b.read_bytes()
