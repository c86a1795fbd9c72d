"""Host port reservation: a lock per port across processes, plus a bind check."""

from __future__ import annotations

import multiprocessing
import socket
import time
from pathlib import Path

import pytest

from factory.errors import FactoryError
from factory.machine.ports import reserve


def _hold(low: int, high: int, out: multiprocessing.Queue, hold: float) -> None:  # type: ignore[type-arg]
    try:
        lease = reserve(low, high, purpose="test")
        out.put(lease.port)
        time.sleep(hold)
        lease.release()
    except FactoryError as exc:
        out.put(str(exc))


def _free_block(n: int) -> int:
    """A base port with n consecutive free ports (best effort, high range)."""
    for base in range(47000, 60000, 37):
        if all(_bindable(base + i) for i in range(n)):
            return base
    raise RuntimeError("no free port block")


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
    procs = [ctx.Process(target=_hold, args=(base, base + 1, q, 4.0)) for _ in range(2)]
    for p in procs:
        p.start()
    got = {q.get(timeout=30), q.get(timeout=30)}
    assert got == {base, base + 1}
    with pytest.raises(FactoryError, match="no free port"):
        reserve(base, base + 1, purpose="test")
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
