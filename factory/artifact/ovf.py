"""The OVF 1.0 descriptor: one envelope that VirtualBox and VMware both import and the DMTF schema accepts.

Choices that keep both importers happy: system type `vmx-NN virtualbox-2.2` (each picks its own token), a
streamOptimized VMDK, RASD items with the fields in schema (alphabetical) order, controllers both know (PIIX4
IDE, AHCI SATA, LSI Logic SCSI), E1000 for a virtio NIC (OVF has no portable virtio subtype), and EFI
firmware as VMware's `vmw:Config firmware` (an extension element, ignored by importers that do not know it).
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from factory.artifact.model import Firmware, Hardware
from factory.errors import FactoryError

OVF = "http://schemas.dmtf.org/ovf/envelope/1"
RASD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
VSSD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
VMW = "http://www.vmware.com/schema/ovf"
VBOX = "http://www.virtualbox.org/ovf/machine"
NSMAP = {None: OVF, "ovf": OVF, "rasd": RASD, "vssd": VSSD, "vmw": VMW, "vbox": VBOX}
VMDK_FORMAT = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"


@dataclass(frozen=True)
class GuestOs:
    cim_id: int          # CIM_OperatingSystem.OsType
    vmware: str          # vmw:osType
    virtualbox: str      # vbox:OSType
    description: str


GUEST_OS = {
    "debian": GuestOs(96, "debian11_64Guest", "Debian_64", "Debian GNU/Linux (64-bit)"),
    "ubuntu": GuestOs(94, "ubuntu64Guest", "Ubuntu_64", "Ubuntu Linux (64-bit)"),
    "rhel": GuestOs(80, "rhel9_64Guest", "RedHat_64", "Red Hat Enterprise Linux (64-bit)"),
    "linux": GuestOs(101, "other5xLinux64Guest", "Linux_64", "Other Linux (64-bit)"),
}

# disk_interface -> (ResourceType, ResourceSubType, VMDK adapter); see the module docstring for why.
_CONTROLLERS = {
    "ide": (5, "PIIX4", "ide"),
    "sata": (20, "AHCI", "ide"),
    "scsi": (6, "lsilogic", "lsilogic"),
    "virtio-scsi": (6, "lsilogic", "lsilogic"),
    "virtio": (6, "lsilogic", "lsilogic"),
}
_NICS = {"e1000": "E1000", "e1000e": "E1000", "virtio-net": "E1000", "virtio": "E1000", "vmxnet3": "VmxNet3",
         "pcnet": "PCNet32", "rtl8139": "E1000"}


@dataclass(frozen=True)
class DiskRef:
    href: str            # file name inside the package
    size: int | None     # file size in bytes (None while unknown)
    capacity: int        # virtual size in bytes
    populated: int       # bytes of data


def controller_for(hw: Hardware) -> tuple[int, str, str]:
    try:
        return _CONTROLLERS[hw.disk_interface]
    except KeyError:
        raise FactoryError(f"disk interface {hw.disk_interface!r} has no OVF equivalent",
                           hint="use one of: " + ", ".join(_CONTROLLERS)) from None


def guest_os(name: str) -> GuestOs:
    try:
        return GUEST_OS[name]
    except KeyError:
        raise FactoryError(f"unknown guest OS {name!r} for the OVF descriptor",
                           hint="use one of: " + ", ".join(GUEST_OS)) from None


def _sub(parent: etree._Element, ns: str, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, f"{{{ns}}}{tag}")
    for key, value in attrs.items():
        ns_key, _, local = key.partition("_")
        el.set(f"{{{NSMAP[ns_key]}}}{local}", value)
    if text is not None:
        el.text = text
    return el


def _item(section: etree._Element, fields: dict[str, str]) -> None:
    """A RASD Item; fields are written in the schema's (alphabetical) order whatever order they come in."""
    item = _sub(section, OVF, "Item")
    for key in sorted(fields):
        _sub(item, RASD, key, fields[key])


