"""Storage volumes of a libvirt build, made the way the plugin's `source { type = ... }` says, on any host.

Every volume factory creates goes through the driver's track(), so its cleanup removes it; content travels by
volume streams (upload here, download in the artifact step), never through a shared file system. An existing
volume or pool is only ever read.
"""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree as ET

import libvirt

from factory.errors import FactoryError
from factory.machine import libvirt as lv
from factory.machine.libvirt_driver import LibvirtDriver
from factory.machine.libvirt_xml import volume_xml


def lookup(store: libvirt.virStoragePool, name: str) -> libvirt.virStorageVol:
    """An existing volume, or one clear message naming the pool and how to see what it holds."""
    try:
        return store.storageVolLookupByName(name)
    except libvirt.libvirtError:
        raise FactoryError(f"volume {name!r} does not exist in libvirt pool {store.name()!r}",
                           hint=f"list the pool's volumes with `virsh vol-list {store.name()}`, or give the "
                           "volume a source { } so that factory creates it") from None


def refuse_existing(store: libvirt.virStoragePool, name: str) -> None:
    """factory never takes over a volume it did not create: a name already in use is an error."""
    try:
        store.storageVolLookupByName(name)
    except libvirt.libvirtError:
        return
    raise FactoryError(f"volume {name!r} already exists in pool {store.name()!r}; factory does not overwrite "
                       "volumes it did not create", hint="remove it (virsh vol-delete), or set the volume's name")


def _capacity(vol: libvirt.virStorageVol) -> int:
    return int(vol.info()[1])


def _format(vol: libvirt.virStorageVol) -> str:
    fmt = ET.fromstring(vol.XMLDesc(0)).find("target/format")
    return fmt.get("type", "raw") if fmt is not None else "raw"


def from_file(driver: LibvirtDriver, store: libvirt.virStoragePool, name: str, local: Path, *,
              capacity: int | None = None) -> libvirt.virStorageVol:
    """A new volume holding a local file's bytes (uploaded by stream), grown to capacity when that is larger."""
    vol = driver.track(lv.upload(store, name, local, "raw"))
    # The pool re-reads the file: libvirt then knows the image's own format (qcow2) and resizes it as such.
    store.refresh(0)
    vol = store.storageVolLookupByName(name)
    if capacity and capacity > _capacity(vol):
        try:
            vol.resize(capacity, 0)
        except libvirt.libvirtError as exc:
            raise FactoryError(f"cannot grow volume {name!r} to {capacity} bytes: {exc.get_error_message()}",
                               hint="is the pool full? (virsh pool-info)") from None
    return vol


def backing_store(driver: LibvirtDriver, store: libvirt.virStoragePool, name: str, base: libvirt.virStorageVol,
                  *, capacity: int | None) -> libvirt.virStorageVol:
    """A qcow2 overlay on an existing volume (the base is never written)."""
    xml = volume_xml(name, capacity=max(capacity or 0, _capacity(base)), fmt="qcow2",
                     backing_path=base.path(), backing_format=_format(base))
    return driver.track(store.createXML(xml, 0))


def backing_path(driver: LibvirtDriver, store: libvirt.virStoragePool, name: str, path: str, *,
                 capacity: int | None, fmt: str = "qcow2") -> libvirt.virStorageVol:
    """A qcow2 overlay on a file of the libvirt host."""
    if not capacity:
        raise FactoryError(f"volume {name!r}: a backing-store source given by path needs capacity",
                           hint="factory cannot read the size of a file on the libvirt host: set capacity")
    xml = volume_xml(name, capacity=capacity, fmt="qcow2", backing_path=path, backing_format=fmt)
    return driver.track(store.createXML(xml, 0))


def clone(driver: LibvirtDriver, store: libvirt.virStoragePool, name: str, base: libvirt.virStorageVol, *,
          capacity: int | None, fmt: str | None) -> libvirt.virStorageVol:
    """A full copy of an existing volume made by libvirt on the host, grown to capacity."""
    xml = volume_xml(name, capacity=max(capacity or 0, _capacity(base)), fmt=fmt or _format(base))
    vol = driver.track(store.createXMLFrom(xml, base, 0))
    if capacity and capacity > _capacity(vol):
        vol.resize(capacity, 0)
    return vol
