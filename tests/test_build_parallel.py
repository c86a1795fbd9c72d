"""Parallel builds (`-parallel-builds`): null-builder builds with shell-local provisioners, run by the real CLI.

Concurrency is proven by overlap, never by sleeps that cannot fail: each build's script marks its start and waits
(bounded) for the others' marks, so builds that ran one after another would time out and fail; the limit is
proven by the largest number of builds whose recorded [start, end] intervals overlap."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

# Each build marks its start, waits up to BARRIER seconds for `need` start marks, records its interval. The
# interval begins before the start mark is made: a build that sees another's mark then ended after that one began
# (a start time read after the mark let a quick partner finish first under load, and two overlapping builds
# recorded disjoint intervals: CI).
SCRIPT = """#!/bin/sh
d={marks}; t0=$(date +%s.%N); touch "$d/start-{name}"; echo "pid $$" > "$d/pid-{name}"; i=0
while [ "$(ls "$d" | grep -c '^start-')" -lt {need} ] && [ $i -lt {ticks} ]; do sleep 0.1; i=$((i+1)); done
[ "$(ls "$d" | grep -c '^start-')" -ge {need} ] || {{ echo "BARRIER-TIMEOUT {name}"; exit 1; }}
{extra}
echo "$t0 $(date +%s.%N)" > "$d/span-{name}"; echo "OVERLAP-OK {name}"
"""


def _template(tmp: Path, names: list[str], need: int, extra: dict[str, str] | None = None,
              barrier: float = 40.0) -> Path:
    marks = tmp / "marks"
    marks.mkdir(exist_ok=True)
    sources = "\n".join(f'source "null" "{n}" {{ communicator = "none" }}' for n in names)
    builds = []
    for n in names:
        script = SCRIPT.format(marks=marks, name=n, need=need, ticks=int(barrier * 10),
                               extra=(extra or {}).get(n, ""))
        (tmp / f"{n}.sh").write_text(script)
        (tmp / f"{n}.sh").chmod(0o755)
        builds.append(f'build {{\n  sources = ["source.null.{n}"]\n'
                      f'  provisioner "shell-local" {{ script = "{n}.sh" }}\n}}')
    tpl = tmp / "t.pkr.hcl"
    tpl.write_text(sources + "\n" + "\n".join(builds) + "\n")
    return tpl


def _env(tmp: Path) -> dict[str, str]:
    scratch = tmp / "scratch"
    scratch.mkdir(exist_ok=True)
    return {**os.environ, "COLUMNS": "300", "TMPDIR": str(scratch)}


def _factory(tmp: Path, *args: str, timeout: float = 180, sigint_ignored: bool = False
             ) -> subprocess.CompletedProcess[str]:
    """sigint_ignored: start factory as a shell starts a background job or nohup does, with SIGINT ignored."""
    def ignore_sigint() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    return subprocess.run([sys.executable, "-m", "factory", "build", *args, "t.pkr.hcl"], cwd=tmp, env=_env(tmp),
                          capture_output=True, text=True, timeout=timeout,
                          preexec_fn=ignore_sigint if sigint_ignored else None)


def _spans(tmp: Path) -> list[tuple[float, float]]:
    return [tuple(map(float, p.read_text().split())) for p in sorted((tmp / "marks").glob("span-*"))]  # type: ignore[misc]


def _max_overlap(spans: list[tuple[float, float]]) -> int:
    points = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    best = cur = 0
    for _, step in points:
        cur += step
        best = max(best, cur)
    return best


def _left_behind(tmp: Path) -> list[str]:
    return sorted(p.name for p in (tmp / "scratch").iterdir())


def test_four_builds_run_at_once_with_output_prefixed_per_build(tmp_path: Path) -> None:
    names = ["a", "b", "c", "d"]
    _template(tmp_path, names, need=4)
    proc = _factory(tmp_path)
    assert proc.returncode == 0, proc.stderr
    for n in names:  # each waited for all four starts: they ran at the same time
        assert f"    null.{n}: [shell-local] OVERLAP-OK {n}" in proc.stderr, proc.stderr
        assert f"==> null.{n}: where the time went:" in proc.stderr
    assert _max_overlap(_spans(tmp_path)) == 4
    assert _left_behind(tmp_path) == []


def test_parallel_builds_limits_how_many_run_at_once(tmp_path: Path) -> None:
    names = ["a", "b", "c", "d"]
    _template(tmp_path, names, need=2)
    proc = _factory(tmp_path, "-parallel-builds=2")
    assert proc.returncode == 0, proc.stderr
    assert _max_overlap(_spans(tmp_path)) == 2


def test_one_at_a_time_never_overlaps_and_a_barrier_would_fail(tmp_path: Path) -> None:
    """The control: -parallel-builds=1 runs them in turn, so a build waiting for a second start times out."""
    _template(tmp_path, ["a", "b"], need=2, barrier=1.0)
    proc = _factory(tmp_path, "-parallel-builds=1")
    assert proc.returncode == 1
    assert "BARRIER-TIMEOUT a" in proc.stderr and "OVERLAP-OK b" in proc.stderr  # b saw a's old start mark


def test_a_failing_build_does_not_stop_the_others_and_the_exit_code_says_so(tmp_path: Path) -> None:
    _template(tmp_path, ["a", "b", "c"], need=3, extra={"b": "echo b-fails; exit 3"})
    proc = _factory(tmp_path, "--events", "events.jsonl")
    assert proc.returncode == 1
    assert "OVERLAP-OK a" in proc.stderr and "OVERLAP-OK c" in proc.stderr
    assert "build(s) failed" in proc.stderr and "null.b" in proc.stderr
    evs = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    ends = {e["build"]: e["type"] for e in evs if e["type"] in ("build-finished", "build-failed")}
    assert ends == {"null.a": "build-finished", "null.b": "build-failed", "null.c": "build-finished"}
    assert _left_behind(tmp_path) == []


@pytest.mark.parametrize("names", [["a"], ["a", "b"]], ids=["one build", "parallel builds"])
def test_a_reader_that_goes_away_neither_hangs_nor_fails_the_builds(tmp_path: Path, names: list[str]) -> None:
    """`factory build 2>&1 | head`: the console goes quiet and the builds run to their end (a parallel run used
    to wait forever: rich's broken-pipe handling ended the thread that relayed a build's events)."""
    lines = "for i in $(seq 300); do echo line-$i-of-a-long-output; done"
    _template(tmp_path, names, need=len(names), extra={n: lines for n in names})
    proc = subprocess.Popen([sys.executable, "-m", "factory", "build", "--events", "events.jsonl", "t.pkr.hcl"],
                            cwd=tmp_path, env=_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    assert b"build started" in proc.stderr.readline()
    proc.stderr.close()  # the reader is gone before the builds print their 300 lines
    try:
        assert proc.wait(timeout=120) == 0
    finally:
        proc.kill()
    assert len(_spans(tmp_path)) == len(names)  # every build ran to its end
    evs = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert sorted(e["build"] for e in evs if e["type"] == "build-finished") == [f"null.{n}" for n in names]
    assert _left_behind(tmp_path) == []


@pytest.mark.parametrize("started", ["foreground", "sigint_ignored"])
def test_fail_fast_stops_the_others_which_clean_up(tmp_path: Path, started: str) -> None:
    """Also when factory itself was started with SIGINT ignored (`nohup factory build ... &`): the SIGINT the
    parent sends its children to stop them is its own message, which they must not inherit an ignore for."""
    # a and c wait for start marks that never come; b fails as soon as both are running.
    _template(tmp_path, ["a", "b", "c"], need=9, extra={"b": ""}, barrier=120)
    (tmp_path / "b.sh").write_text(  # b fails once a and c are running
        f'#!/bin/sh\nd={tmp_path}/marks; i=0\n'
        'while [ ! -e $d/pid-a ] || [ ! -e $d/pid-c ]; do sleep 0.1; i=$((i+1)); [ $i -lt 900 ] || break; done\n'
        'echo b-fails; exit 3\n')
    t0 = time.monotonic()
    proc = _factory(tmp_path, "-fail-fast", "-parallel-builds=0", sigint_ignored=started == "sigint_ignored")
    assert proc.returncode == 1, proc.stderr
    assert time.monotonic() - t0 < 100, "the waiting builds were not stopped"
    assert "b-fails" in proc.stderr and "OVERLAP-OK" not in proc.stderr
    for n in ("a", "c"):
        assert f"null.{n}: " in proc.stderr.split("build(s) failed", 1)[1]
        pid = int((tmp_path / "marks" / f"pid-{n}").read_text().split()[1])
        assert not _alive(pid), f"build {n}'s script is still running"
    assert _left_behind(tmp_path) == []


def _alive(pid: int) -> bool:
    """Running, not a zombie (a killed script's shell is re-parented to init, which reaps it when it gets to it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def test_ctrl_c_stops_every_build_and_cleans_all(tmp_path: Path) -> None:
    names = ["a", "b", "c"]
    _template(tmp_path, names, need=9, barrier=120)
    proc = subprocess.Popen([sys.executable, "-m", "factory", "build", "t.pkr.hcl"], cwd=tmp_path,
                            env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while len(list((tmp_path / "marks").glob("pid-*"))) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert len(list((tmp_path / "marks").glob("pid-*"))) == 3, "the builds did not all start"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    for n in names:
        pid = int((tmp_path / "marks" / f"pid-{n}").read_text().split()[1])
        assert not _alive(pid), f"build {n}'s script is still running"
    assert _left_behind(tmp_path) == []
    assert "Traceback" not in err


def test_parallel_builds_writing_one_output_directory_are_refused_before_anything_starts(tmp_path: Path) -> None:
    (tmp_path / "t.pkr.hcl").write_text("""
source "qemu" "x" {
  iso_url      = "disk.img"
  iso_checksum = "none"
  disk_image   = true
  ssh_username = "u"
}
build {
  name    = "one"
  sources = ["source.qemu.x"]
}
build {
  name    = "two"
  sources = ["source.qemu.x"]
}
""")
    proc = _factory(tmp_path)
    assert proc.returncode == 1
    assert "builds one.qemu.x and two.qemu.x both write" in proc.stderr and "-parallel-builds=1" in proc.stderr
    assert "t.pkr.hcl:2" in proc.stderr and "Traceback" not in proc.stderr
    assert "build started" not in proc.stderr
