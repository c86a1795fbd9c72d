"""factory against HashiCorp Packer itself: the same template, the same guest, alternating, in one run.

Debian's `packer` (1.6.6, the qemu builder built in) and `factory build` each run bench/packer/debian.pkr.hcl
unchanged: the README's Debian guest (tools/mkguest.py, cached) booted from its cloud image, the cidata seed
served over HTTP (nocloud-net named in the SMBIOS serial: Packer 1.6.6 has no cd_content), UEFI from OVMF,
a shell provisioner, `sudo poweroff`, a compacted qcow2. Same accelerator on both sides (TCG unless
--accelerator kvm), same VM size. Printed: each round's wall times, and factory's time as a ratio of Packer's
(goal <= 0.75 on a cold build), plus where each side's time went as far as the guest's own clock tells
(its uptime at the first provisioner command is the boot both sides wait for). Then factory resumed: its
provisioner edited and the build run again on the same store, which resumes from the boot-to-SSH checkpoint
(goal <= 0.1 of Packer, which can only rebuild from zero). Figures, with the host load they were taken under:
README.md, "Side by side with Packer".

    .venv/bin/python bench/bench_packer.py [--rounds N] [--guest PATH]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "bench" / "packer" / "debian.pkr.hcl"
FACTORY = [sys.executable, "-m", "factory"]


def guest_image(explicit: Path | None, work: Path) -> Path:
    if explicit:
        return explicit
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "mkguest.py"), "--cache", "--output", str(work)],
                         check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    return Path(out)


def prepare(work: Path) -> list[str]:
    """A key pair and the seed folder for one run; returns the -var arguments both tools take."""
    key = work / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bench", "-f", str(key)], check=True)
    seed = work / "seed"
    seed.mkdir()
    public = Path(f"{key}.pub").read_text().strip()
    (seed / "user-data").write_text("#cloud-config\nusers:\n  - name: bench\n    sudo: ALL=(ALL) NOPASSWD:ALL\n"
                                    f"    shell: /bin/bash\n    ssh_authorized_keys: ['{public}']\n")
    (seed / "meta-data").write_text("instance-id: bench\nlocal-hostname: bench\n")
    return ["-var", f"seed_dir={seed}", "-var", f"key_file={key}", "-var", f"output={work / 'out'}"]


def timed(argv: list[str], work: Path, env: dict[str, str]) -> tuple[float, str]:
    start = time.monotonic()
    proc = subprocess.run(argv, cwd=work, capture_output=True, text=True, env=env, timeout=3600)
    took = time.monotonic() - start
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({proc.returncode}):\n{output[-4000:]}")
    disk = work / "out" / "bench.qcow2"
    subprocess.run(["qemu-img", "check", "-q", str(disk)], check=True)  # the artifact is a sound qcow2
    return took, output


def run_packer(image: Path, work: Path, accel: str) -> tuple[float, str]:
    args = ["-var", f"image={image}", "-var", f"accelerator={accel}", *prepare(work)]
    env = {**os.environ, "PACKER_CACHE_DIR": str(work / "packer_cache"), "CHECKPOINT_DISABLE": "1"}
    return timed(["packer", "build", *args, str(TEMPLATE)], work, env)


def run_factory(image: Path, work: Path, accel: str) -> tuple[float, str]:
    """A cold build (an empty store of its own), then the resumed one after editing the provisioner."""
    args = ["-var", f"image={image}", "-var", f"accelerator={accel}", *prepare(work)]
    env = {**os.environ, "COLUMNS": "300", "FACTORY_CACHE_DIR": str(work / "cache")}
    template = work / "debian.pkr.hcl"
    template.write_text(TEMPLATE.read_text())
    return timed([*FACTORY, "build", *args, str(template)], work, env)


def run_factory_resumed(image: Path, work: Path, accel: str) -> tuple[float, str]:
    args = ["-var", f"image={image}", "-var", f"accelerator={accel}", "-var", f"seed_dir={work / 'seed'}",
            "-var", f"key_file={work / 'id_ed25519'}", "-var", f"output={work / 'out'}", "-force"]
    env = {**os.environ, "COLUMNS": "300", "FACTORY_CACHE_DIR": str(work / "cache")}
    template = work / "debian.pkr.hcl"
    template.write_text(template.read_text().replace("echo provisioned |", "echo provisioned again |"))
    took, output = timed([*FACTORY, "build", *args, str(template)], work, env)
    if "resuming from the checkpoint" not in output:
        raise RuntimeError("factory did not resume:\n" + output[-3000:])
    return took, output


def uptime(output: str) -> float | None:
    found = re.search(r"UPTIME=(\d+\.\d+)", output)
    return float(found.group(1)) if found else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guest", type=Path, default=None, help="guest qcow2 (default: tools/mkguest.py --cache)")
    parser.add_argument("--rounds", type=int, default=2, help="pairs, alternating which tool goes first")
    parser.add_argument("--accelerator", default="tcg", choices=["tcg", "kvm"])
    args = parser.parse_args()
    if shutil.which("packer") is None:
        print("bench_packer: Debian's `packer` is not installed (apt-get install packer)", file=sys.stderr)
        return 2
    version = subprocess.run(["packer", "version"], capture_output=True, text=True).stdout.strip()
    # Stopped (kill, timeout): leave by SystemExit, so the temporary folder (over 1 GB of stores) is removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ratios: list[float] = []
    resumed: list[float] = []
    failed = 0
    with tempfile.TemporaryDirectory(prefix="bench-packer-") as tmp:
        base = Path(tmp)
        image = guest_image(args.guest, base / "guest")
        subprocess.run([*FACTORY, "validate", "-var", f"image={image}", "-var", "seed_dir=.", "-var", "key_file=x",
                        "-var", "output=o", str(TEMPLATE)], check=True, capture_output=True)
        print(f"{version} vs factory on {TEMPLATE.relative_to(ROOT)}, accelerator {args.accelerator}", flush=True)
        for n in range(args.rounds):
            runs = {}
            try:
                for tool in (("packer", "factory") if n % 2 == 0 else ("factory", "packer")):
                    work = base / f"{tool}{n}"
                    work.mkdir()
                    runner = run_packer if tool == "packer" else run_factory
                    try:
                        runs[tool] = runner(image, work, args.accelerator)
                        if tool == "factory":
                            runs["resumed"] = run_factory_resumed(image, work, args.accelerator)
                    finally:
                        shutil.rmtree(work, ignore_errors=True)
                        os.sync()  # the next run must not pay for this one's writeback (each writes ~1 GB)
            except RuntimeError as exc:  # a build failed (a guest that hung, say): the other rounds still count
                failed += 1
                print(f"round {n + 1}: failed: {exc}", flush=True)
                continue
            (pk, pk_out), (fa, fa_out), (re_, _) = runs["packer"], runs["factory"], runs["resumed"]
            ratios.append(fa / pk)
            resumed.append(re_ / pk)
            print(f"round {n + 1}: packer {pk:6.1f} s, factory cold {fa:6.1f} s (ratio {fa / pk:.3f}), factory "
                  f"resumed {re_:6.1f} s (ratio {re_ / pk:.3f}); guest uptime at the first command: packer "
                  f"{_fmt(uptime(pk_out))}, factory {_fmt(uptime(fa_out))}", flush=True)
    if not ratios:
        print("no round completed")
        return 1
    print(f"median ratio factory/packer (cold build): {statistics.median(ratios):.3f} over {len(ratios)} round(s) "
          "(goal <= 0.75)" + (f"; {failed} round(s) failed" if failed else ""))
    print(f"median ratio factory resumed/packer: {statistics.median(resumed):.3f} (goal <= 0.1)")
    return 1 if failed else 0


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} s"


if __name__ == "__main__":
    sys.exit(main())
