"""What factory checks in an OVF/OVA before `VBoxManage import`: that it is an OVF envelope and that it names a
disk whose file it carries. VirtualBox would import a disk-less appliance as a VM without a disk, and the build
would then fail much later, at boot, with a message that does not name the cause."""

from __future__ import annotations

import tarfile
from pathlib import Path

from lxml import etree

from factory.errors import FactoryError

OVF_NS = ("http://schemas.dmtf.org/ovf/envelope/1", "http://schemas.dmtf.org/ovf/envelope/2")


def check_appliance(path: Path) -> list[str]:
    """The disk files the appliance at path (.ova or .ovf) names; a FactoryError when it has none or lacks one."""
    descriptor, members = _descriptor(path)
    try:
        root = etree.fromstring(descriptor)
    except etree.XMLSyntaxError as exc:
        raise FactoryError(f"{path.name}: the OVF descriptor is not XML: {exc}") from None
    ns = etree.QName(root).namespace
    if ns not in OVF_NS or etree.QName(root).localname != "Envelope":
        raise FactoryError(f"{path.name}: not an OVF envelope (root element {root.tag})")
    files = {f.get(f"{{{ns}}}id"): f.get(f"{{{ns}}}href") for f in root.iter(f"{{{ns}}}File")}
    disks = [d.get(f"{{{ns}}}fileRef") for d in root.iter(f"{{{ns}}}Disk")]
    hrefs = [files.get(ref) for ref in disks if ref]
    if not hrefs:
        raise FactoryError(f"{path.name} has no disk: its OVF descriptor declares no DiskSection disk with a file",
                           hint="export the VM with its disk attached, or build it with virtualbox-iso")
    missing = [h for h in hrefs if h is None or h not in members]
    if missing:
        raise FactoryError(f"{path.name} names disk file(s) it does not carry: {', '.join(map(str, missing))}",
                           hint="copy the .vmdk files next to the .ovf, or rebuild the .ova")
    return [h for h in hrefs if h]


def _descriptor(path: Path) -> tuple[bytes, set[str]]:
    if not path.is_file():
        raise FactoryError(f"appliance {path} does not exist")
    if path.suffix.lower() == ".ovf":
        return path.read_bytes(), {p.name for p in path.parent.iterdir()}
    try:
        with tarfile.open(path) as tar:
            names = tar.getnames()
            ovf = next((n for n in names if n.lower().endswith(".ovf")), None)
            if ovf is None:
                raise FactoryError(f"{path.name} holds no .ovf descriptor", hint="is it an OVA?")
            fh = tar.extractfile(ovf)
            assert fh is not None
            return fh.read(), set(names)
    except tarfile.TarError as exc:
        raise FactoryError(f"{path.name} is not an OVA (a tar file): {exc}") from None
