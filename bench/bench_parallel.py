"""P7: four builds of the README's guest at once (`-parallel-builds=4`) against the same four one after another
(`-parallel-builds=1`), and proof that the parallel ones did not collide.

The guest is the README's (tools/mkguest.py's Debian 12 cloud image, cached) built as examples/debian-cloud
builds it: qcow2, EFI, q35, 2 CPUs, 1 GiB, cloud-init seed, the same shell/file provisioners, manifest and
checksum post-processors. Four sources (g1..g4) of one build block differ only in their names, output
directories and hostnames. Each mode is one `factory build` of that template, with --events to a file, cold
(`--resume=false --checkpoint=none`).

Measured (one round, 2 cores under TCG, the host loaded by other jobs, load average ~15): parallel 661 s,
sequential 1135 s (builds of 236, 233, 361, 301 s), parallel/sequential 0.583 (1.72x); zero collisions: 4/4
succeeded, overlapping, SSH ports 2222-2225, four disks pass `qemu-img check`. In parallel each build spent
~10 of its ~11 minutes waiting for SSH: four TCG guests booting on two cores.

Printed: each mode's wall time and the ratio parallel/sequential, and the collision checks of the parallel run:
every build succeeded, their [start, end] intervals overlap (they ran at the same time), their SSH forward and
HTTP ports are distinct, their output directories are distinct and each disk passes `qemu-img check`.
Run it alone on the machine (`flock /tmp/factory-vm.lock python bench/bench_parallel.py`).

    .venv/bin/python bench/bench_parallel.py [--guest PATH] [--rounds N] [--keep]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NAMES = ["g1", "g2", "g3", "g4"]
SOURCE = """
source "qemu" "{name}" {{
  iso_url          = var.guest_image
  iso_checksum     = "none"
  disk_image       = true
  disk_size        = "4G"
  format           = "qcow2"
  efi_boot         = true
  machine_type     = "q35"
  cpus             = 2
  memory           = 1024
  headless         = true
  accelerator      = "auto"
  cd_label         = "cidata"
  cd_content = {{
    "user-data" = templatefile("{example}/user-data.pkrtpl.hcl", {{ hostname = "bench-{name}" }})
    "meta-data" = "instance-id: bench-{name}\\nlocal-hostname: bench-{name}\\n"
  }}
  ssh_username     = "builder"
  ssh_timeout      = "30m"
  shutdown_command = "sudo systemctl poweroff"
  shutdown_timeout = "10m"
  output_directory = "output-{name}"
  vm_name          = "{name}.qcow2"
}}
"""
BUILD = """
variable "guest_image" {{ type = string }}
{sources}
build {{
  name    = "p7"
  sources = [{refs}]
  provisioner "shell" {{
    inline = ["echo \\"hello from $(hostname), kernel $(uname -r)\\"", "echo 'Built by factory' | sudo tee /etc/motd"]
  }}
  provisioner "file" {{
    content     = "factory-demo build ${{source.name}}\\n"
    destination = "/tmp/factory-release"
  }}
  provisioner "shell" {{
    environment_vars = ["RELEASE_FILE=/etc/factory-release"]
    inline           = ["sudo install -m 0644 /tmp/factory-release \\"$RELEASE_FILE\\"", "cat \\"$RELEASE_FILE\\""]
  }}
  post-processor "manifest" {{
    output     = "output-${{source.name}}/manifest.json"
    strip_path = true
  }}
}}
"""
PORT_RE = re.compile(r"(?:forwarded from|HTTP server on port) (?:[\d.]+:)?(\d+)")


def guest_image(explicit: Path | None, work: Path) -> Path:
    if explicit:
        return explicit.resolve()
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "mkguest.py"), "--cache", "--output", str(work)],
                         check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    return Path(out).resolve()


def write_template(work: Path) -> Path:
    example = ROOT / "examples" / "debian-cloud"
    sources = "".join(SOURCE.format(name=n, example=example) for n in NAMES)
    tpl = work / "p7.pkr.hcl"
    tpl.write_text(BUILD.format(sources=sources, refs=", ".join(f'"source.qemu.{n}"' for n in NAMES)))
    return tpl


def run_mode(work: Path, tpl: Path, image: Path, parallel: int, tag: str) -> tuple[float, list[dict[str, Any]]]:
    for n in NAMES:
        shutil.rmtree(work / f"output-{n}", ignore_errors=True)
    events = work / f"events-{tag}.jsonl"
    t0 = time.monotonic()
    # Cold builds in both modes: no checkpoint is kept or reused (the second mode would resume from the first's).
    proc = subprocess.run([sys.executable, "-m", "factory", "build", "-force", f"-parallel-builds={parallel}",
                           "--resume=false", "--checkpoint=none", "--events", str(events), "-var",
                           f"guest_image={image}", str(tpl)],
                          cwd=work, capture_output=True, text=True, env=_env())
    took = time.monotonic() - t0
    (work / f"stderr-{tag}.log").write_text(proc.stderr)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.splitlines()[-40:])
        raise SystemExit(f"{tag}: factory build failed ({proc.returncode}); log in {work}:\n{tail}")
    return took, [json.loads(line) for line in events.read_text().splitlines()]


def _env() -> dict[str, str]:
    import os

    return {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "300"}


def collisions(work: Path, evs: list[dict[str, Any]]) -> list[str]:
    """What would show two parallel builds stepping on each other; empty when there is none."""
    problems = []
    ends = {e["build"]: e["type"] for e in evs if e["type"] in ("build-finished", "build-failed")}
    names = {f"p7.qemu.{n}" for n in NAMES}
    if ends != dict.fromkeys(names, "build-finished"):
        problems.append(f"not every build succeeded: {ends}")
    starts = {e["build"]: e["time"] for e in evs if e["type"] == "build-started"}
    finish = {e["build"]: e["time"] for e in evs if e["type"] == "build-finished"}
    if starts and finish and max(starts.values()) >= min(finish.values()):
        problems.append("the builds did not all run at the same time")
    ports: dict[str, set[str]] = {}
    for e in evs:
        for port in PORT_RE.findall(e.get("message", "")):
            ports.setdefault(port, set()).add(e["build"])
    problems += [f"port {p} used by {sorted(b)}" for p, b in ports.items() if len(b) > 1]
    if len({b for bs in ports.values() for b in bs}) != len(NAMES):
        problems.append(f"ports not seen for every build: {ports}")
    for n in NAMES:
        disk = work / f"output-{n}" / f"{n}.qcow2"
        check = subprocess.run(["qemu-img", "check", str(disk)], capture_output=True, text=True)
        if check.returncode != 0:
            problems.append(f"{disk}: qemu-img check failed: {check.stdout}{check.stderr}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guest", type=Path, help="the guest image (default: tools/mkguest.py --cache)")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds of both modes")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (outputs, events, logs)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-p7-"))
    try:
        image = guest_image(args.guest, work / "guest")
        tpl = write_template(work)
        ratios = []
        for r in range(args.rounds):
            order = [("parallel", 4), ("sequential", 1)]
            if r % 2:
                order.reverse()  # alternate which mode runs first: the host's load drifts
            took = {}
            for tag, n in order:
                took[tag], evs = run_mode(work, tpl, image, n, f"{tag}-{r + 1}")
                print(f"round {r + 1}: {tag:10s} (-parallel-builds={n}) {took[tag]:7.1f} s", flush=True)
                if tag == "parallel":
                    problems = collisions(work, evs)
                    ports = sorted({p for e in evs for p in PORT_RE.findall(e.get("message", ""))})
                    print(f"round {r + 1}: collisions: {len(problems)} (4/4 succeeded, overlapping, distinct "
                          f"ports {', '.join(ports)}, 4 disks pass qemu-img check)" if not problems else
                          f"round {r + 1}: COLLISIONS: " + "; ".join(problems), flush=True)
                    if problems:
                        return 1
            ratios.append(took["parallel"] / took["sequential"])
            print(f"round {r + 1}: parallel/sequential = {ratios[-1]:.3f} "
                  f"({took['sequential'] / took['parallel']:.2f}x faster)", flush=True)
        print(f"median parallel/sequential: {statistics.median(ratios):.3f} over {len(ratios)} round(s)")
        return 0
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
