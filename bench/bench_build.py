"""factory build's overhead against a hand-written script doing the same qemu, ssh and qemu-img steps.

Both run in this one process, on the same Debian guest (tools/mkguest.py, cached), same VM size, same
accelerator (factory's probe verdict, cached before timing), same provisioning commands:
  floor:   qemu-img convert (copy) + a cidata seed + qemu-system-x86_64 + `ssh` polled every 0.1 s with the
           first command until it works + the other commands + `sudo poweroff` + wait for qemu + qemu-img convert
           (compact);
  factory: `factory build` of the equivalent template (disk_image, efi_boot, cd_content, shell provisioner,
           shutdown_command).
Printed: the wall-time ratio factory/floor (target <= 1.05), and, measured inside the guest, the time from
sshd's "Server listening" to factory's first provisioner command (target <= 1 s), next to the same figure for
the script's `ssh` loop: OpenSSH running the command directly, the floor any client has against this guest
(bench/bench_ssh.py measures the communicator alone against a host sshd).

    .venv/bin/python bench/bench_build.py [--guest PATH]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from factory.comm.keys import KeyPair  # noqa: E402
from factory.machine import accel  # noqa: E402
from factory.machine.firmware import find_uefi  # noqa: E402
from factory.machine.ports import reserve  # noqa: E402
from factory.media.seed import make_cidata  # noqa: E402

COMMANDS = ["echo FIRST=$(date +%s.%N) UPTIME=$(cut -d' ' -f1 /proc/uptime)", "uname -r",
            "echo provisioned | sudo tee /etc/bench-marker"]
JOURNAL = "sudo journalctl -b -u ssh.service -o short-unix --no-pager | grep -m1 'Server listening'"
TEMPLATE = """
variable "image" {{ type = string }}
source "qemu" "bench" {{
  iso_url = var.image
  iso_checksum = "none"
  disk_image = true
  efi_boot = true
  machine_type = "q35"
  cpus = 2
  memory = 1024
  headless = true
  accelerator = "auto"
  cd_label = "cidata"
  cd_content = {{ "meta-data" = "instance-id: bench\\nlocal-hostname: bench\\n" }}
  ssh_username = "bench"
  ssh_timeout = "20m"
  shutdown_command = "sudo poweroff"
  output_directory = "out-factory"
  vm_name = "bench.qcow2"
}}
build {{
  sources = ["source.qemu.bench"]
  provisioner "shell" {{ inline = {commands} }}
  provisioner "shell" {{ inline = [{journal}] }}
}}
"""


def guest_image(explicit: Path | None, work: Path) -> Path:
    if explicit:
        return explicit
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "mkguest.py"), "--cache", "--output", str(work)],
                         check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    return Path(out)


def hand_written(image: Path, work: Path, accel_name: str) -> tuple[float, str]:
    """What a person would script: the same steps with plain tools."""
    start = time.monotonic()
    disk = work / "disk.qcow2"
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(image), str(disk)], check=True)
    key = KeyPair.generate()
    keyfile = key.write_private(work / "id_ed25519")
    user_data = ("#cloud-config\nusers:\n  - name: bench\n    sudo: ALL=(ALL) NOPASSWD:ALL\n    shell: /bin/bash\n"
                 f"    ssh_authorized_keys: ['{key.public_openssh}']\n").encode()
    seed = make_cidata(user_data, b"instance-id: bench\nlocal-hostname: bench\n", work / "seed.iso")
    fw = find_uefi()
    vars_ = fw.writable_vars(work)
    lease = reserve(47500, 47600, purpose="bench")
    port = lease.port
    cpu = "host" if accel_name == "kvm" else "max"
    qemu = subprocess.Popen([
        "qemu-system-x86_64", "-machine", f"q35,accel={accel_name}", "-cpu", cpu, "-smp", "2", "-m", "1024M",
        "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={fw.code}",
        "-drive", f"if=pflash,format=raw,unit=1,file={vars_}",
        "-drive", f"file={disk},if=virtio,format=qcow2", "-drive", f"file={seed},if=virtio,format=raw,readonly=on",
        "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:22", "-device", "virtio-net,netdev=n0",
        "-serial", f"file:{work / 'serial.log'}", "-display", "none", "-monitor", "none"])
    lease.release()
    ssh = ["ssh", "-i", str(keyfile), "-p", str(port), "-o", "StrictHostKeyChecking=no", "-o",
           "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR",
           "bench@127.0.0.1"]
    # Polled every 0.1 s with the first command itself: the best a client can do against this guest's sshd
    # (no script to upload, nothing between login and the command), so its latency is the floor for factory's.
    while (first := subprocess.run([*ssh, COMMANDS[0]], capture_output=True, text=True)).returncode != 0:
        if qemu.poll() is not None:
            raise RuntimeError("qemu died")
        time.sleep(0.1)
    outputs = [first.stdout]
    for cmd in [*COMMANDS[1:], JOURNAL]:
        done = subprocess.run([*ssh, cmd], check=True, capture_output=True, text=True)
        outputs.append(done.stdout)
    subprocess.run([*ssh, "sudo poweroff"], capture_output=True)
    qemu.wait(600)
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(disk), str(work / "final.qcow2")], check=True)
    return time.monotonic() - start, "".join(f"[shell] {line}\n" for o in outputs for line in o.splitlines())


def with_factory(image: Path, work: Path) -> tuple[float, str]:
    import json

    (work / "bench.pkr.hcl").write_text(TEMPLATE.format(commands=json.dumps(COMMANDS), journal=json.dumps(JOURNAL)))
    start = time.monotonic()
    proc = subprocess.run([str(ROOT / ".venv" / "bin" / "factory"), "build", "-var", f"image={image}",
                           "bench.pkr.hcl"], cwd=work, capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "300"})
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError("factory build failed:\n" + proc.stderr[-4000:])
    return elapsed, proc.stderr


def guest_uptime(output: str) -> float | None:
    """The guest's uptime at the first command: how long it took to boot, whatever the host did."""
    found = re.search(r"UPTIME=(\d+\.\d+)", output)
    return float(found.group(1)) if found else None


