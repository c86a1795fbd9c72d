"""The guest's SSH forward of a remote libvirt host (`qemu+ssh://user@host/system`), brought to this host.

On a remote host the domain's user-mode NIC forwards the guest's SSH port to *that* host's 127.0.0.1, which the
build host cannot reach. factory opens the same SSH connection libvirt uses (user, host, port and keyfile from
the URI) with a local forward 127.0.0.1:LOCAL -> host's 127.0.0.1:REMOTE, so nothing on the remote host listens
beyond its loopback and nothing assumes a shared network either.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from factory.errors import FactoryError
from factory.machine.ports import PortLease, reserve
from factory.run import die_with_parent, which

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class SshTarget:
    """Where libvirt's ssh transport logs in (from the URI)."""

    host: str
    user: str | None = None
    port: int | None = None
    keyfile: str | None = None
    verify: bool = True

    def argv(self) -> list[str]:
        args = ["-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes", "-o", "ServerAliveInterval=15"]
        if self.port:
            args += ["-p", str(self.port)]
        if self.keyfile:
            args += ["-i", self.keyfile]
        if not self.verify:   # the URI's no_verify=1, as libvirt passes it
            args += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
        return [*args, f"{self.user}@{self.host}" if self.user else self.host]


def ssh_target(uri: str) -> SshTarget | None:
    """The SSH login of a `...+ssh://` URI; None for a local URI."""
    parts = urlsplit(uri)
    if not parts.scheme.endswith("+ssh") or not parts.hostname:
        return None
    query = parse_qs(parts.query)
    keyfile = query.get("keyfile", [None])[0]
    return SshTarget(host=parts.hostname, user=parts.username, port=parts.port, keyfile=keyfile,
                     verify=query.get("no_verify", ["0"])[0] != "1")


def _listening(port: int) -> bool:
    """Whether something listens on 127.0.0.1:port, from the kernel's table: a test connection would go through
    the tunnel to the guest and count as a (dropped) client there."""
    return f" 0100007F:{port:04X} 00000000:0000 0A " in Path("/proc/net/tcp").read_text()


class SshTunnel:
    """`ssh -N -L` from a free local port to the remote host's loopback port; stop() ends it (idempotent)."""

    def __init__(self, target: SshTarget) -> None:
        self.target = target
        self.proc: subprocess.Popen[bytes] | None = None
        self.lease: PortLease | None = None

    def open(self, remote_port: int, low: int, high: int, *, timeout: float = 60) -> int:
        self.lease = reserve(low, high, purpose="the SSH tunnel to the libvirt host", host=LOOPBACK)
        local = self.lease.port
        argv = [which("ssh"), "-N", "-L", f"{LOOPBACK}:{local}:{LOOPBACK}:{remote_port}", *self.target.argv()]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True, preexec_fn=die_with_parent)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace").strip() if self.proc.stderr else ""
                self.stop()
                raise FactoryError(f"the SSH tunnel to {self.target.host} for the guest's SSH port failed: {err}",
                                   hint="factory logs in as libvirt does (the URI's user, port and keyfile)")
            if _listening(local):
                return local
            time.sleep(0.2)
        self.stop()
        raise FactoryError(f"the SSH tunnel to {self.target.host} did not open within {timeout:g}s")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            if self.proc.stderr is not None:
                self.proc.stderr.close()
            self.proc = None
        if self.lease is not None:
            self.lease.release()
            self.lease = None
