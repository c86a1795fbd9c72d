"""Host port leases: a lock per port across processes, plus a claim (a bind check, or QEMU binding it)."""

from __future__ import annotations

import multiprocessing
import random
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

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
from factory.machine.ports import lease, reserve


def _hold(low: int, high: int, out: multiprocessing.Queue, done: Any) -> None:  # type: ignore[type-arg]
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
    once in several pytest-xdist workers, each with its own lock folder, so a fixed start would hand them the
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


def test_two_processes_get_different_ports_and_a_third_finds_none(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    base = _free_block(2)
    ctx = multiprocessing.get_context("spawn")
    q: multiprocessing.Queue = ctx.Queue()  # type: ignore[type-arg]
    done = ctx.Event()
    procs = [ctx.Process(target=_hold, args=(base, base + 1, q, done)) for _ in range(2)]
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


def test_port_in_use_by_another_program_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    base = _free_block(2)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", base))
        busy.listen()
        lease = reserve(base, base + 1, purpose="test")
        assert lease.port == base + 1
        lease.release()
        lease.release()  # idempotent
        assert not lease.held


def test_lease_skips_ports_whose_claim_fails_and_keeps_the_lock(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
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


def _listen_in_another_process(port: int) -> subprocess.Popen[str]:
    code = ("import socket,sys; s=socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(); "
            "print('ready', flush=True); sys.stdin.read()")
    proc = subprocess.Popen([sys.executable, "-c", code, str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


@pytest.mark.vm
def test_qemu_binds_the_ssh_forward_itself_and_skips_a_port_another_program_holds(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No check-then-bind window: QEMU's hostfwd_add is the bind, a port held elsewhere makes it try the next.
    Through the Driver protocol: ssh_address() is the forward, events tell the busy port and the power-down."""
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
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
