"""Run `factory validate` on every invocation of tests/corpus/invocations.tsv, from the directory the project
runs Packer in, and print each result and the pass rate (overall and per hypervisor).

    python tests/corpus/run.py [-v]      # -v: show the first error line of each failure
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Invocation:
    directory: str
    hypervisor: str
    env: dict[str, str]
    args: list[str]
    origin: str

    @property
    def repository(self) -> str:
        return self.directory.split("/")[0].replace("__", "/", 1)


@dataclass(frozen=True)
class Result:
    invocation: Invocation
    ok: bool
    output: str


def invocations() -> list[Invocation]:
    found = []
    for line in (HERE / "invocations.tsv").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        directory, hypervisor, env, args, origin = line.split("\t")
        pairs = dict(kv.split("=", 1) for kv in shlex.split(env)) if env != "-" else {}
        found.append(Invocation(directory, hypervisor, pairs, shlex.split(args), origin))
    return found


def run(inv: Invocation) -> Result:
    # A clean environment apart from the project's own variables: no PKR_VAR_ leaks in from the caller.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PKR_VAR_", "FACTORY_VAR_"))}
    env.update(inv.env)
    proc = subprocess.run([sys.executable, "-m", "factory", "validate", *inv.args], cwd=HERE / inv.directory,
                          env={**env, "COLUMNS": "200"}, capture_output=True, text=True, timeout=300)
    return Result(inv, proc.returncode == 0, proc.stdout + proc.stderr)


def rate(results: list[Result], hypervisor: str | None = None) -> tuple[int, int]:
    chosen = [r for r in results if hypervisor is None or r.invocation.hypervisor == hypervisor]
    return sum(r.ok for r in chosen), len(chosen)


def main(argv: list[str]) -> int:
    results = [run(inv) for inv in invocations()]
    for r in results:
        inv = r.invocation
        print(f"{'ok  ' if r.ok else 'FAIL'} {inv.directory}: {shlex.join(inv.args)}")
        if not r.ok and "-v" in argv:
            first = next((ln for ln in r.output.splitlines() if ln.startswith("error")), r.output[-300:])
            print(f"       {first}")
    repos = {r.invocation.repository for r in results}
    passed, total = rate(results)
    print(f"{len(repos)} repositories, {total} invocations, {passed} pass: {100 * passed / total:.1f} %")
    for hv in sorted({r.invocation.hypervisor for r in results}):
        p, t = rate(results, hv)
        print(f"  {hv}: {p}/{t} ({100 * p / t:.1f} %)")
    return 0 if passed == total else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
