"""`factory build` with the libvirt driver against the same build with the qemu driver, alternating in one run.

Both build the cached Debian test guest (tools/mkguest.py) from two equivalent templates written here: 2 vCPUs,
1 GiB, q35 with the same OVMF build, a 4 GiB qcow2 disk from the image, a cidata seed carrying factory's
ephemeral key, one shell provisioner, ACPI power-off, and a compacted qcow2 in output_directory. Both use the
accelerator factory's probe picks (its verdict is cached before timing). What differs is the driver: qemu runs
qemu-system-x86_64 itself with qemu-img for the disk; libvirt uploads the image and the seed to a pool by volume
streams, defines and starts a domain on qemu:///system, and downloads the artifact volume back by stream.

Printed: each round's wall times and the median ratio libvirt/qemu (goal <= 1.1). Measured on the 2-core CI host
under TCG, 2 rounds: qemu 65.2 s / 57.4 s, libvirt 57.3 s / 60.2 s, median ratio 0.96.

    flock /tmp/factory-vm.lock .venv/bin/python bench/bench_libvirt.py [--rounds N]   (root; starts libvirtd)
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from factory.machine import accel  # noqa: E402
from factory.machine.libvirt import connection  # noqa: E402
from factory.machine.libvirt_xml import pool_xml  # noqa: E402
from tests.fixtures.guest import load_mkguest  # noqa: E402
from tests.fixtures.libvirtd import ensure_system_daemon  # noqa: E402

CODE, VARS = "/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"
USER_DATA = "#cloud-config\\nhostname: bench\\n"
PROVISION = '["echo provisioned | sudo tee /etc/bench-marker"]'

QEMU = f"""
variable "image" {{ type = string }}
source "qemu" "bench" {{
  iso_url           = var.image
  iso_checksum      = "none"
  disk_image        = true
  disk_size         = "4G"
  format            = "qcow2"
  efi_firmware_code = "{CODE}"
  efi_firmware_vars = "{VARS}"
  machine_type      = "q35"
  cpus              = 2
  memory            = 1024
  headless          = true
  accelerator       = "auto"
  cd_label          = "cidata"
  cd_content        = {{ "user-data" = "{USER_DATA}", "meta-data" = "instance-id: bench\\n" }}
  ssh_username      = "builder"
  ssh_timeout       = "30m"
  shutdown_timeout  = "10m"
  output_directory  = "out-qemu"
  vm_name           = "bench.qcow2"
}}
build {{
  sources = ["source.qemu.bench"]
  provisioner "shell" {{ inline = {PROVISION} }}
}}
"""

LIBVIRT = f"""
variable "image" {{ type = string }}
variable "pool" {{ type = string }}
source "libvirt" "bench" {{
  libvirt_uri    = "qemu:///system"
  vcpu           = 2
  memory         = 1024
  chipset        = "q35"
  loader_path    = "{CODE}"
  loader_type    = "pflash"
  nvram_template = "{VARS}"
  volume {{
    alias    = "artifact"
    pool     = var.pool
    bus      = "virtio"
    format   = "qcow2"
    capacity = "4G"
    source {{
      type = "external"
      urls = [var.image]
    }}
  }}
  volume {{
    pool = var.pool
    bus  = "virtio"
    source {{
      type      = "cloud-init"
      user_data = "{USER_DATA}"
      meta_data = "instance-id: bench\\n"
    }}
  }}
  communicator {{
    ssh_username = "builder"
    ssh_timeout  = "30m"
  }}
  shutdown_timeout = "10m"
  output_directory = "out-libvirt"
}}
build {{
  sources = ["source.libvirt.bench"]
  provisioner "shell" {{ inline = {PROVISION} }}
}}
"""


def build(work: Path, template: str, args: list[str]) -> float:
    (work / "bench.pkr.hcl").write_text(template)
    for out in work.glob("out-*"):
        shutil.rmtree(out)
    start = time.monotonic()
    # No checkpoints: a stored chain would let the next qemu build resume past the boot (libvirt has none).
    done = subprocess.run([sys.executable, "-m", "factory", "build", "--checkpoint", "none", *args, "bench.pkr.hcl"],
                          cwd=work,
                          capture_output=True, text=True, check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
    took = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(f"factory build failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    uri = ensure_system_daemon()
    image = load_mkguest().cached_build(Path.home() / ".cache" / "factory-tests").image
    verdict = accel.resolve("auto", announce=False)   # cached now, so neither side pays for the probe
    print(f"accelerator: {verdict.accel.value} ({verdict.reason})", flush=True)
    pool_name = f"factory-bench-{uuid.uuid4().hex[:6]}"
    pool_dir = Path("/var/lib/libvirt/images") / pool_name
    with connection(uri) as conn:
        store = conn.storagePoolDefineXML(pool_xml(pool_name, str(pool_dir)), 0)
        store.build(0)
        store.create(0)
    ratios = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-libvirt-") as tmp:
            work = Path(tmp)
            for i in range(args.rounds):
                order = ["qemu", "libvirt"] if i % 2 == 0 else ["libvirt", "qemu"]
                times = {}
                for which in order:
                    if which == "qemu":
                        times[which] = build(work, QEMU, ["-var", f"image={image}"])
                    else:
                        times[which] = build(work, LIBVIRT, ["-var", f"image={image}", "-var", f"pool={pool_name}"])
                        _empty(uri, pool_name)      # the artifact volume each libvirt build keeps
                ratios.append(times["libvirt"] / times["qemu"])
                print(f"round {i + 1} ({' then '.join(order)}): qemu {times['qemu']:.1f} s, libvirt "
                      f"{times['libvirt']:.1f} s, ratio {ratios[-1]:.3f}", flush=True)
    finally:
        _empty(uri, pool_name)
        with connection(uri) as conn:
            store = conn.storagePoolLookupByName(pool_name)
            store.destroy()
            store.undefine()
        shutil.rmtree(pool_dir, ignore_errors=True)
    print(f"median ratio libvirt/qemu: {statistics.median(ratios):.3f} (goal <= 1.1)")


def _empty(uri: str, pool_name: str) -> None:
    with connection(uri) as conn:
        store = conn.storagePoolLookupByName(pool_name)
        store.refresh(0)
        for vol in store.listAllVolumes():
            vol.delete(0)


if __name__ == "__main__":
    main()
