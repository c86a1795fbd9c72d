"""Compaction in the background (Precompaction): a real qemu-img on real qcow2 chains, checked by qemu-img itself."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from factory.artifact import compact, compaction
from factory.artifact.compaction import Precompaction
from factory.artifact.model import DiskFormat
from factory.errors import FactoryError
from factory.machine.driver import DiskToolArgs, driver
from factory.run import run

MIB = 1024 * 1024


def _io(disk: Path, *commands: str) -> None:
    for command in commands:
        subprocess.run(["qemu-io", "-f", "qcow2", "-c", command, str(disk)], check=True, capture_output=True)


def _backing(disk: Path) -> str | None:
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(disk)], check=True,
                                     capture_output=True, text=True).stdout)
    backing = info.get("backing-filename")
    return str(backing) if backing else None


def _same(a: Path, b: Path) -> bool:
    return subprocess.run(["qemu-img", "compare", str(a), str(b)], capture_output=True).returncode == 0


@pytest.fixture
def chain(tmp_path: Path) -> tuple[Path, Path, Path]:
    """base <- mid <- top: each layer writes data, and zeroes some of what the layers under it wrote."""
    base, mid, top = (tmp_path / f"{n}.qcow2" for n in ("base", "mid", "top"))
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(base), "256M"], check=True)
    _io(base, "write -P 0x11 0 32M", "write -P 0x12 100M 16M")
    for upper, lower in ((mid, base), (top, mid)):
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(lower), "-F", "qcow2", str(upper)],
                       check=True)
    _io(mid, "write -P 0x21 16M 32M", "write -z 100M 4M")
    _io(top, "write -P 0x31 40M 4M", "write -z 0 1M", "write -P 0x32 200M 8M")
    return base, mid, top


def _finished(pre: Precompaction) -> Precompaction:
    assert pre.proc is not None
    assert pre.proc.wait(timeout=120) == 0
    return pre


def test_the_top_layer_committed_onto_the_precompacted_layers_is_the_whole_chain_compacted(
        tmp_path: Path, chain: tuple[Path, Path, Path]) -> None:
    _, mid, top = chain
    out = tmp_path / "out"
    out.mkdir()
    pre = driver("qemu").precompact(mid, out, DiskFormat.QCOW2)
    assert isinstance(pre, Precompaction)
    reference = compact(top, tmp_path / "reference.qcow2")  # what the end of the build writes without it
    assert _finished(pre).finish(top, out / "disk.qcow2") == ""
    final = out / "disk.qcow2"
    assert _same(final, reference)  # (top itself now points at a file renamed away: the build removes it)
    assert _backing(final) is None  # a standalone disk, like compact()'s
    subprocess.run(["qemu-img", "check", "-q", str(final)], check=True)
    assert os.stat(final).st_mode & 0o777 == os.stat(reference).st_mode & 0o777
    assert sorted(p.name for p in out.iterdir()) == ["disk.qcow2"]  # no temporary file left
    assert pre.proc is None


def test_layers_that_are_not_directly_under_the_top_one_are_not_used(
        tmp_path: Path, chain: tuple[Path, Path, Path]) -> None:
    base, mid, top = chain
    pre = _finished(Precompaction(base, tmp_path))  # top sits on mid, not on base
    assert pre.finish(top, tmp_path / "disk.qcow2") == f"was of other layers (top.qcow2 does not sit on {base})"
    assert not (tmp_path / "disk.qcow2").exists() and not pre.path.exists()
    assert _backing(top) == str(mid)


def test_an_unfinished_precompaction_is_stopped_and_leaves_nothing(
        tmp_path: Path, chain: tuple[Path, Path, Path]) -> None:
    _, mid, top = chain
    pre = Precompaction(mid, tmp_path)
    assert pre.proc is not None
    pid = pre.proc.pid
    os.kill(pid, signal.SIGSTOP)  # unfinished for sure, however fast the host
    try:
        assert os.sched_getscheduler(pid) == os.SCHED_IDLE  # it only takes CPU time the guest leaves
        assert pre.finish(top, tmp_path / "disk.qcow2").startswith("had not finished")
    finally:
        if pre.proc is not None:
            pre.proc.kill()
    assert not (tmp_path / "disk.qcow2").exists() and not pre.path.exists()
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # stopped, killed and reaped
    assert _backing(top) == str(mid)


def test_a_commit_that_fails_puts_the_top_layer_back_on_its_own_layers(
        tmp_path: Path, chain: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """The commit fails as qemu-img fails on a full disk (injected: every other qemu-img call is real)."""
    _, mid, top = chain
    pre = _finished(Precompaction(mid, tmp_path))
    expected = compact(top, tmp_path / "expected.qcow2")

    def failing_commit(argv: list[object], **kw: object) -> object:
        if "commit" in argv:
            raise FactoryError("command failed with exit code 1: qemu-img commit ...\n    qemu-img: No space left")
        return run(argv, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(compaction, "run", failing_commit)
    assert pre.finish(top, tmp_path / "disk.qcow2") == "could not take the last layer: qemu-img: No space left"
    monkeypatch.undo()
    assert _backing(top) == str(mid) and not pre.path.exists() and not (tmp_path / "disk.qcow2").exists()
    assert _same(compact(top, tmp_path / "after.qcow2"), expected)  # the full compaction still works


def test_cancel_stops_it_and_removes_its_file(tmp_path: Path, chain: tuple[Path, Path, Path]) -> None:
    pre = Precompaction(chain[1], tmp_path)
    pre.cancel()
    pre.cancel()  # idempotent: the build's clean-up may run it after the Compact step did
    assert pre.proc is None and not pre.path.exists()


@pytest.mark.parametrize(("fmt", "compress", "args"), [
    (DiskFormat.QCOW2, True, DiskToolArgs()),                                   # -c rewrites every cluster
    (DiskFormat.QCOW2, False, DiskToolArgs(convert=("-o", "cluster_size=2M"))),  # the user's convert options
    (DiskFormat.RAW, False, DiskToolArgs()),
])
def test_only_a_plain_qcow2_compaction_is_done_in_the_background(
        tmp_path: Path, chain: tuple[Path, Path, Path], fmt: DiskFormat, compress: bool, args: DiskToolArgs) -> None:
    assert driver("qemu").precompact(chain[1], tmp_path, fmt, compress=compress, args=args) is None
    assert not list(tmp_path.glob(".precompacted.*"))
