"""Waiting for a guest's sshd: fast TCP polling, one probe per attempt, and a diagnosis of what was seen.

The wait is the place where Packer users lose the most time ("SSH timeout" with no clue why), so every attempt
is classified (refused, closed before the banner, handshake or authentication failure, wrong system ...) and
the timeout error explains the last and the most telling observation with a hint.
"""

from __future__ import annotations

import errno
import socket
import time
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum

from factory.errors import FactoryError


class Seen(StrEnum):
    """What one connection attempt ran into, from least to most progress."""

    REFUSED = "connection refused"
    UNREACHABLE = "host unreachable"
    CONNECT_TIMEOUT = "TCP connect timed out"
    CLOSED_BEFORE_BANNER = "connection closed before the SSH banner"
    NO_BANNER = "no SSH banner"
    HANDSHAKE = "SSH handshake failed"
    HOST_KEY = "unexpected host key"
    AUTH = "authentication failed"
    WRONG_SYSTEM = "reached an sshd that failed the expect check"

    @property
    def hint(self) -> str:
        return _HINTS[self]


_HINTS = {
    Seen.REFUSED: "sshd never listened: is openssh-server installed and the network up? "
                  "Under TCG (no KVM) boots take minutes: raise ssh_timeout",
    Seen.UNREACHABLE: "the host is unreachable: check ssh_host and the guest's network configuration",
    Seen.CONNECT_TIMEOUT: "TCP connections timed out: a firewall drops packets or the address is wrong",
    Seen.CLOSED_BEFORE_BANNER: "the port accepted connections but closed them before sshd spoke: with QEMU's "
                               "port forwarding this means the guest's sshd is not listening (still booting, "
                               "openssh-server missing, or the guest network is down). Under TCG boots take "
                               "minutes: raise ssh_timeout",
    Seen.NO_BANNER: "connections were accepted but no SSH banner arrived: the guest is very slow (TCG?) or "
                    "something other than sshd listens on the port",
    Seen.HANDSHAKE: "sshd answered but the SSH key exchange failed: see the detail above (old or unusual sshd?)",
    Seen.HOST_KEY: "the server's host key differs from the pinned one: this is not the system you expect "
                   "(an installer's sshd?)",
    Seen.AUTH: "wrong ssh_username or key not injected: check the user and ssh_authorized_keys in the "
               "seed/user-data (or ssh_password), and that cloud-init ran",
    Seen.WRONG_SYSTEM: "an sshd answered but it is not the installed system (likely the installer's own "
                       "sshd): factory keeps waiting for the right one",
}


@dataclass(frozen=True)
class Attempt:
    seen: Seen
    detail: str = ""


class Journal:
    """Every attempt's outcome, to say at timeout what happened the whole time and what happened last."""

    def __init__(self) -> None:
        self.counts: Counter[Seen] = Counter()
        self.last: Attempt | None = None
        self.started = time.monotonic()

    def record(self, attempt: Attempt) -> None:
        self.counts[attempt.seen] += 1
        self.last = attempt

    def most_advanced(self) -> Seen | None:
        order = list(Seen)
        return max(self.counts, key=order.index) if self.counts else None

    def error(self, target: str, waited: float) -> FactoryError:
        """The timeout error: what was seen (all the time, or last), with the hint for the most telling case."""
        if self.last is None:
            return FactoryError(f"timed out after {waited:.0f}s waiting for SSH on {target} (no attempt made)",
                                hint=Seen.REFUSED.hint)
        best = self.most_advanced() or self.last.seen
        total = sum(self.counts.values())
        if len(self.counts) == 1:
            what = f"{self.last.seen} the whole time ({total} attempts)"
        else:
            tally = ", ".join(f"{seen} x{n}" for seen, n in self.counts.most_common())
            what = f"last: {self.last.seen}; seen: {tally}"
        detail = f": {self.last.detail}" if self.last.detail else ""
        return FactoryError(f"timed out after {waited:.0f}s waiting for SSH on {target}: {what}{detail}",
                            hint=best.hint)


def tcp_connect(host: str, port: int, timeout: float) -> socket.socket | Attempt:
    """A connected socket, or the Attempt that says why not (refused, unreachable, timeout)."""
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except ConnectionRefusedError:
        return Attempt(Seen.REFUSED)
    except TimeoutError:
        return Attempt(Seen.CONNECT_TIMEOUT, f"no answer within {timeout:g}s")
    except OSError as exc:
        if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL):
            return Attempt(Seen.UNREACHABLE, exc.strerror or str(exc))
        if isinstance(exc, socket.gaierror):
            return Attempt(Seen.UNREACHABLE, f"cannot resolve {host!r}: {exc}")
        return Attempt(Seen.REFUSED, str(exc))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def await_banner(sock: socket.socket, timeout: float) -> Attempt | None:
    """Peek (not consume) the server's first bytes: None once sshd has spoken, else why it did not.

    QEMU's user-mode port forward accepts on the host even when nothing listens in the guest, then closes;
    peeking tells that apart from a real sshd without eating the banner paramiko must read.
    """
    sock.settimeout(timeout)
    try:
        data = sock.recv(256, socket.MSG_PEEK)
    except TimeoutError:
        return Attempt(Seen.NO_BANNER, f"nothing received within {timeout:g}s")
    except OSError as exc:
        return Attempt(Seen.CLOSED_BEFORE_BANNER, str(exc))
    if not data:
        return Attempt(Seen.CLOSED_BEFORE_BANNER)
    if not data.startswith(b"SSH-") and b"\nSSH-" not in data:
        # Servers may send text lines before the banner; only say "not sshd" when nothing looks like one.
        first = data.split(b"\n", 1)[0].decode(errors="replace").strip()
        if len(data) >= 255:
            return Attempt(Seen.HANDSHAKE, f"the server sent {first!r}, not an SSH banner")
    return None
