"""The libvirt machine on a real qemu:///system: the Debian guest boots under TCG from volumes uploaded by stream,
cloud-init applies the seed, commands run over the 127.0.0.1 forward, the guest powers off (seen through a
lifecycle event), the artifact volume comes back by stream and boots again alone with the file it was given."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import libvirt
import paramiko
import pytest

from factory.machine import libvirt as lv
from factory.machine.driver import MachineSpec, PortRange, PowerState
from factory.machine.keys import Press
from factory.machine.libvirt_xml import domain_plan, domain_xml, volume_xml
from factory.media.seed import make_cidata
from factory.schema.libvirt import LibvirtSource
from tests.fixtures.guest import GuestImage, boot_guest_ssh, cloud_config, free_port, new_keypair
from tests.fixtures.libvirtd import LibvirtPool

EFI = dict(chipset="q35", loader_path="/usr/share/OVMF/OVMF_CODE_4M.fd", loader_type="pflash",
           nvram_template="/usr/share/OVMF/OVMF_VARS_4M.fd")


def _ssh(port: int, username: str, pkey: paramiko.PKey, deadline: float, machine: lv.LibvirtMachine
         ) -> paramiko.SSHClient:
    last = ""
    while time.monotonic() < deadline:
        machine.alive()
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        try:
            client.connect("127.0.0.1", port=port, username=username, pkey=pkey, timeout=5, banner_timeout=10,
                           auth_timeout=10, allow_agent=False, look_for_keys=False)
            return client
        except (OSError, paramiko.SSHException, EOFError) as exc:
            last = f"{type(exc).__name__}: {exc}"
            client.close()
            time.sleep(3)
    pytest.fail(f"SSH never answered through the libvirt domain's forward ({last})")


def _run(client: paramiko.SSHClient, command: str) -> str:
    _, out, _ = client.exec_command(command, timeout=120)
    text = out.read().decode()
    assert out.channel.recv_exit_status() == 0, text
    return text


@pytest.mark.vm
def test_debian_guest_boots_provisions_powers_off_and_its_volume_boots_again(
        debian_guest: GuestImage, libvirt_pool: LibvirtPool, tmp_path: Path) -> None:
    conn = lv.connect(libvirt_pool.uri)
    store = lv.pool(conn, libvirt_pool.name)
    name = f"factory-{libvirt_pool.name[len('factory-test-'):]}"
    key = new_keypair()
    seed = make_cidata(cloud_config("builder", key.public_openssh), b"instance-id: lv-1\n", tmp_path / "seed.iso")
    lv.upload(store, f"{name}-artifact", debian_guest.path, "qcow2")
    lv.upload(store, f"{name}-cloudinit", seed, "raw")
    cfg = LibvirtSource(libvirt_uri=libvirt_pool.uri, memory=1024, **EFI, volume=[
        {"alias": "artifact", "pool": libvirt_pool.name, "bus": "virtio", "format": "qcow2", "name": "x"},
        {"pool": libvirt_pool.name, "bus": "virtio", "source": {"type": "cloud-init"}}])
    port = free_port()
    plan = domain_plan(cfg, name=name, build_id="vm-test", source="libvirt.t", domain_type="qemu",
                       volume_names=(f"{name}-artifact", f"{name}-cloudinit"), ssh_host_port=port, serial_log=None,
                       created=((libvirt_pool.name, f"{name}-artifact"), (libvirt_pool.name, f"{name}-cloudinit")))
    spec = MachineSpec(name=name, workdir=tmp_path, serial_log=tmp_path / "serial.log")
    machine = lv.LibvirtMachine(spec, plan, conn)
    events: list[str] = []
    machine.events = lambda e: events.append(e.kind.value)
    try:
        machine.start()
        with pytest.raises(Exception, match="already exists"):
            lv.LibvirtMachine(spec, plan, conn).start()          # a name collision is refused, not replaced
        endpoint = machine.ssh_address(22, PortRange(2222, 4444), timeout=1)
        assert (endpoint.host, endpoint.port) == ("127.0.0.1", port)
        client = _ssh(port, "builder", key.pkey(), time.monotonic() + 900, machine)
        with client:
            _run(client, "echo provisioned-through-libvirt | sudo tee /etc/factory-libvirt; sync")
        shot = machine.screendump(tmp_path / "screen.png")
        assert shot is not None and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        machine.send_keys([Press("a")], 0.05)
        assert "Linux version" in spec.serial_log.read_text(errors="replace")   # console followed into the log
        machine.powerdown()
        assert machine.wait_poweroff(600), "the guest did not power off on the ACPI button"
        assert machine.state() is PowerState.OFF and "powered-off" in events
    finally:
        machine.stop()
    artifact = lv.download(store.storageVolLookupByName(f"{name}-artifact"), tmp_path / "artifact.qcow2")
    for vol in store.listAllVolumes():
        vol.delete(0)
    assert name not in [d.name() for d in conn.listAllDomains()]
    assert libvirt_pool.volumes() == []
    with boot_guest_ssh(artifact, tmp_path, username="builder", key=key) as again:
        assert again.run("cat /etc/factory-libvirt") == (0, "provisioned-through-libvirt\n")


KILLED_RUN = """
import sys, time
from factory.machine import libvirt as lv
from factory.machine.libvirt_xml import volume_xml, domain_plan, domain_xml
from factory.schema.libvirt import LibvirtSource
uri, pool_name, name = sys.argv[1:4]
conn = lv.connect(uri)
lv.pool(conn, pool_name).createXML(volume_xml(name + "-artifact", capacity=16 << 20), 0)
cfg = LibvirtSource(libvirt_uri=uri, volume=[{"pool": pool_name, "bus": "virtio", "name": "x"}])
plan = domain_plan(cfg, name=name, build_id="killed", source="s", domain_type="qemu",
                   volume_names=(name + "-artifact",), ssh_host_port=None, serial_log=None,
                   created=((pool_name, name + "-artifact"),))
