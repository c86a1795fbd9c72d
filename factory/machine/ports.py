"""Host ports for SSH forwarding, the HTTP server and VNC: one lock file per port so concurrent builds
(even in different processes) never pick the same one, plus a bind check for ports used by other programs."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

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


def reserve(low: int, high: int, *, purpose: str, host: str = "127.0.0.1") -> PortLease:
    """The first port in low..high (inclusive) that no other factory holds and nothing listens on."""
    if low > high or low < 1 or high > 65535:
        raise FactoryError(f"{purpose}: empty or invalid port range {low}..{high}")
    lock_dir = paths.runtime_dir("ports")
    for port in range(low, high + 1):
        fd = fsutil.try_lock(lock_dir / f"{port}.lock")
        if fd is None:
            continue
        if _free(port, host):
            return PortLease(port, fd)
        os.close(fd)
    raise FactoryError(f"{purpose}: no free port in {low}..{high}",
                       hint="other builds or programs use them all; widen the range (e.g. host_port_max)")
