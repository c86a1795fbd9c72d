"""libvirt XML for a build: the domain (named with factory's prefix, tagged with factory metadata) and its volumes.

Everything here is pure: a DomainPlan in, an XML string out, so golden files pin the output and
`virt-xml-validate` checks it against libvirt's schemas in tests.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from enum import StrEnum

from factory.schema.libvirt import LibvirtSource, NetworkInterface, Volume

# factory's metadata namespace: `factory clean --libvirt URI` finds leftovers of killed runs by it.
METADATA_NS = "urn:x-factory:libvirt:1"
METADATA_PREFIX = "factory"
QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"
NAME_PREFIX = "factory-"
# A PCI slot libvirt leaves free in a small domain, for the NIC passed through <qemu:commandline>: q35 needs an
# explicit free slot on pcie.0 ("slot 1 function 0 not available for pcie-root-port" otherwise).
USER_NIC_SLOT = "0x10"

ET.register_namespace("qemu", QEMU_NS)
ET.register_namespace(METADATA_PREFIX, METADATA_NS)


class UserNet(StrEnum):
    """How a `user` interface forwards the guest's SSH port to the host's loopback."""

    HOSTFWD = "hostfwd"   # QEMU's own user networking (slirp) through <qemu:commandline>: always available
    PASST = "passt"       # libvirt's <portForward> with the passt backend (needs Debian's passt)


@dataclass(frozen=True)
class DiskPlan:
    pool: str
    volume: str
    format: str = "qcow2"
    bus: str = "virtio"
    target_dev: str = "vda"
    alias: str | None = None
    readonly: bool = False
    device: str = "disk"                # disk | cdrom


@dataclass(frozen=True)
class NicPlan:
    type: str                           # user | managed | bridge
    model: str = "virtio"
    alias: str | None = None
    mac: str | None = None
    network: str = "default"
    bridge: str | None = None
    host_port: int | None = None        # user: 127.0.0.1:host_port -> guest_port
    guest_port: int = 22


@dataclass(frozen=True)
class GraphicsPlan:
    type: str                           # vnc | sdl
    port: int | None = None
    display: str | None = None


@dataclass(frozen=True)
class DomainPlan:
    name: str
    build_id: str
    source: str                         # the template's source name (metadata, for humans)
    domain_type: str = "qemu"           # kvm only when the accelerator probe says KVM runs
    arch: str = "x86_64"
    machine: str | None = None
    memory_mib: int = 512
    vcpu: int = 1
    cpu_mode: str | None = None
    loader_path: str | None = None
    loader_type: str | None = None
    secure_boot: bool = False
    nvram_path: str | None = None
    nvram_template: str | None = None
    disks: tuple[DiskPlan, ...] = ()
    nics: tuple[NicPlan, ...] = ()
    graphics: tuple[GraphicsPlan, ...] = ()
    serial_log: str | None = None       # a file on the libvirt host; None: a pty (read through the console API)
    boot_devices: tuple[str, ...] = ()
    user_net: UserNet = UserNet.HOSTFWD
    created: tuple[tuple[str, str], ...] = ()   # (pool, volume) factory made for this domain: clean removes them
    owner: str = ""                     # "host:pid" of the running factory: clean leaves a live build alone
    shutdown_mode: str | None = None    # how powerdown() asks (acpi, guest, ...); not part of the XML
    address_source: str = "agent"       # how a managed/bridge NIC's address is found (agent, lease, arp)
    communicator_alias: str = "communicator"   # the NIC SSH goes through (else the first)


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, {k.rstrip("_"): v for k, v in attrs.items()})
    if text is not None:
        el.text = text
    return el


def _tostring(root: ET.Element) -> str:
    ET.indent(root, "  ")
    return ET.tostring(root, encoding="unicode") + "\n"


def domain_xml(plan: DomainPlan) -> str:
    """The domain definition of plan."""
    root = ET.Element("domain", {"type": plan.domain_type})
    _sub(root, "name", plan.name)
    meta = _sub(root, "metadata")
    build = _sub(meta, f"{{{METADATA_NS}}}build", id=plan.build_id, source=plan.source)
    if plan.owner:
        build.set("owner", plan.owner)
    for pool, volume in plan.created:
        _sub(build, f"{{{METADATA_NS}}}volume", pool=pool, name=volume)
    _sub(root, "memory", str(plan.memory_mib), unit="MiB")
    _sub(root, "vcpu", str(plan.vcpu))
    _os(root, plan)
    features = _sub(root, "features")
    _sub(features, "acpi")      # the ACPI power button is how a graceful shutdown is asked for
    _sub(features, "apic")
    if plan.cpu_mode:
        _sub(root, "cpu", mode=plan.cpu_mode)
    _sub(root, "on_poweroff", "destroy")
    _sub(root, "on_reboot", "restart")
    _sub(root, "on_crash", "destroy")
    devices = _sub(root, "devices")
    for disk in plan.disks:
        _disk(devices, disk)
    if any(d.bus == "scsi" for d in plan.disks):
        _sub(devices, "controller", type="scsi", model="virtio-scsi")
    for nic in plan.nics:
        if not (nic.type == "user" and plan.user_net is UserNet.HOSTFWD):
            _interface(devices, nic)
    _serial(devices, plan.serial_log)
    for gfx in plan.graphics:
        _graphics(devices, gfx)
    # A video device even when headless: virDomainScreenshot needs one for the failure screenshot.
    _sub(_sub(devices, "video"), "model", type="virtio" if plan.graphics else "vga")
    _sub(devices, "memballoon", model="none")
    hostfwd = [n for n in plan.nics if n.type == "user" and plan.user_net is UserNet.HOSTFWD]
    if hostfwd:
        _qemu_user_nics(root, plan, hostfwd)
    return _tostring(root)


def _os(root: ET.Element, plan: DomainPlan) -> None:
    os_el = _sub(root, "os")
    type_attrs = {"arch": plan.arch}
    if plan.machine:
        type_attrs["machine"] = plan.machine
    _sub(os_el, "type", "hvm", **type_attrs)
    if plan.loader_path:
        attrs = {"readonly": "yes"}
        if plan.loader_type:
            attrs["type"] = plan.loader_type
        if plan.secure_boot:
            attrs["secure"] = "yes"
        _sub(os_el, "loader", plan.loader_path, **attrs)
    if plan.nvram_path or plan.nvram_template:
        attrs = {"template": plan.nvram_template} if plan.nvram_template else {}
        _sub(os_el, "nvram", plan.nvram_path, **attrs)
    for dev in plan.boot_devices:
        _sub(os_el, "boot", dev=dev)


def _disk(devices: ET.Element, disk: DiskPlan) -> None:
    el = _sub(devices, "disk", type="volume", device=disk.device)
    _sub(el, "driver", name="qemu", type=disk.format)
    _sub(el, "source", pool=disk.pool, volume=disk.volume)
    _sub(el, "target", dev=disk.target_dev, bus=disk.bus)
    if disk.readonly or disk.device == "cdrom":
        _sub(el, "readonly")
    if disk.alias:
        _sub(el, "alias", name=f"ua-{disk.alias}")


def _interface(devices: ET.Element, nic: NicPlan) -> None:
    kind = {"managed": "network", "bridge": "bridge", "user": "user"}[nic.type]
    el = _sub(devices, "interface", type=kind)
    if nic.mac:
        _sub(el, "mac", address=nic.mac)
    if nic.type == "managed":
        _sub(el, "source", network=nic.network)
    elif nic.type == "bridge":
        _sub(el, "source", bridge=nic.bridge or "")
    else:  # user with passt: libvirt forwards the host's loopback port itself
        _sub(el, "backend", type="passt")
        if nic.host_port is not None:
            fwd = _sub(el, "portForward", proto="tcp", address="127.0.0.1")
            _sub(fwd, "range", start=str(nic.host_port), to=str(nic.guest_port))
    _sub(el, "model", type=nic.model)
    if nic.alias:
        _sub(el, "alias", name=f"ua-{nic.alias}")


def _serial(devices: ET.Element, log: str | None) -> None:
    if log:
        el = _sub(devices, "serial", type="file")
        _sub(el, "source", path=log, append="on")
    else:
        el = _sub(devices, "serial", type="pty")
    _sub(el, "target", port="0")
    _sub(el, "alias", name="ua-serial-console")


def _graphics(devices: ET.Element, gfx: GraphicsPlan) -> None:
    if gfx.type == "sdl":
        _sub(devices, "graphics", type="sdl", display=gfx.display or ":0")
        return
    attrs = {"type": "vnc", "listen": "127.0.0.1"}
    if gfx.port is None:
        attrs["autoport"] = "yes"
    else:
        attrs["port"] = str(gfx.port) if gfx.port else "-1"
        attrs["autoport"] = "no" if gfx.port else "yes"
    _sub(devices, "graphics", **attrs)


def _qemu_user_nics(root: ET.Element, plan: DomainPlan, nics: list[NicPlan]) -> None:
    """QEMU's user networking with the SSH forward bound to the host's loopback (the address is literal, so the
    forward can never listen on another interface)."""
    bus = "pcie.0" if plan.machine and "q35" in plan.machine else "pci.0"
    cmd = _sub(root, f"{{{QEMU_NS}}}commandline")
    for i, nic in enumerate(nics):
        netdev = f"user,id=factorynet{i}"
        if nic.host_port is not None:
            netdev += f",hostfwd=tcp:127.0.0.1:{nic.host_port}-:{nic.guest_port}"
        model = {"virtio": "virtio-net-pci"}.get(nic.model, nic.model)
        slot = f"0x{int(USER_NIC_SLOT, 16) + i:x}"
        device = f"{model},netdev=factorynet{i},bus={bus},addr={slot}"
        if nic.mac:
            device += f",mac={nic.mac}"
        for arg in ("-netdev", netdev, "-device", device):
            _sub(cmd, f"{{{QEMU_NS}}}arg", value=arg)


def volume_xml(name: str, *, capacity: int, fmt: str = "qcow2", allocation: int | None = None,
               backing_path: str | None = None, backing_format: str | None = None) -> str:
    """A storage volume definition (sizes in bytes); with a backing store for copy-on-write volumes."""
    root = ET.Element("volume")
    _sub(root, "name", name)
    _sub(root, "capacity", str(capacity), unit="bytes")
    if allocation is not None:
        _sub(root, "allocation", str(allocation), unit="bytes")
    target = _sub(root, "target")
    _sub(target, "format", type=fmt)
    if backing_path:
        backing = _sub(root, "backingStore")
        _sub(backing, "path", backing_path)
        _sub(backing, "format", type=backing_format or "qcow2")
    return _tostring(root)


def pool_xml(name: str, path: str) -> str:
    """A directory pool (tests and `qemu:///session` setups that have no `default` pool yet)."""
    root = ET.Element("pool", {"type": "dir"})
    _sub(root, "name", name)
    _sub(_sub(root, "target"), "path", path)
    return _tostring(root)


_DEV_PREFIX = {"virtio": "vd", "scsi": "sd", "sata": "sd", "usb": "sd", "ide": "hd", "xen": "xvd", "sd": "sd"}
_BUS_OF_PREFIX = {"vd": "virtio", "sd": "scsi", "hd": "ide", "xvd": "xen"}


def disk_plans(volumes: tuple[Volume, ...], names: tuple[str, ...], cdrom: tuple[bool, ...]) -> tuple[DiskPlan, ...]:
    """Disks for the declared volumes (names: their resolved volume names). As the plugin: a disk without bus
    and target_dev is `sda` on SCSI (then `sdb`, ...); a bus alone gets the next free name of that bus."""
    used: set[str] = {v.target_dev for v in volumes if v.target_dev}
    out = []
    for vol, name, is_cd in zip(volumes, names, cdrom, strict=True):
        bus = vol.bus or (_bus_of(vol.target_dev) if vol.target_dev else "scsi")
        dev = vol.target_dev or _next_dev(_DEV_PREFIX.get(bus, "sd"), used)
        used.add(dev)
        fmt = "raw" if is_cd else (vol.format or "qcow2")
        # A seed image on virtio is a read-only disk: virtio-blk has no ejectable media.
        device = "cdrom" if is_cd and bus != "virtio" else "disk"
        out.append(DiskPlan(pool=vol.pool, volume=name, format=fmt, bus=bus, target_dev=dev, alias=vol.alias,
                            readonly=vol.readonly or is_cd, device=device))
    return tuple(out)


def _bus_of(dev: str) -> str:
    for prefix in sorted(_BUS_OF_PREFIX, key=len, reverse=True):
        if dev.startswith(prefix):
            return _BUS_OF_PREFIX[prefix]
    return "virtio"


def _next_dev(prefix: str, used: set[str]) -> str:
    for letter in "abcdefghijklmnopqrstuvwxyz":
        if prefix + letter not in used:
            return prefix + letter
    raise ValueError(f"no free {prefix}* device name")


def nic_plans(nics: tuple[NetworkInterface, ...], ssh_host_port: int | None, guest_port: int = 22,
              communicator_alias: str = "communicator") -> tuple[NicPlan, ...]:
    """Interfaces; the SSH forward goes to the communicator's `user` interface (the first, or the aliased one)."""
    users = [n for n in nics if n.type == "user"]
    target = next((n for n in users if n.alias == communicator_alias), users[0] if users else None)
    return tuple(NicPlan(type=n.type, model=n.model, alias=n.alias, mac=n.mac, network=n.network,
                         bridge=n.bridge, host_port=ssh_host_port if n is target else None, guest_port=guest_port)
                 for n in nics)


