"""Host port leases: a lock per port across processes, plus a claim (a bind check, or QEMU binding it)."""

from __future__ import annotations

import multiprocessing
import os
import random
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from factory import paths
from factory.errors import FactoryError
from factory.machine.driver import (
    Endpoint,
    MachineEvent,
    MachineEventKind,
    MachineSpec,
    PortRange,
    PowerState,
    driver,
)
from factory.machine.ports import lease, lock_path, reserve


def _hold(low: int, high: int, out: multiprocessing.Queue, done: Any,  # type: ignore[type-arg]
          env: dict[str, str]) -> None:
    os.environ.update(env)
    try:
        lease = reserve(low, high, purpose="test")
        out.put(lease.port)
        done.wait(60)  # held until the test says so: no timing assumption under load
        lease.release()
    except FactoryError as exc:
        out.put(str(exc))


LOW, HIGH = 20000, 32000  # where _free_block looks


def _free_block(n: int) -> int:
    """A base port with n consecutive free ports (best effort). The start is random: tests of this file run at
    once in several pytest-xdist workers, beside builds that lease ports too, so a fixed start would hand them the
    same block. Below the kernel's ephemeral range (32768-60999 by default), where no outgoing connection takes
    a port between this check and the test's use of it (that once failed test_httpd in CI, see there)."""
    start = random.randrange(LOW, HIGH)
    for base in [*range(start, HIGH, 37), *range(LOW, start, 37)]:
        if all(_bindable(base + i) for i in range(n)):
            return base
    raise RuntimeError(f"no free port block in {LOW}..{HIGH}")


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_two_processes_get_different_ports_and_a_third_finds_none(tmp_path: Path) -> None:
    """Each process has its own cache and runtime folders, as parallel CI jobs or tests do: the locks are the
    host's, since the ports are (with per-cache locks two builds once both forwarded 127.0.0.1:2222)."""
    base = _free_block(2)
    ctx = multiprocessing.get_context("spawn")
    q: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
    done = ctx.Event()
    envs = [{"FACTORY_CACHE_DIR": str(tmp_path / f"cache{i}"), "XDG_RUNTIME_DIR": str(tmp_path / f"run{i}")}
            for i in range(2)]
    procs = [ctx.Process(target=_hold, args=(base, base + 1, q, done, env)) for env in envs]
    for p in procs:
        p.start()
    got = {q.get(timeout=30), q.get(timeout=30)}
    assert got == {base, base + 1}
    with pytest.raises(FactoryError, match="no free port"):
        reserve(base, base + 1, purpose="test")
    done.set()
    for p in procs:
        p.join(30)
    lease = reserve(base, base + 1, purpose="test")   # released by the others: free again
    assert lease.port == base
    lease.release()


def test_port_in_use_by_another_program_is_skipped() -> None:
    base = _free_block(2)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", base))
        busy.listen()
        lease = reserve(base, base + 1, purpose="test")
        assert lease.port == base + 1
        lease.release()
        lease.release()  # idempotent
        assert not lease.held


def test_lease_skips_ports_whose_claim_fails_and_keeps_the_lock() -> None:
    base = _free_block(3)
    busy: list[int] = []
    got = lease(base, base + 2, purpose="test", claim=lambda port: port == base + 2, busy=busy.append)
    assert got.port == base + 2 and busy == [base, base + 1]
    # The lock stays with the lease: another factory cannot claim the same port, even if it could bind it.
    with pytest.raises(FactoryError, match="no free port"):
        lease(base + 2, base + 2, purpose="test", claim=lambda port: True)
    got.release()
    with pytest.raises(FactoryError, match="refused"):
        lease(base, base, purpose="test", claim=lambda port: (_ for _ in ()).throw(FactoryError("refused")))
    assert lease(base, base, purpose="test", claim=lambda port: True).port == base  # the lock was freed


_OTHER_USER = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]  # nobody


