"""The libvirt driver: machines are libvirt domains on a local or remote host (`qemu:///system`, `qemu:///session`,
`qemu+ssh://user@host/system`).

Nothing assumes a shared file system: disks go to the host's storage pool by volume streams and come back the
same way. factory only ever touches domains and volumes it created (tagged with its metadata); a name that
already exists is an error, never an overwrite. Disk operations between machines stay local (qemu-img), as in
the QEMU driver.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import libvirt

from factory.errors import FactoryError
from factory.machine.driver import Endpoint, Machine, MachineEventKind, MachineSpec, PortRange, PowerState
from factory.machine.keys import Action, Hold, Press, Wait
from factory.machine.libvirt_tunnel import SshTunnel
from factory.machine.libvirt_xml import METADATA_NS, DomainPlan, domain_xml, volume_xml
from factory.machine.linux_keys import LINUX_KEYS

CHUNK = 1 << 20
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)   # errors are raised, not also printed to stderr


def connect(uri: str) -> libvirt.virConnect:
    """An open connection, or one clear message for the usual ways it fails."""
    _start_event_loop()   # before the connection: its lifecycle events need the loop registered first
    try:
        return libvirt.open(uri)
    except libvirt.libvirtError as exc:
        raise FactoryError(f"cannot connect to libvirt at {uri}: {exc.get_error_message()}",
                           hint=_connect_hint(uri, exc)) from None


def _connect_hint(uri: str, exc: libvirt.libvirtError) -> str:
    text = (exc.get_error_message() or "").lower()
    if "+ssh" in uri:
        return ("check that `ssh` reaches the host with your key (add ?keyfile=PATH to the URI) and that a libvirt "
                "daemon runs there")
    if "session" in uri and ("no such file" in text or "connect" in text):
        return ("qemu:///session needs a libvirt daemon of your user: start it with `libvirtd -d` (or "
                "`virtqemud -d`) as that user, with XDG_RUNTIME_DIR set")
    if "permission denied" in text:
        return ("your user may not use this daemon's socket: run as root, join the `libvirt` group, or use "
                "qemu:///session")
    if "no such file" in text or "connection refused" in text:
        return "no libvirt daemon answers there: start it (`virtlogd -d && libvirtd -d` as root without systemd)"
    return "check libvirt_uri"


def _metadata(dom: libvirt.virDomain) -> str | None:
    try:
        return str(dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NS))
    except libvirt.libvirtError:
        return None


def pool(conn: libvirt.virConnect, name: str) -> libvirt.virStoragePool:
    try:
        found = conn.storagePoolLookupByName(name)
    except libvirt.libvirtError:
        raise FactoryError(f"libvirt storage pool {name!r} does not exist on {conn.getURI()}",
                           hint=f"create it (virsh pool-define-as {name} dir --target DIR; virsh pool-build "
                           f"{name}; virsh pool-start {name}) or set the volume's pool") from None
    if not found.isActive():
        found.create(0)
    found.refresh(0)
    return found


def upload(store: libvirt.virStoragePool, name: str, src: Path, fmt: str) -> libvirt.virStorageVol:
    """A new volume holding src's bytes, sent by a volume stream (the host need not see src)."""
    try:
        store.storageVolLookupByName(name)
    except libvirt.libvirtError:
        pass
    else:
        raise FactoryError(f"volume {name!r} already exists in pool {store.name()!r}; factory does not overwrite "
                           "volumes it did not create", hint="remove it, or choose another volume name")
    size = src.stat().st_size
    vol = store.createXML(volume_xml(name, capacity=max(size, 1), fmt="raw", allocation=0), 0)
    conn = store.connect()
    stream = conn.newStream(0)
    try:
        vol.upload(stream, 0, size, 0)
        with src.open("rb") as fh:
            stream.sendAll(lambda _s, n, f: f.read(min(n, CHUNK)), fh)
        stream.finish()
    except BaseException:
        _abort(stream)
        vol.delete(0)
        raise
    del fmt  # the bytes carry their format (qcow2 header or raw); the domain's driver type names it
    return vol