def ssh_latency(output: str) -> float | None:
    """Seconds from sshd 'Server listening' (guest clock) to factory's first command (guest clock)."""
    first = re.search(r"FIRST=(\d+\.\d+)", output)
    listening = re.search(r"\[shell\] (\d+\.\d+) \S+ sshd\[\d+\]: Server listening", output)
    if not first or not listening:
        return None
    return float(first.group(1)) - float(listening.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guest", type=Path, default=None, help="guest qcow2 (default: tools/mkguest.py --cache)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="pairs to run, alternating which side goes first (TCG boot times on a shared host "
                             "vary by 2x between minutes: more rounds, median ratio)")
    args = parser.parse_args()
    ratios: list[float] = []
    latencies: list[tuple[float | None, float | None]] = []
    with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp:
        work = Path(tmp)
        image = guest_image(args.guest, work / "guest")
        verdict = accel.resolve("auto")  # warms the probe cache so neither side pays for it
        print(f"accelerator: {verdict.accel.value}", flush=True)
        for n in range(args.rounds):
            hand, fac = work / f"hand{n}", work / f"fac{n}"
            hand.mkdir()
            fac.mkdir()
            if n % 2 == 0:
                floor, floor_output = hand_written(image, hand, verdict.accel.value)
                took, output = with_factory(image, fac)
            else:
                took, output = with_factory(image, fac)
                floor, floor_output = hand_written(image, hand, verdict.accel.value)
            shutil.rmtree(hand, ignore_errors=True)
            shutil.rmtree(fac, ignore_errors=True)
            ratios.append(took / floor)
            latencies.append((ssh_latency(output), ssh_latency(floor_output)))
            print(f"round {n + 1}: script {floor:6.1f} s, factory {took:6.1f} s, ratio {took / floor:.3f}; "
                  f"sshd listening -> first command: factory {_fmt(latencies[-1][0])}, "
                  f"script {_fmt(latencies[-1][1])}; guest uptime at first command: factory "
                  f"{_fmt(guest_uptime(output))}, script {_fmt(guest_uptime(floor_output))}", flush=True)
    print(f"median ratio factory/floor: {statistics.median(ratios):.3f} over {len(ratios)} round(s) "
          "(target <= 1.05)")
    fac_lat = [a for a, _ in latencies if a is not None]
    floor_lat = [b for _, b in latencies if b is not None]
    if fac_lat and floor_lat:
        fac, floor = statistics.median(fac_lat), statistics.median(floor_lat)
        print(f"sshd listening -> first command (guest clock, median): factory {fac:.2f} s (target <= 1 s), "
              f"OpenSSH polled every 0.1 s running the command directly {floor:.2f} s: ratio {fac / floor:.2f}")
    return 0


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} s"


if __name__ == "__main__":
    sys.exit(main())
