"""Remastering a >= 2 GiB Ubuntu-shaped hybrid ISO against copying the same file on the same disk.

The ISO is built like the test fixture (GRUB2 hybrid MBR + GPT, appended ESP, hidden EFI El Torito entry) with
a random (incompressible) 2 GiB casper/filesystem.squashfs. In one run, alternating, N rounds (default 3):
  floor:    `cp ISO copy.iso` (then `sync`);
  remaster: factory.media.iso.remaster() (pycdlib rewrite + hybrid restore; then `sync`) — the work that
            `factory iso-build` does on a cache miss;
the ratio of the best times and of the medians; also shown: the full `factory iso-build` CLI cold
(includes hashing the ISO) and warm (output cache hit).
Target: remaster / cp <= 1.3.

    .venv/bin/python bench/bench_remaster.py [--size-mib 2048] [--rounds 3] [--dir DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fixtures.isos import UBUNTU_VOLID, build_ubuntu

from factory.media.catalog import load
from factory.media.iso import remaster
from factory.media.preseed import PreseedVars, render

TARGET = 1.3


def random_file(path: Path, mib: int) -> None:
    chunk = 8 << 20
    with path.open("wb") as fh:
        for _ in range(mib * (1 << 20) // chunk):
            fh.write(os.urandom(chunk))


def timed(action: object) -> float:
    subprocess.run(["sync"], check=True)  # start clean: earlier writes are not flushed on this one's clock
    start = time.perf_counter()
    action()  # type: ignore[operator]
    subprocess.run(["sync"], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=2048)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="work folder (default: a temp dir)")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-remaster-", dir=opts.dir) as tmp:
        work = Path(tmp)
        (work / "build").mkdir()
        payload = work / "payload"
        start = time.perf_counter()
        random_file(payload, opts.size_mib)
        iso = work / "ubuntu-big.iso"
        build_ubuntu(work / "build", iso, payload=payload)
        size = iso.stat().st_size
        print(f"built {iso.name}: {size / 2**30:.2f} GiB in {time.perf_counter() - start:.0f}s "
              f"(volume {UBUNTU_VOLID!r})")
        release = load("ubuntu-24.04")
        config = render(release.family, PreseedVars.from_pairs(["password=bench"]))
        args = release.family.kernel_args(UBUNTU_VOLID)
        cps, rems = [], []
        copy, out = work / "copy.iso", work / "out.iso"
        for _ in range(opts.rounds):
            cps.append(timed(lambda: subprocess.run(["cp", str(iso), str(copy)], check=True)))
            copy.unlink()
            rems.append(timed(lambda: remaster(iso, out, config=config, kernel_args=args,
                                               boot_configs=release.boot_configs)))
            out.unlink()
        cli = [sys.executable, "-m", "factory", "iso-build", "ubuntu-24.04", "--iso", str(iso), "--iso-checksum",
               "none", "-o", str(work / "cli.iso"), "--var", "password=bench"]
        env = {**os.environ, "FACTORY_CACHE_DIR": str(work / "cache")}
        cold = timed(lambda: subprocess.run(cli, check=True, env=env, capture_output=True))
        warm = timed(lambda: subprocess.run(cli, check=True, env=env, capture_output=True))
        bare = timed(lambda: subprocess.run([sys.executable, "-m", "factory", "version"], check=True,
                                            capture_output=True))
        digest = hashlib.sha256((work / "cli.iso").read_bytes()[:1 << 20]).hexdigest()[:12]
    cp_best, rem_best = min(cps), min(rems)
    ratio = rem_best / cp_best
    print(f"cp (floor)            {cp_best:6.2f} s  ({size / cp_best / 2**20:.0f} MiB/s)  runs: "
          + ", ".join(f"{t:.2f}" for t in cps))
    print(f"remaster (factory)    {rem_best:6.2f} s  ({size / rem_best / 2**20:.0f} MiB/s)  runs: "
          + ", ".join(f"{t:.2f}" for t in rems))
    print(f"iso-build CLI cold    {cold:6.2f} s  (incl. interpreter start and sha256 of the source)")
    print(f"iso-build CLI cached  {warm:6.2f} s  (output cache hit; head {digest}); `factory version` alone "
          f"takes {bare:.2f} s")
    median = statistics.median(rems) / statistics.median(cps)
    print(f"ratio remaster/cp     {ratio:6.2f}   best of {len(cps)} (median ratio {median:.2f}; target <= {TARGET}) "
          f"{'OK' if ratio <= TARGET else 'OVER TARGET'}")


if __name__ == "__main__":
    main()