def download(vol: libvirt.virStorageVol, dest: Path) -> Path:
    """vol's bytes written to dest by a volume stream; dest appears whole or not at all."""
    part = dest.with_name(f".{dest.name}.part")
    stream = vol.connect().newStream(0)
    try:
        vol.download(stream, 0, 0, 0)
        with part.open("wb") as fh:
            stream.recvAll(lambda _s, data, f: f.write(data), fh)
        stream.finish()
        os.replace(part, dest)
    except BaseException:
        _abort(stream)
        part.unlink(missing_ok=True)
        raise
    return dest


def _abort(stream: libvirt.virStream) -> None:
    with suppress(libvirt.libvirtError):
        stream.abort()


def ppm_to_png(ppm: bytes) -> bytes:
    """The binary PPM (P6) that QEMU's screendump gives libvirt, as PNG."""
    parts = ppm.split(maxsplit=4)
    if len(parts) < 5 or parts[0] != b"P6":
        raise ValueError("not a binary PPM")
    width, height, pixels = int(parts[1]), int(parts[2]), parts[4]
    stride = width * 3
    raw = b"".join(b"\0" + pixels[y * stride:(y + 1) * stride] for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


_events_started = False
_events_lock = threading.Lock()


def _start_event_loop() -> None:
    """libvirt's default event loop in a daemon thread: domain lifecycle events arrive through it."""
    global _events_started
    with _events_lock:
        if _events_started:
            return
        libvirt.virEventRegisterDefaultImpl()

        def loop() -> None:
            while True:
                libvirt.virEventRunDefaultImpl()

        threading.Thread(target=loop, name="libvirt-events", daemon=True).start()
        _events_started = True


class LibvirtMachine(Machine):
    """One domain: defined and started by start(), destroyed and undefined by stop()."""

    def __init__(self, spec: MachineSpec, plan: DomainPlan, conn: libvirt.virConnect,
                 tunnel: SshTunnel | None = None) -> None:
        self.spec, self.plan, self.conn, self.tunnel = spec, plan, conn, tunnel
        self._uri = conn.getURI()
        self._ssh: Endpoint | None = None
        self.dom: libvirt.virDomain | None = None
        self._state = PowerState.DEFINED
        self._off = threading.Event()
        self._callback: int | None = None
        self._console: threading.Thread | None = None
        self._lost = ""
        self._stopping = False

    def start(self) -> None:
        try:
            existing = self.conn.lookupByName(self.plan.name)
        except libvirt.libvirtError:
            existing = None
        if existing is not None:
            raise FactoryError(f"a libvirt domain named {self.plan.name!r} already exists on {self.conn.getURI()}; "
                               "factory never replaces a domain it did not create",
                               hint="remove it, choose another domain_name, or `factory clean --libvirt URI` "
                               "if it is a leftover of a killed factory run")
        self._callback = self.conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                                          self._lifecycle, None)
        self.conn.registerCloseCallback(self._closed, None)
        self.plan = replace(self.plan, owner=f"{socket.gethostname()}:{os.getpid()}")
        try:
            self.dom = self.conn.defineXML(domain_xml(self.plan))
        except libvirt.libvirtError as exc:
            raise FactoryError(f"libvirt refused the domain {self.plan.name}: {exc.get_error_message()}",
                               hint="check the source's options (loader_path, chipset, volumes) against the "
                               "host") from None
        try:
            self.dom.create()
        except libvirt.libvirtError as exc:
            raise FactoryError(f"libvirt could not start {self.plan.name}: {exc.get_error_message()}") from None
        self._state = PowerState.RUNNING
        if self.plan.serial_log is None:
            self._console = threading.Thread(target=self._follow_console, args=(self.dom,), daemon=True)
            self._console.start()

    def _lifecycle(self, _conn: Any, dom: libvirt.virDomain, event: int, detail: int, _opaque: Any) -> None:
        mine = self.dom       # read once: stop() may clear it on another thread meanwhile
        try:
            if mine is None or dom.UUID() != mine.UUID():
                return
        except libvirt.libvirtError:
            return
        if event == libvirt.VIR_DOMAIN_EVENT_STOPPED:
            # Destroyed by stop() is an orderly end; destroyed by someone else is as bad as a crash.
            shutdown = detail == libvirt.VIR_DOMAIN_EVENT_STOPPED_SHUTDOWN or (
                detail == libvirt.VIR_DOMAIN_EVENT_STOPPED_DESTROYED and self._stopping)
            self._state = PowerState.OFF if shutdown else PowerState.CRASHED
            self._off.set()
            self.notify(MachineEventKind.POWERED_OFF)
        elif event == libvirt.VIR_DOMAIN_EVENT_SHUTDOWN:
            self.notify(MachineEventKind.POWERDOWN)

    def _closed(self, _conn: Any, reason: int, _opaque: Any) -> None:
        why = {libvirt.VIR_CONNECT_CLOSE_REASON_EOF: "the daemon closed it",
               libvirt.VIR_CONNECT_CLOSE_REASON_KEEPALIVE: "the daemon stopped answering keepalives",
               libvirt.VIR_CONNECT_CLOSE_REASON_ERROR: "a socket error"}.get(reason, f"reason {reason}")
        self._lost = f"the connection to libvirt at {self._uri} was lost ({why}): did libvirtd stop?"
        self._off.set()

    def _follow_console(self, dom: libvirt.virDomain) -> None:
        """The guest's serial console (a pty on the libvirt host) appended to the local serial log."""
        stream = self.conn.newStream(0)
        try:
            dom.openConsole(None, stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
            self.spec.serial_log.parent.mkdir(parents=True, exist_ok=True)
            with self.spec.serial_log.open("ab") as log:
                while True:
                    data = stream.recv(4096)
                    if not isinstance(data, bytes) or not data:
                        break
                    log.write(data)
                    log.flush()
        except (libvirt.libvirtError, OSError):
            pass

    def alive(self) -> None:
        if self._lost:
            raise FactoryError(f"{self.plan.name}: {self._lost}",
                               hint=f"restart libvirtd, then `factory clean --libvirt {self._uri}` removes the "
                               "domain and volumes this build left (its QEMU may still run until then)")
        if self._state is PowerState.CRASHED:
            raise FactoryError(f"the domain {self.plan.name} ended unexpectedly", hint=self._serial_tail())

    def _serial_tail(self) -> str:
        path = self.spec.serial_log
        lines = path.read_text(errors="replace").splitlines()[-15:] if path.exists() else []
        return "last serial console lines:\n" + "\n".join(lines) if lines else "the serial console was empty"

    def running(self) -> bool:
        if self.dom is None or self._off.is_set():
            return False
        try:
            return bool(self.dom.isActive())
        except libvirt.libvirtError:
            return False

    def state(self) -> PowerState:
        return self._state

    def wait_poweroff(self, timeout: float) -> bool:
        return self._off.wait(timeout) or not self.running()

    def powerdown(self) -> None:
        """Ask the guest to shut down the way shutdown_mode says (default: the ACPI power button)."""
        if self.dom is not None and self.running():
            flags = _SHUTDOWN_FLAGS.get(self.plan.shutdown_mode or "acpi", libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN)
            try:
                self.dom.shutdownFlags(flags)
            except libvirt.libvirtError as exc:
                raise FactoryError(f"{self.plan.name}: libvirt could not shut the domain down "
                                   f"({self.plan.shutdown_mode or 'acpi'}): {exc.get_error_message()}",
                                   hint="shutdown_mode = \"guest\" needs qemu-guest-agent in the guest; "
                                   "\"acpi\" works with any guest that handles the power button") from None

    def stop(self) -> None:
        if self.tunnel is not None:
            self.tunnel.stop()
        if self.dom is None:
            return
        self._stopping = True
        dom, self.dom = self.dom, None
        try:
            if dom.isActive():
                dom.destroy()
        except libvirt.libvirtError:
            pass
        with suppress(libvirt.libvirtError):
            dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
        if self._callback is not None:
            with suppress(libvirt.libvirtError):
                self.conn.domainEventDeregisterAny(self._callback)
            self._callback = None
        if self._state is PowerState.RUNNING:
            self._state = PowerState.OFF
        self._off.set()

    def screendump(self, dest: Path) -> Path | None:
        if self.dom is None or not self.running():
            return None
        stream = self.conn.newStream(0)
        chunks: list[bytes] = []
        try:
            mime = self.dom.screenshot(stream, 0, 0)
            stream.recvAll(lambda _s, data, acc: acc.append(data), chunks)
            stream.finish()
            # libvirt 9 has QEMU write PNG itself where it can; older pairs hand over a PPM.
            data = b"".join(chunks)
            png = data if mime == "image/png" else ppm_to_png(data)
        except (libvirt.libvirtError, ValueError):
            _abort(stream)
            return None
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(png)
        return dest

    def send_keys(self, actions: Sequence[Action], interval: float,
                  interrupted: Callable[[], None] | None = None) -> None:
        """virDomainSendKey with Linux keycodes; keys held by `<...On>` go along with each key typed."""
        if self.dom is None:
            raise FactoryError("cannot type the boot command: the domain is not running")
        held: list[int] = []
        for action in actions:
            self.alive()
            if interrupted:
                interrupted()
            if isinstance(action, Wait):
                time.sleep(action.seconds)
                continue
            if isinstance(action, Hold):
                code = _code(action.qcode)
                if action.down and code not in held:
                    held.append(code)
                elif not action.down and code in held:
                    held.remove(code)
                continue
            if isinstance(action, Press):
                codes = [*held, *([LINUX_KEYS["shift"]] if action.shift else []), _code(action.qcode)]
                self.dom.sendKey(libvirt.VIR_KEYCODE_SET_LINUX, 30, codes, len(codes), 0)
            time.sleep(interval)

    def ssh_address(self, guest_port: int, ports: PortRange, *, timeout: float) -> Endpoint:
        """A user-mode NIC: its loopback forward (through an SSH tunnel when the host is remote). A managed or
        bridge NIC: the guest's own address, found as network_address_source says (waits up to timeout)."""
        if self._ssh is not None:
            return self._ssh
        forward = next((n.host_port for n in self.plan.nics if n.host_port is not None), None)
        if forward is not None:
            port = self.tunnel.open(forward, ports.low, ports.high) if self.tunnel is not None else forward
            self._ssh = Endpoint("127.0.0.1", port, forwarded=True)
            return self._ssh
        nics = [n for n in self.plan.nics if n.type != "user"]
        if not nics:
            raise FactoryError(f"{self.plan.name}: no interface forwards or carries the guest's SSH port",
                               hint='add network_interface { type = "user" } or set ssh_host')
        index = next((i for i, n in enumerate(nics) if n.alias == self.plan.communicator_alias), 0)
        self._ssh = Endpoint(self._wait_address(index, timeout), guest_port)
        return self._ssh

    def _wait_address(self, index: int, timeout: float) -> str:
        source = self.plan.address_source
        deadline = time.monotonic() + timeout
        last = "no address yet"
        while True:
            self.alive()
            if self.dom is None:
                raise FactoryError(f"{self.plan.name}: the domain is not running")
            mac = interface_macs(self.dom.XMLDesc(0))[index]
            try:
                found = pick_address(self.dom.interfaceAddresses(_ADDRESS_SOURCES[source], 0), mac)
            except libvirt.libvirtError as exc:
                found, last = None, exc.get_error_message()
            if found:
                return found
            if time.monotonic() > deadline:
                raise FactoryError(f"{self.plan.name}: no address for the interface {mac} from the {source} "
                                   f"source within {timeout:g}s ({last})", hint=_ADDRESS_HINTS[source])
            time.sleep(2)


_ADDRESS_SOURCES = {"agent": libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_AGENT,
                    "lease": libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE,
                    "arp": libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_ARP}
_ADDRESS_HINTS = {"agent": "the guest needs qemu-guest-agent running and a guest agent channel; or use "
                           'network_address_source = "lease" on a managed network',
                  "lease": "only a libvirt-managed network with DHCP has leases; for a bridge use \"arp\" or "
                           "\"agent\"",
                  "arp": "the host's ARP table lists the guest only after it sent traffic; try \"agent\""}


def interface_macs(xml: str) -> list[str]:
    """The MAC address of each non-user interface of a live domain, in order (libvirt assigns missing ones)."""
    root = ET.fromstring(xml)
    return [mac.get("address", "").lower() for iface in root.iter("interface") if iface.get("type") != "user"
            for mac in iface.findall("mac")]


def pick_address(interfaces: dict[str, Any], mac: str) -> str | None:
    """The guest's first IPv4 address on the interface with mac (libvirt's interfaceAddresses result); the
    loopback and link-local ones never count."""
    for info in interfaces.values():
        if str(info.get("hwaddr", "")).lower() != mac.lower():
            continue
        for addr in info.get("addrs") or []:
            text = str(addr.get("addr", ""))
            if addr.get("type") == libvirt.VIR_IP_ADDR_TYPE_IPV4 and not text.startswith(("127.", "169.254.")):
                return text
    return None


_SHUTDOWN_FLAGS = {"acpi": libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN, "guest": libvirt.VIR_DOMAIN_SHUTDOWN_GUEST_AGENT,
                   "initctl": libvirt.VIR_DOMAIN_SHUTDOWN_INITCTL, "signal": libvirt.VIR_DOMAIN_SHUTDOWN_SIGNAL,
                   "paravirt": libvirt.VIR_DOMAIN_SHUTDOWN_PARAVIRT}


def _code(qcode: str) -> int:
    try:
        return LINUX_KEYS[qcode]
    except KeyError:
        raise FactoryError(f"the libvirt driver cannot type the key {qcode!r}") from None


@contextmanager
def connection(uri: str) -> Iterator[libvirt.virConnect]:
    conn = connect(uri)
    try:
        yield conn
    finally:
        with suppress(libvirt.libvirtError):
            conn.close()


def clean(uri: str) -> list[str]:
    """Remove what killed factory runs left on uri: domains carrying factory's metadata and the volumes that
    metadata says factory created for them. Returns what was removed; nothing else is ever touched."""
    removed: list[str] = []
    with connection(uri) as conn:
        for dom in conn.listAllDomains():
            meta = _metadata(dom)
            if meta is None or _live_owner(ET.fromstring(meta).get("owner", "")):
                continue
            name = dom.name()
            if dom.isActive():
                dom.destroy()
            dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
            removed.append(f"domain {name}")
            for vol_el in ET.fromstring(meta).iter():
                if vol_el.tag.endswith("volume") and vol_el.get("pool") and vol_el.get("name"):
                    pool_name, vol_name = vol_el.get("pool", ""), vol_el.get("name", "")
                    with suppress(libvirt.libvirtError):
                        conn.storagePoolLookupByName(pool_name).storageVolLookupByName(vol_name).delete(0)
                        removed.append(f"volume {pool_name}/{vol_name}")
    return removed


def _live_owner(owner: str) -> bool:
    """Whether the factory process that made a domain still runs here (then it is a live build, not a leftover)."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