conn.defineXML(domain_xml(plan)).create()
print("running", flush=True)
time.sleep(600)
"""


def test_clean_removes_what_a_killed_run_left_and_nothing_else(libvirt_pool: LibvirtPool, tmp_path: Path) -> None:
    name = f"factory-{libvirt_pool.name[len('factory-test-'):]}-killed"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, libvirt_pool.uri, libvirt_pool.name, name],
                            stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert proc.stdout is not None and proc.stdout.readline() == b"running\n"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    conn = lv.connect(libvirt_pool.uri)
    # Someone else's domain and volume that happen to share the prefix: clean must leave them alone.
    other = f"{name}-theirs"
    lv.pool(conn, libvirt_pool.name).createXML(volume_xml(f"{other}-disk", capacity=1 << 20), 0)
    theirs = conn.defineXML(f"<domain type='qemu'><name>{other}</name><memory unit='MiB'>64</memory><os>"
                            "<type arch='x86_64'>hvm</type></os></domain>")
    # A live build's domain (its owner, this process, still runs): clean must leave it alone too.
    live_cfg = LibvirtSource(libvirt_uri=libvirt_pool.uri, volume=[{"pool": libvirt_pool.name, "name": "x"}])
    live = conn.defineXML(domain_xml(replace(domain_plan(
        live_cfg, name=f"{name}-live", build_id="live", source="s", domain_type="qemu", volume_names=("x",),
        ssh_host_port=None, serial_log=None), owner=f"{socket.gethostname()}:{os.getpid()}")))
    try:
        assert name in [d.name() for d in conn.listAllDomains()]
        done = subprocess.run([sys.executable, "-m", "factory", "clean", "--libvirt", libvirt_pool.uri],
                              capture_output=True, text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr
        assert f"removed domain {name}\n" in done.stdout
        assert f"removed volume {libvirt_pool.name}/{name}-artifact\n" in done.stdout
        assert name not in [d.name() for d in conn.listAllDomains()]
        assert libvirt_pool.volumes() == [f"{other}-disk"]
        assert f"{name}-live" in [d.name() for d in conn.listAllDomains()]
    finally:
        theirs.undefine()
        live.undefine()
    with pytest.raises(libvirt.libvirtError):
        conn.lookupByName(name)