def domain_plan(cfg: LibvirtSource, *, name: str, build_id: str, source: str, domain_type: str,
                volume_names: tuple[str, ...], ssh_host_port: int | None, serial_log: str | None,
                user_net: UserNet = UserNet.HOSTFWD, created: tuple[tuple[str, str], ...] = ()) -> DomainPlan:
    """The domain a `source "libvirt"` block describes, with what the build resolved (names, port, log)."""
    volumes = cfg.volumes
    cdrom = tuple(v.source is not None and v.source.type in ("cloud-init", "files") for v in volumes)
    return DomainPlan(
        name=name, build_id=build_id, source=source, domain_type=cfg.domain_type or domain_type, arch=cfg.arch,
        machine=cfg.chipset, memory_mib=cfg.memory, vcpu=cfg.vcpu, cpu_mode=cfg.cpu_mode,
        loader_path=cfg.loader_path, loader_type=cfg.loader_type, secure_boot=cfg.secure_boot,
        nvram_path=cfg.nvram_path, nvram_template=cfg.nvram_template,
        disks=disk_plans(volumes, volume_names, cdrom),
        nics=nic_plans(cfg.interfaces, ssh_host_port, cfg.ssh_port, cfg.communicator_interface),
        graphics=tuple(GraphicsPlan(g.type, g.port, g.display) for g in cfg.displays),
        serial_log=serial_log, boot_devices=tuple(cfg.boot_devices), user_net=user_net, created=created,
        shutdown_mode=cfg.shutdown_mode, address_source=cfg.network_address_source,
        communicator_alias=cfg.communicator_interface)