def _lease_as_nobody(low: int, high: int) -> subprocess.CompletedProcess[str]:
    code = ("import sys; from factory.machine.ports import reserve; "
            "print(reserve(int(sys.argv[1]), int(sys.argv[2]), purpose='test').port)")
    return subprocess.run([*_OTHER_USER, sys.executable, "-c", code, str(low), str(high)], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "FACTORY_CACHE_DIR": "/nonexistent/cache",
                                                      "HOME": "/nonexistent"})


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another user needs root (CI runs as root)")
def test_another_user_honours_the_lock_and_takes_the_port_once_freed() -> None:
    """root leases a port; nobody, with another cache dir, gets the next one (root's lock file is readable, the
    lock is taken on a read-only descriptor), and the freed port once root lets go. root's umask 077 does not
    make the lock file private. And nobody's own lock file works for root the other way round."""
    base = _free_block(2)
    old = os.umask(0o077)
    try:
        held = reserve(base, base + 1, purpose="test")
    finally:
        os.umask(old)
    assert held.port == base and stat.S_IMODE(lock_path(base).stat().st_mode) == 0o644
    other = _lease_as_nobody(base, base + 1)
    assert other.returncode == 0 and other.stdout.strip() == str(base + 1), other.stderr
    assert lock_path(base + 1).stat().st_uid in (0, 65534)  # made by whoever came first, root or nobody
    busy = _lease_as_nobody(base, base)
    assert busy.returncode == 1 and "no free port" in busy.stderr, busy.stderr
    held.release()
    assert _lease_as_nobody(base, base).stdout.strip() == str(base)


def test_the_lock_folder_is_one_for_the_host_and_refuses_what_others_could_abuse(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The folder is made sticky and world-writable whatever the umask; a symlink or file in its place, or a
    planted symlink instead of a lock file, is never followed."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    monkeypatch.setattr(paths, "_HOST_SHARED", (str(shared),))
    old = os.umask(0o077)
    try:
        folder = paths.host_lock_dir("ports")
    finally:
        os.umask(old)
    assert folder == shared / "factory-ports" and stat.S_IMODE(folder.stat().st_mode) == 0o1777
    victim = tmp_path / "victim"
    victim.write_text("keep")
    base = _free_block(2)
    (folder / f"{base}.lock").symlink_to(victim)
    got = reserve(base, base + 1, purpose="test")
    assert got.port == base + 1 and victim.read_text() == "keep"  # the planted link counts as held, not followed
    got.release()
    folder.rename(tmp_path / "moved")
    (shared / "factory-ports").symlink_to(tmp_path / "moved")
    with pytest.raises(FactoryError, match="not a folder every factory can use"):
        reserve(base, base + 1, purpose="test")


def _listen_in_another_process(port: int) -> subprocess.Popen[str]:
    code = ("import socket,sys; s=socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(); "
            "print('ready', flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code, str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


@pytest.mark.vm
def test_qemu_binds_the_ssh_forward_itself_and_skips_a_port_another_program_holds(tmp_path: Path) -> None:
    """No check-then-bind window: QEMU's hostfwd_add is the bind, a port held elsewhere makes it try the next.
    Through the Driver protocol: ssh_address() is the forward, events tell the busy port and the power-down."""
    base = _free_block(3)
    holder = _listen_in_another_process(base)
    spec = MachineSpec(name="fwdtest", workdir=tmp_path, serial_log=tmp_path / "serial.log", memory_mb=64,
                       hypervisor_args=(("-S",),))  # paused: the network backend exists, no guest needs to run
    qemu = driver("qemu")
    events: list[MachineEvent] = []
    machine = qemu.machine(spec, on_event=events.append)
    assert machine.state() is PowerState.DEFINED
    try:
        machine.start()
        assert machine.state() is PowerState.RUNNING
        address = machine.ssh_address(22, PortRange(base, base + 2), timeout=5)
        assert address == Endpoint("127.0.0.1", base + 1, forwarded=True)
        assert machine.ssh_address(22, PortRange(base, base + 2), timeout=5) is address  # bound once
        assert events[0] == MachineEvent(MachineEventKind.MESSAGE,
                                         f"host port {base} is in use by another program: trying the next one")
        owners = subprocess.run(["ss", "-Hltnp", f"sport = :{address.port}"], capture_output=True, text=True).stdout
        assert "qemu-system" in owners, owners  # QEMU itself listens: nothing can take it any more
        machine.powerdown()
        deadline = time.monotonic() + 10
        while MachineEventKind.POWERDOWN not in [e.kind for e in events] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert events[-1].kind is MachineEventKind.POWERDOWN  # QMP's POWERDOWN event, delivered as it came
    finally:
        qemu.cleanup()   # the driver ends what it defined, and the machine gives its port back
        holder.communicate("")
    assert machine.state() is PowerState.OFF and not machine.running()
    with socket.socket() as s:
        s.bind(("127.0.0.1", base + 1))