def render(name: str, hw: Hardware, disk: DiskRef, *, hw_version: int = 14, os_name: str = "linux") -> bytes:
    """The .ovf envelope for one VM with one disk, as UTF-8 XML bytes (deterministic for equal inputs)."""
    os_info = guest_os(os_name)
    env = etree.Element(f"{{{OVF}}}Envelope", nsmap=NSMAP)
    env.set(f"{{{OVF}}}version", "1.0")
    refs = _sub(env, OVF, "References")
    file_attrs = {"ovf_href": disk.href, "ovf_id": "file1"}
    if disk.size is not None:
        file_attrs["ovf_size"] = str(disk.size)
    _sub(refs, OVF, "File", **file_attrs)
    disks = _sub(env, OVF, "DiskSection")
    _sub(disks, OVF, "Info", "Virtual disk information")
    _sub(disks, OVF, "Disk", ovf_capacity=str(disk.capacity), ovf_capacityAllocationUnits="byte",
         ovf_diskId="vmdisk1", ovf_fileRef="file1", ovf_format=VMDK_FORMAT, ovf_populatedSize=str(disk.populated))
    nets = _sub(env, OVF, "NetworkSection")
    _sub(nets, OVF, "Info", "The list of logical networks")
    net = _sub(nets, OVF, "Network", ovf_name="NAT")
    _sub(net, OVF, "Description", "The NAT network")
    vs = _sub(env, OVF, "VirtualSystem", ovf_id=name)
    _sub(vs, OVF, "Info", "A virtual machine")
    _sub(vs, OVF, "Name", name)
    oss = _sub(vs, OVF, "OperatingSystemSection", ovf_id=str(os_info.cim_id), vmw_osType=os_info.vmware)
    _sub(oss, OVF, "Info", "The kind of installed guest operating system")
    _sub(oss, OVF, "Description", os_info.description)
    _sub(oss, VBOX, "OSType", os_info.virtualbox, ovf_required="false")
    _hardware(vs, name, hw, hw_version)
    text: bytes = etree.tostring(env, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return text


def _hardware(vs: etree._Element, name: str, hw: Hardware, hw_version: int) -> None:
    sec = _sub(vs, OVF, "VirtualHardwareSection")
    _sub(sec, OVF, "Info", "Virtual hardware requirements")
    system = _sub(sec, OVF, "System")
    for tag, text in (("ElementName", "Virtual Hardware Family"), ("InstanceID", "0"),
                      ("VirtualSystemIdentifier", name),
                      ("VirtualSystemType", f"vmx-{hw_version:02d} virtualbox-2.2")):
        _sub(system, VSSD, tag, text)
    _item(sec, {"AllocationUnits": "hertz * 10^6", "Description": "Number of virtual CPUs",
                "ElementName": f"{hw.cpus} virtual CPU(s)", "InstanceID": "1", "ResourceType": "3",
                "VirtualQuantity": str(hw.cpus)})
    _item(sec, {"AllocationUnits": "byte * 2^20", "Description": "Memory size",
                "ElementName": f"{hw.memory_mb}MB of memory", "InstanceID": "2", "ResourceType": "4",
                "VirtualQuantity": str(hw.memory_mb)})
    rtype, subtype, _ = controller_for(hw)
    _item(sec, {"Address": "0", "Description": "Disk controller", "ElementName": f"{subtype} controller 0",
                "InstanceID": "3", "ResourceSubType": subtype, "ResourceType": str(rtype)})
    _item(sec, {"AddressOnParent": "0", "ElementName": "disk1", "HostResource": "ovf:/disk/vmdisk1",
                "InstanceID": "4", "Parent": "3", "ResourceType": "17"})
    nic = _NICS.get(hw.net_device, "E1000")
    _item(sec, {"AddressOnParent": "1", "AutomaticAllocation": "true", "Connection": "NAT",
                "Description": f"{nic} ethernet adapter on NAT", "ElementName": "ethernet0", "InstanceID": "5",
                "ResourceSubType": nic, "ResourceType": "10"})
    if hw.firmware is Firmware.EFI:
        _sub(sec, VMW, "Config", ovf_required="false", vmw_key="firmware", vmw_value="efi")
