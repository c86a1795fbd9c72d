"""Host ports for SSH forwarding, the HTTP server and VNC: one host-wide lock file per port so concurrent builds
(other processes, other users, other cache dirs) never pick the same one, plus a claim that fails on ports other
programs use.

The race-free form is `lease(..., claim=...)` where claim binds the port for real (QEMU's hostfwd_add, a
server's own socket): the bind is the check, so no other program can take the port between check and use.
`reserve` only test-binds and releases, for callers that must name the port before anything can bind it."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from factory import fsutil, paths
from factory.errors import FactoryError


@dataclass
class PortLease:
    """A reserved port; release() (idempotent) frees its lock."""

    port: int
    _fd: int | None = field(default=None, repr=False)

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None


def _free(port: int, host: str) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As QEMU's hostfwd and http.server do: a port in TIME_WAIT is reusable, one with a listener is not.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def lease(low: int, high: int, *, purpose: str, claim: Callable[[int], bool],
          busy: Callable[[int], None] | None = None) -> PortLease:
    """The first port in low..high (inclusive) that no other factory holds and claim(port) could take.

    claim returns False when the port is in use (the next one is tried) and raises FactoryError for anything
    else; busy(port) is told about each port found in use."""
    if low > high or low < 1 or high > 65535:
        raise FactoryError(f"{purpose}: empty or invalid port range {low}..{high}")
    folder = paths.host_lock_dir("ports")
    for port in range(low, high + 1):
        fd = _try_lock(lock_path(port, folder))
        if fd is None:
            continue
        try:
            claimed = claim(port)
        except BaseException:
            os.close(fd)
            raise
        if claimed:
            return PortLease(port, fd)
        os.close(fd)
        if busy is not None:
            busy(port)
    raise FactoryError(f"{purpose}: no free port in {low}..{high}",
                       hint="other builds or programs use them all; widen the range (e.g. host_port_max)")


def lock_path(port: int, folder: Path | None = None) -> Path:
    """The port's lock file (in folder, host_lock_dir("ports") looked up once by the caller). Host-wide, not per
    user or cache dir: two factories with different FACTORY_CACHE_DIR (parallel CI jobs, tests) or run by
    different users must never lease the same port."""
    return (folder or paths.host_lock_dir("ports")) / f"{port}.lock"


def _try_lock(path: Path) -> int | None:
    try:
        return fsutil.try_lock(path)
    except OSError as exc:
        raise FactoryError(f"cannot create the port lock {path}: {exc.strerror or exc}",
                           hint=f"{path.parent} must be writable by every user of factory (mode 1777)") from None


def reserve(low: int, high: int, *, purpose: str, host: str = "127.0.0.1") -> PortLease:
    """The first port in low..high that no other factory holds and nothing listens on (checked, not held:
    another program may still bind it before its user does; prefer lease with a real claim)."""
    return lease(low, high, purpose=purpose, claim=lambda port: _free(port, host))
