"""The generated XML on real libvirt daemons (qemu:///system as root, qemu:///session of an unprivileged user):
volumes are created, the domain is defined, carries its metadata, starts, and its SSH forward listens on
127.0.0.1 only."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import libvirt
import pytest

from factory.errors import FactoryError
from factory.machine import libvirt as lv
from factory.machine.driver import MachineSpec, PortRange
from factory.machine.libvirt_xml import METADATA_NS, domain_plan, domain_xml, volume_xml
from factory.schema.libvirt import LibvirtSource
from tests.fixtures.guest import free_port
from tests.fixtures.libvirtd import LibvirtPool


@pytest.mark.parametrize("daemon", ["system", "session"])
def test_generated_domain_defines_starts_and_forwards_ssh_to_loopback(daemon: str,
                                                                      request: pytest.FixtureRequest) -> None:
    fixture = "libvirt_pool" if daemon == "system" else "libvirt_session_pool"
    libvirt_pool: LibvirtPool = request.getfixturevalue(fixture)
    conn = libvirt.open(libvirt_pool.uri)
    pool = conn.storagePoolLookupByName(libvirt_pool.name)
    name = f"{libvirt_pool.name}-dom"
    pool.createXML(volume_xml(f"{name}-0", capacity=64 << 20), 0)
    cfg = LibvirtSource(libvirt_uri=libvirt_pool.uri, chipset="q35",
                        volume=[{"alias": "artifact", "pool": libvirt_pool.name, "bus": "virtio", "name": "x"}],
                        loader_path="/usr/share/OVMF/OVMF_CODE_4M.fd", loader_type="pflash",
                        nvram_template="/usr/share/OVMF/OVMF_VARS_4M.fd")
    port = free_port()
    plan = domain_plan(cfg, name=name, build_id="b-123", source="libvirt.t", domain_type="qemu",
                       volume_names=(f"{name}-0",), ssh_host_port=port, serial_log=None)
    dom = conn.defineXML(domain_xml(plan))
    try:
        assert 'id="b-123"' in dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NS)
        dom.create()
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the SSH forward never listened on 127.0.0.1"
                time.sleep(0.5)
        listening = Path("/proc/net/tcp").read_text()
        assert f"0100007F:{port:04X}" in listening and f"00000000:{port:04X}" not in listening
    finally:
        if dom.isActive():
            dom.destroy()
        dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
    assert name not in [d.name() for d in conn.listAllDomains()]


def test_unreachable_uri_and_missing_pool_are_one_clear_message(libvirt_system: str) -> None:
    with pytest.raises(FactoryError) as info:
        lv.connect(f"qemu+ssh://nobody@127.0.0.1:{free_port()}/system?no_verify=1")
    assert "cannot connect to libvirt at qemu+ssh://" in info.value.message
    assert info.value.hint and "ssh" in info.value.hint
    with pytest.raises(FactoryError) as info:
        lv.connect("qemu+unix:///system?socket=/nonexistent/libvirt-sock")
    assert info.value.hint and "libvirtd -d" in info.value.hint
    with pytest.raises(FactoryError) as info:      # a session URI whose user daemon is not running
        lv.connect("qemu+unix:///session?socket=/nonexistent/libvirt-sock")
    assert info.value.hint and "needs a libvirt daemon of your user" in info.value.hint
    with lv.connection(libvirt_system) as conn, pytest.raises(FactoryError) as info:
        lv.pool(conn, "factory-no-such-pool")
    assert "'factory-no-such-pool' does not exist" in info.value.message and "pool-define-as" in (info.value.hint or "")


def test_ppm_screenshots_become_png() -> None:
    png = lv.ppm_to_png(b"P6\n2 1\n255\n" + bytes([255, 0, 0, 0, 0, 255]))
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and b"IHDR" in png and png.endswith(b"IEND\xaeB`\x82")


def test_managed_and_bridge_addresses_are_looked_up_without_sending_traffic(tmp_path: Path) -> None:
    """libvirt's test:///default driver answers interfaceAddresses for every source with made-up addresses:
    the lookup picks the communicator interface's by MAC and never connects to it."""
    cfg = LibvirtSource(libvirt_uri="test:///default", network_address_source="lease",
                        volume=[{"pool": "default-pool", "name": "x", "bus": "virtio"}],
                        network_interface=[{"type": "bridge", "bridge": "br0"},
                                           {"type": "managed", "alias": "communicator"}])
    plan = domain_plan(cfg, name="factory-lookup", build_id="b", source="s", domain_type="test",
                       volume_names=("x",), ssh_host_port=None, serial_log=None)
    conn = lv.connect("test:///default")
    machine = lv.LibvirtMachine(MachineSpec(name="factory-lookup", workdir=tmp_path, serial_log=tmp_path / "s.log"),
                                plan, conn)
    machine.start()
    try:
        assert machine.dom is not None
        macs = lv.interface_macs(machine.dom.XMLDesc(0))
        expected = lv.pick_address(machine.dom.interfaceAddresses(libvirt.VIR_DOMAIN_INTERFACE_ADDRESSES_SRC_LEASE),
                                   macs[1])
        endpoint = machine.ssh_address(22, PortRange(2222, 4444), timeout=5)
        assert expected and (endpoint.host, endpoint.port, endpoint.forwarded) == (expected, 22, False)
        assert machine.ssh_address(22, PortRange(2222, 4444), timeout=5) is endpoint
    finally:
        machine.stop()


def test_pick_address_takes_the_macs_ipv4_and_skips_loopback_and_link_local() -> None:
    found = {"lo": {"hwaddr": "00:00:00:00:00:00", "addrs": [{"type": 0, "addr": "127.0.0.1", "prefix": 8}]},
             "eth0": {"hwaddr": "52:54:00:AA:BB:CC", "addrs": [
                 {"type": 1, "addr": "fe80::1", "prefix": 64}, {"type": 0, "addr": "169.254.3.4", "prefix": 16},
                 {"type": 0, "addr": "10.1.2.3", "prefix": 24}]}}
    assert lv.pick_address(found, "52:54:00:aa:bb:cc") == "10.1.2.3"
    assert lv.pick_address(found, "52:54:00:00:00:01") is None
    assert lv.pick_address({"eth0": {"hwaddr": "52:54:00:aa:bb:cc", "addrs": None}}, "52:54:00:aa:bb:cc") is None


def test_no_address_within_the_timeout_names_the_source_and_what_it_needs(tmp_path: Path) -> None:
    cfg = LibvirtSource(libvirt_uri="test:///default", network_address_source="agent",
                        volume=[{"pool": "default-pool", "name": "x", "bus": "virtio"}],
                        network_interface=[{"type": "managed", "mac": "52:54:00:12:34:56"}])
    plan = domain_plan(cfg, name="factory-noaddr", build_id="b", source="s", domain_type="test",
                       volume_names=("x",), ssh_host_port=None, serial_log=None)
    machine = lv.LibvirtMachine(MachineSpec(name="factory-noaddr", workdir=tmp_path, serial_log=tmp_path / "s.log"),
                                plan, lv.connect("test:///default"))
    machine.start()
    try:
        assert machine.dom is not None
        machine.dom.interfaceAddresses = lambda *_: {}   # the agent has not answered yet
        with pytest.raises(FactoryError) as info:
            machine.ssh_address(22, PortRange(2222, 4444), timeout=0)
        assert "no address for the interface 52:54:00:12:34:56 from the agent source" in info.value.message
        assert "qemu-guest-agent" in (info.value.hint or "")
    finally:
        machine.stop()
