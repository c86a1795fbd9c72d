"""The libvirt machine against QEMU started directly, on the same Debian guest, alternating order per round.

Both start from the cached test guest (tools/mkguest.py) with the same cidata seed, VM size and TCG, and both
do the same work a build does around the guest: put the disk in place, boot, wait until SSH runs `true`,
write a file, power off, and get the disk back:
  qemu:    cp of the image + qemu-system-x86_64 (-netdev user hostfwd) + poweroff + wait for QEMU to exit;
  libvirt: volume upload by stream + a defined domain (factory's XML) started through qemu:///system + poweroff
           seen as a lifecycle event + volume download by stream + volume removal.
Printed: each round's wall times and the median ratio libvirt/qemu (goal <= 1.1). `factory build` with
`source "libvirt"` is not wired yet, so this measures the machine layer, not whole builds.

    .venv/bin/python bench/bench_libvirt.py [--rounds N]   (as root, with libvirtd running)
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import paramiko

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from factory.machine import libvirt as lv  # noqa: E402
from factory.machine.driver import MachineSpec  # noqa: E402
from factory.machine.libvirt_xml import domain_plan, pool_xml  # noqa: E402
from factory.media.seed import make_cidata  # noqa: E402
from factory.schema.libvirt import LibvirtSource  # noqa: E402
from tests.fixtures.guest import cloud_config, free_port, load_mkguest, new_keypair, qemu_argv  # noqa: E402
from tests.fixtures.libvirtd import ensure_system_daemon  # noqa: E402

POWEROFF = "echo bench > /tmp/bench; sudo sync; sudo systemctl poweroff"


def _ssh_until_true(port: int, key: paramiko.PKey, deadline: float) -> paramiko.SSHClient:
    while time.monotonic() < deadline:
        client = paramiko.SSHClient()
        client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        try:
            client.connect("127.0.0.1", port=port, username="builder", pkey=key, timeout=5, banner_timeout=10,
                           auth_timeout=10, allow_agent=False, look_for_keys=False)
            _, out, _ = client.exec_command("true", timeout=60)
            if out.channel.recv_exit_status() == 0:
                return client
        except (OSError, paramiko.SSHException, EOFError):
            pass
        client.close()
        time.sleep(0.5)
    raise SystemExit("SSH never answered")


def _poweroff(client: paramiko.SSHClient) -> None:
    with client:
        _, out, _ = client.exec_command(POWEROFF, timeout=60)
        out.channel.recv_exit_status()


def run_qemu(image: Path, seed: Path, work: Path, key: paramiko.PKey) -> float:
    start = time.monotonic()
    disk = work / "qemu-disk.qcow2"
    shutil.copyfile(image, disk)
    port = free_port()
    argv = qemu_argv(disk, work, port, work / "qemu-serial.log", extra_drives=[seed])
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _poweroff(_ssh_until_true(port, key, start + 1800))
        proc.wait(timeout=600)
    finally:
        proc.kill()
        proc.wait()
    disk.unlink()
    return time.monotonic() - start


def run_libvirt(image: Path, seed: Path, work: Path, key: paramiko.PKey, uri: str, pool_name: str) -> float:
    start = time.monotonic()
    conn = lv.connect(uri)
    store = lv.pool(conn, pool_name)
    name = f"factory-bench-{uuid.uuid4().hex[:8]}"
    created = ((pool_name, f"{name}-artifact"), (pool_name, f"{name}-cloudinit"))
    lv.upload(store, created[0][1], image, "qcow2")
    lv.upload(store, created[1][1], seed, "raw")
    cfg = LibvirtSource(libvirt_uri=uri, memory=1024, chipset="q35", loader_path="/usr/share/OVMF/OVMF_CODE_4M.fd",
                        loader_type="pflash", nvram_template="/usr/share/OVMF/OVMF_VARS_4M.fd", volume=[
                            {"alias": "artifact", "pool": pool_name, "bus": "virtio", "name": "x"},
                            {"pool": pool_name, "bus": "virtio", "source": {"type": "cloud-init"}}])
    port = free_port()
    plan = domain_plan(cfg, name=name, build_id=name, source="bench", domain_type="qemu",
                       volume_names=(created[0][1], created[1][1]), ssh_host_port=port, serial_log=None,
                       created=created)
    machine = lv.LibvirtMachine(MachineSpec(name=name, workdir=work, serial_log=work / "lv-serial.log"), plan, conn)
    try:
        machine.start()
        _poweroff(_ssh_until_true(port, key, start + 1800))
        machine.wait_poweroff(600)
    finally:
        machine.stop()
    lv.download(store.storageVolLookupByName(created[0][1]), work / "lv-artifact.qcow2").unlink()
    for _, vol in created:
        store.storageVolLookupByName(vol).delete(0)
    conn.close()
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    uri = ensure_system_daemon()
    cache = Path.home() / ".cache" / "factory-tests"
    image = load_mkguest().cached_build(cache).image
    keypair = new_keypair("bench")
    pool_name = f"factory-bench-{uuid.uuid4().hex[:6]}"
    pool_dir = Path("/var/lib/libvirt/images") / pool_name
    with lv.connection(uri) as conn:
        store = conn.storagePoolDefineXML(pool_xml(pool_name, str(pool_dir)), 0)
        store.build(0)
        store.create(0)
    ratios = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-libvirt-") as tmp:
            work = Path(tmp)
            seed = make_cidata(cloud_config("builder", keypair.public_openssh), b"instance-id: bench\n",
                               work / "seed.iso")
            for i in range(args.rounds):
                order = ["qemu", "libvirt"] if i % 2 == 0 else ["libvirt", "qemu"]
                times = {}
                for which in order:
                    if which == "qemu":
                        times[which] = run_qemu(image, seed, work, keypair.pkey())
                    else:
                        times[which] = run_libvirt(image, seed, work, keypair.pkey(), uri, pool_name)
                ratios.append(times["libvirt"] / times["qemu"])
                print(f"round {i + 1}: qemu {times['qemu']:.1f} s, libvirt {times['libvirt']:.1f} s, "
                      f"ratio {ratios[-1]:.2f}", flush=True)
    finally:
        with lv.connection(uri) as conn:
            store = conn.storagePoolLookupByName(pool_name)
            store.destroy()
            store.undefine()
        shutil.rmtree(pool_dir, ignore_errors=True)
    print(f"median ratio libvirt/qemu: {statistics.median(ratios):.2f} (goal <= 1.1)")


if __name__ == "__main__":
    main()
