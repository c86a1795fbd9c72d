"""OVA export against qemu-img's own streamOptimized conversion of the same disk, side by side in one run.

Disk: an 8 GiB qcow2 holding about 1 GiB of random (incompressible) data in 64 scattered 16 MiB extents.
  floor:   qemu-img convert -O vmdk -o subformat=streamOptimized (VMDK only: no OVF, manifest or tar)
  factory: export(disk, "ova") — OVF + manifest + streamOptimized VMDK in a USTAR tar, hashed while written
factory deflates with ISA-L at its default level; the 'zlib level 7' row uses zlib like qemu-img (the same
algorithm; qemu-img uses level 6), to separate the deflate library from the one-pass design. Also shown: the
'naive OVA' a script would do (qemu-img, then sha256 and tar the VMDK). Wall and CPU seconds are both printed:
on a shared host CPU seconds are the steadier figure. Target: factory OVA / qemu-img VMDK <= 1.1.

    .venv/bin/python bench/bench_export.py [--data-mib 1024] [--size-gib 8] [--rounds 1]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from factory.artifact import ExportOptions, export

TARGET = 1.1


def make_disk(workdir: Path, size_gib: int, data_mib: int) -> Path:
    raw = workdir / "src.raw"
    chunk = 16
    n = max(1, data_mib // chunk)
    stride = (size_gib << 30) // n
    with open(raw, "wb") as fh:
        fh.truncate(size_gib << 30)
        for i in range(n):
            fh.seek(i * stride)
            fh.write(os.urandom(chunk << 20))
    disk = workdir / "src.qcow2"
    subprocess.run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(disk)], check=True)
    raw.unlink()
    return disk


def _cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and its children): CPU is the fair figure on a busy host."""
    start, cpu = time.perf_counter(), _cpu()
    fn()
    return time.perf_counter() - start, _cpu() - cpu


def naive_ova(disk: Path, out: Path) -> None:
    vmdk = out.with_suffix(".vmdk")
    subprocess.run(["qemu-img", "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", str(disk), str(vmdk)],
                   check=True)
    with open(vmdk, "rb") as fh:
        hashlib.file_digest(fh, "sha256")
    with tarfile.open(out, "w", format=tarfile.USTAR_FORMAT) as tar:
        tar.add(vmdk, arcname=vmdk.name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-gib", type=int, default=8)
    ap.add_argument("--data-mib", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-export-", dir=os.environ.get("TMPDIR", "/var/tmp")) as tmp:
        work = Path(tmp)
        disk = make_disk(work, args.size_gib, args.data_mib)
        print(f"load average: {os.getloadavg()[0]:.1f}")
        print(f"disk: {args.size_gib} GiB qcow2, {args.data_mib} MiB random data, {os.cpu_count()} CPUs")
        rows: dict[str, list[tuple[float, float]]] = {"qemu-img streamOptimized VMDK (floor)": [],
                                                      "factory OVA": [], "factory OVA, zlib level 7": [],
                                                      "naive OVA (qemu-img + sha256 + tar)": []}
        sizes: dict[str, int] = {}
        for r in range(args.rounds):
            floor_argv = ["qemu-img", "convert", "-O", "vmdk", "-o", "subformat=streamOptimized", str(disk),
                          str(work / f"floor{r}.vmdk")]
            rows["qemu-img streamOptimized VMDK (floor)"].append(
                timed(partial(subprocess.run, floor_argv, check=True)))
            rows["factory OVA"].append(timed(partial(export, disk, "ova", work / f"f{r}.ova")))
            zlib_opts = ExportOptions(compression_level=7)
            rows["factory OVA, zlib level 7"].append(
                timed(partial(export, disk, "ova", work / f"z{r}.ova", options=zlib_opts)))
            rows["naive OVA (qemu-img + sha256 + tar)"].append(timed(partial(naive_ova, disk, work / f"n{r}.ova")))
            for f in work.glob(f"*{r}.*"):
                sizes[f.name.replace(str(r), "")] = f.stat().st_size
                f.unlink()
        best = {k: (min(w for w, _ in v), min(c for _, c in v)) for k, v in rows.items()}
        base_wall, base_cpu = best["qemu-img streamOptimized VMDK (floor)"]
        print(f"{'':40} {'wall s':>8} {'ratio':>6} {'cpu s':>8} {'ratio':>6}")
        for k, (wall, cpu) in best.items():
            print(f"{k:40} {wall:8.2f} {wall / base_wall:6.2f} {cpu:8.2f} {cpu / base_cpu:6.2f}")
        mib = 1 << 20
        print(f"sizes: qemu-img VMDK {sizes['floor.vmdk'] / mib:.0f} MiB, factory OVA {sizes['f.ova'] / mib:.0f} MiB "
              f"(VMDK + descriptor + manifest)")
        ratio = best["factory OVA"][0] / base_wall
        verdict = "OK" if ratio <= TARGET else "ABOVE TARGET"
        print(f"factory OVA / qemu-img VMDK (wall) = {ratio:.2f} (target <= {TARGET}): {verdict}")


if __name__ == "__main__":
    main()
