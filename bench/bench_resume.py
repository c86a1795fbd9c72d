"""P3: resuming from checkpoints vs a cold build, on the README's guest, in one run.

The README's example (examples/debian-cloud, on tools/mkguest.py's cached Debian guest) is built cold with an
empty store, then its last provisioner is edited and it is built again: the second build resumes from the
checkpoint after the second provisioner (its VM state under -checkpoint=vm, so the guest does not boot again)
and runs only the edited provisioner, the shutdown and the final disk. Both artifacts are checked (qemu-img
check, and the edit is in the resumed one's manifest run). Printed: both wall times, the speed-up (goal >= 10x
under TCG), each build's step table as factory prints it, and the lines that say what each checkpoint cost
(the VM is paused while its state is written) and how long the guest took to power off. Figures, with the host
load they were taken under: README.md, "Benchmark P3".

    flock /tmp/factory-vm.lock .venv/bin/python bench/bench_resume.py [--checkpoint vm|disk] [--guest PATH]
                                                                   [--rounds N]
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
EXAMPLE = ROOT / "examples" / "debian-cloud"
FACTORY = [sys.executable, "-m", "factory"]
LAST = 'inline           = ["sudo install -m 0644 /tmp/factory-release \\"$RELEASE_FILE\\"", "cat \\"$RELEASE_FILE\\""]'
EDITED = LAST.replace('"cat', '"echo edited-by-bench", "cat')


def guest_image(explicit: Path | None, work: Path) -> Path:
    if explicit:
        return explicit
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "mkguest.py"), "--cache", "--output", str(work)],
                         check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    return Path(out)


def build(project: Path, image: Path, env: dict[str, str], extra: list[str]) -> tuple[float, str]:
    argv = [*FACTORY, "build", "-force", "-var", f"guest_image={image}", *extra, str(project)]
    start = time.monotonic()
    proc = subprocess.run(argv, cwd=project, capture_output=True, text=True, env=env, timeout=7200)
    took = time.monotonic() - start
    output = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"factory build failed ({proc.returncode}):\n{output[-5000:]}")
    subprocess.run(["qemu-img", "check", "-q", str(project / "output-debian-cloud" / "debian-cloud.qcow2")],
                   check=True)
    return took, output


def table(output: str) -> str:
    """The step table factory prints at the end of a build (from its header on)."""
    lines = output.splitlines()
    start = next((i for i, line in enumerate(lines) if "where the time went" in line), None)
    if start is None:
        return "(no step table in the output)"
    end = next((i for i in range(start + 1, len(lines)) if re.search(r":\s+total\s", lines[i])), start + 40)
    return "\n".join(lines[start:end + 1])


def notes(output: str) -> str:
    """The lines that say where time went outside the step table: each checkpoint's cost (how long the build
    waited for it; a VM state is written in the background) and the guest's own shutdown."""
    return "\n".join(line.strip() for line in output.splitlines()
                     if re.search(r"checkpoint after \S+: |powered off .* after shutdown_command", line))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guest", type=Path, default=None, help="guest qcow2 (default: tools/mkguest.py --cache)")
    parser.add_argument("--checkpoint", default="vm", choices=["vm", "disk"])
    parser.add_argument("--accelerator", default="tcg", choices=["tcg", "kvm", "auto"])
    parser.add_argument("--rounds", type=int, default=1,
                        help="cold + resumed pairs, each with an empty store; the median speed-up is the figure "
                             "(on a shared host one pair can be off by 20 %%)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-resume-") as tmp:
        base = Path(tmp)
        image = guest_image(args.guest.resolve() if args.guest else None, base / "guest")
        project = base / "debian-cloud"
        shutil.copytree(EXAMPLE, project)
        hcl = project / "debian.pkr.hcl"
        text = hcl.read_text().replace('accelerator      = "auto"', f'accelerator      = "{args.accelerator}"')
        assert LAST in text, "the example's last provisioner changed: update bench_resume.LAST"
        extra = [f"-checkpoint={args.checkpoint}"]
        pairs: list[tuple[float, float]] = []
        for n in range(1, args.rounds + 1):
            env = {**os.environ, "FACTORY_CACHE_DIR": str(base / f"cache-{n}"), "COLUMNS": "200"}
            hcl.write_text(text)
            cold, cold_out = build(project, image, env, extra)
            hcl.write_text(text.replace(LAST, EDITED))
            warm, warm_out = build(project, image, env, extra)
            if "edited-by-bench" not in warm_out:
                raise RuntimeError("the edited provisioner did not run in the resumed build")
            if "resuming from the checkpoint after provision-2" not in warm_out:
                raise RuntimeError("the second build did not resume from the second provisioner's checkpoint:\n"
                                   + warm_out[-3000:])
            for name, out in (("cold", cold_out), ("resumed", warm_out)):
                (Path(tempfile.gettempdir()) / f"bench-resume-{name}.log").write_text(out)
            pairs.append((cold, warm))
            print(f"round {n}: cold {cold:6.1f} s, resumed {warm:5.1f} s, speed-up {cold / warm:4.1f}x", flush=True)
            if n < args.rounds:
                shutil.rmtree(base / f"cache-{n}")  # keep the last store for `cache ls` below
        stored = subprocess.run([*FACTORY, "cache", "ls"], capture_output=True, text=True, env=env).stdout
        print(f"\nP3 on examples/debian-cloud, accelerator {args.accelerator}, -checkpoint={args.checkpoint}, "
              f"{len(pairs)} round(s)")
        print(f"cold build (median):                         {statistics.median(c for c, _ in pairs):7.1f} s")
        print(f"after editing the last provisioner (median): {statistics.median(w for _, w in pairs):7.1f} s")
        print(f"speed-up: median {statistics.median(c / w for c, w in pairs):.1f}x, rounds "
              + " ".join(f"{c / w:.1f}x" for c, w in pairs) + " (goal >= 10x)")
        print("\nlast cold build's steps:\n" + table(cold_out) + "\n" + notes(cold_out))
        print("\nlast resumed build's steps:\n" + table(warm_out) + "\n" + notes(warm_out))
        print("\nstore after the last round:\n" + stored)
    return 0


if __name__ == "__main__":
    sys.exit(main())
