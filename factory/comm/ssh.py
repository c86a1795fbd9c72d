"""The SSH communicator (paramiko): wait for a guest's sshd with diagnostics, run commands live, move files.

    comm = connect(SSHSettings(port=2222, username="root", keypair=KeyPair.generate()), alive=vm.check)
    status = comm.run("uname -a", on_line=print)
    comm.upload(b"hello", "/tmp/hello"); comm.download("/etc/os-release", Path("os-release"))

`expect` guards against reaching the wrong sshd (an installer's own): "SHA256:..." pins the host key, anything
else is a command that must exit 0 on the right system; a wrong system is skipped and the wait goes on.
"""

from __future__ import annotations

import logging
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import paramiko

from factory import secrets
from factory.comm.keys import KeyPair, load_private_key
from factory.comm.transfer import Transfer
from factory.comm.wait import Attempt, Journal, Seen, await_banner, tcp_connect
from factory.errors import FactoryError

__all__ = ["Communicator", "Disconnected", "KeyPair", "SSHSettings", "connect"]

log = logging.getLogger("factory.comm")

LineSink = Callable[[str], None]


@dataclass(frozen=True)
class SSHSettings:
    """How to reach and log in to the guest (Packer's ssh_* options, durations in seconds)."""

    host: str = "127.0.0.1"
    port: int = 22
    username: str = "root"
    password: str | None = field(default=None, repr=False)
    private_key_file: Path | str | None = None
    keypair: KeyPair | None = None
    timeout: float = 300.0
    handshake_attempts: int = 10
    pause_before_connecting: float = 0.0
    keepalive_interval: float = 5.0
    # A server that answers nothing for this long is gone (a rebooting guest behind QEMU's port forward never
    # closes the socket). Generous, because a guest busy under TCG still answers within seconds.
    dead_after: float = 30.0
    # Fast polling is what keeps "sshd up → first command" under a second.
    poll_interval: float = 0.1
    connect_timeout: float = 1.0

    @property
    def target(self) -> str:
        return f"{self.username}@{self.host}:{self.port}"

    def login_keys(self) -> list[paramiko.PKey]:
        found = [self.keypair.pkey()] if self.keypair else []
        if self.private_key_file:
            found.append(load_private_key(Path(self.private_key_file).expanduser()))
        return found


class Disconnected(FactoryError):
    """The connection dropped before the remote command reported its exit status (reboot, sshd restart)."""


def connect(settings: SSHSettings, *, alive: Callable[[], None] = lambda: None, expect: str | None = None,
            notify: LineSink | None = None) -> Communicator:
    """Wait until the guest's sshd accepts and authenticates us, then return a connected Communicator.

    alive() is called between attempts and must raise if the machine died, which ends the wait at once.
    """
    if settings.password:
        secrets.register(settings.password)
    if not settings.password and not settings.keypair and not settings.private_key_file:
        raise FactoryError(f"no SSH credentials for {settings.target}",
                           hint="set ssh_password or ssh_private_key_file, or let factory generate a key pair")
    settings.login_keys()  # an unusable key file fails now, not after minutes of waiting for the guest
    comm = Communicator(settings, alive=alive, expect=expect, notify=notify)
    comm.reconnect()
    if settings.pause_before_connecting > 0:
        # Packer's semantics: connect once to know sshd is up, then disconnect and wait before the real session.
        comm.notify(f"connected; pausing {settings.pause_before_connecting:g}s before connecting again "
                    "(pause_before_connecting)")
        comm.close()
        _sleep(settings.pause_before_connecting, alive)
        comm.reconnect()
    return comm


def _sleep(seconds: float, alive: Callable[[], None]) -> None:
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        alive()
        time.sleep(min(left, 0.5))


class _Lines:
    """Split a byte stream into masked text lines as they complete."""

    def __init__(self, sink: LineSink | None) -> None:
        self.sink, self.buf = sink, b""

    def feed(self, data: bytes) -> None:
        self.buf += data
        *lines, self.buf = self.buf.split(b"\n")
        for line in lines:
            self._emit(line)

    def flush(self) -> None:
        if self.buf:
            self._emit(self.buf)
            self.buf = b""

    def _emit(self, raw: bytes) -> None:
        if self.sink is not None:
            self.sink(secrets.mask(raw.decode(errors="replace").rstrip("\r")))


class Communicator(Transfer):
    """A live SSH session to the guest; reconnects by itself when the transport dropped (after a reboot)."""

    def __init__(self, settings: SSHSettings, *, alive: Callable[[], None] = lambda: None,
                 expect: str | None = None, notify: LineSink | None = None) -> None:
        super().__init__()
        self.settings, self.alive, self.expect = settings, alive, expect
        self._notify = notify
        self._transport: paramiko.Transport | None = None

    def notify(self, message: str) -> None:
        (self._notify or log.info)(secrets.mask(message))

    # -- connection ---------------------------------------------------------------------------------------------
    def reconnect(self, timeout: float | None = None) -> None:
        """(Re)connect, waiting up to timeout (default ssh_timeout) with the same diagnostics as the first wait."""
        self.close()
        s = self.settings
        budget = s.timeout if timeout is None else timeout
        journal = Journal()
        deadline = time.monotonic() + budget
        banner_timeout, failures = 2.0, 0
        while True:
            self.alive()
            left = max(deadline - time.monotonic(), 0.05)
            result = self._attempt(min(s.connect_timeout, left), min(banner_timeout, left))
            if isinstance(result, paramiko.Transport):
                result.set_keepalive(max(1, int(s.keepalive_interval)))
                self._transport = result
                log.debug("ssh connected to %s after %.2fs", s.target, time.monotonic() - journal.started)
                return
            journal.record(result)
            log.debug("ssh %s: %s %s", s.target, result.seen, result.detail)
            if result.seen in (Seen.HANDSHAKE, Seen.AUTH):
                failures += 1
                # With `expect`, an auth failure may be the installer's sshd: keep waiting for the real system.
                if failures >= s.handshake_attempts and not (self.expect and result.seen is Seen.AUTH):
                    raise FactoryError(
                        f"giving up on SSH to {s.target} after {failures} handshake attempts: {result.seen}"
                        + (f": {result.detail}" if result.detail else ""), hint=result.seen.hint)
            if result.seen is Seen.NO_BANNER:
                # Accepted but silent: a slow (TCG) sshd, or QEMU's forward still knocking on a guest whose
                # network is not up. Wait longer next time, but not so long that a late sshd is missed.
                banner_timeout = min(banner_timeout * 2, 15.0)
            elif result.seen in (Seen.REFUSED, Seen.CLOSED_BEFORE_BANNER):
                banner_timeout = 2.0  # the guest answers quickly again: keep attempts short
            left = deadline - time.monotonic()
            if left <= 0:
                raise journal.error(s.target, time.monotonic() - journal.started)
            pause = s.poll_interval if result.seen not in (Seen.AUTH, Seen.WRONG_SYSTEM) else 1.0
            time.sleep(min(pause, left))

    def _attempt(self, connect_timeout: float, banner_timeout: float) -> paramiko.Transport | Attempt:
        s = self.settings
        sock = tcp_connect(s.host, s.port, connect_timeout)
        if isinstance(sock, Attempt):
            return sock
        if (silent := await_banner(sock, banner_timeout)) is not None:
            sock.close()
            return silent
        transport = paramiko.Transport(sock)
        transport.banner_timeout = transport.handshake_timeout = max(15.0, banner_timeout)
        try:
            outcome = self._handshake_and_login(transport)
        except BaseException:
            transport.close()
            raise
        if outcome is not None:
            transport.close()
            return outcome
        return transport

    def _handshake_and_login(self, transport: paramiko.Transport) -> Attempt | None:
        s = self.settings
        try:
            transport.start_client(timeout=transport.handshake_timeout)
        except (paramiko.SSHException, EOFError, OSError) as exc:
            return Attempt(Seen.HANDSHAKE, str(exc) or type(exc).__name__)
        fingerprint = transport.get_remote_server_key().fingerprint
        if self.expect and self.expect.startswith("SHA256:") and fingerprint != self.expect:
            return Attempt(Seen.HOST_KEY, f"got {fingerprint}, expected {self.expect}")
        if (failed := _authenticate(transport, s)) is not None:
            return failed
        if self.expect and not self.expect.startswith("SHA256:"):
            status = _exec_quiet(transport, self.expect, timeout=max(s.keepalive_interval * 3, 30.0))
            if status != 0:
                return Attempt(Seen.WRONG_SYSTEM, f"`{self.expect}` exited with {status}")
        return None

    @property
    def transport(self) -> paramiko.Transport:
        """The live transport, reconnecting first if it dropped (e.g. after an expected reboot)."""
        if self._transport is None or not self._transport.is_active():
            if self._transport is not None:
                self.notify(f"SSH connection to {self.settings.target} was lost; reconnecting")
            self.reconnect()
        assert self._transport is not None
        return self._transport

    def is_connected(self) -> bool:
        return self._transport is not None and self._transport.is_active()

    def close(self) -> None:
        """Close the session (idempotent)."""
        self._drop_sftp()
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def __enter__(self) -> Communicator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- commands -----------------------------------------------------------------------------------------------
    def run(self, cmd: str, *, on_line: LineSink | None = None, timeout: float | None = None) -> int:
        """Run cmd through the login shell, streaming stdout and stderr lines live; return the exit status.

        Raises Disconnected if the connection drops first, FactoryError on timeout. A command killed by a signal
        (no exit status, connection still up) returns -1.
        """
        transport = self.transport
        chan = transport.open_session(timeout=30)
        chan.exec_command(cmd)
        out, err = _Lines(on_line), _Lines(on_line)
        deadline = time.monotonic() + timeout if timeout else None
        heard = time.monotonic()
        try:
            while True:
                select.select([chan], [], [], 0.2)
                got = False
                while chan.recv_ready():
                    out.feed(chan.recv(65536))
                    got = True
                while chan.recv_stderr_ready():
                    err.feed(chan.recv_stderr(65536))
                    got = True
                if chan.exit_status_ready() and not chan.recv_ready() and not chan.recv_stderr_ready():
                    break
                now = time.monotonic()
                if got:
                    heard = now
                elif now - heard > self.settings.keepalive_interval:
                    if not _responsive(transport, self.settings.dead_after):
                        raise self._lost(cmd)
                    heard = now
                if deadline is not None and now > deadline:
                    raise FactoryError(f"remote command timed out after {timeout:g}s: {secrets.mask(cmd)}",
                                       hint="raise the provisioner's timeout, or check why the command hangs")
        finally:
            out.flush()
            err.flush()
            chan.close()
        # paramiko keeps -1 until an exit-status message arrives (it also sets status_event on a bare close).
        if chan.exit_status != -1:
            return int(chan.exit_status)
        # Closed without a status: either the connection died (reboot) or the command was killed by a signal.
        if not transport.is_active() or not _responsive(transport, 3.0):
            raise self._lost(cmd)
        return -1

    def _lost(self, cmd: str) -> Disconnected:
        if self._transport is not None:
            self._transport.close()
        self._drop_sftp()
        return Disconnected(f"the SSH connection to {self.settings.target} dropped while running: "
                            f"{secrets.mask(cmd)}",
                            hint='if the command reboots the guest or restarts sshd, set expect_disconnect = true')

    def _sftp_transport(self) -> paramiko.Transport:
        return self.transport


def _authenticate(transport: paramiko.Transport, s: SSHSettings) -> Attempt | None:
    """Try each key, then the password (also through keyboard-interactive); None when logged in."""
    tried: list[str] = []
    for key in s.login_keys():
        try:
            transport.auth_publickey(s.username, key)
            return None
        except paramiko.AuthenticationException as exc:
            tried.append(f"{key.get_name()} key: {exc}")
        except (paramiko.SSHException, EOFError, OSError) as exc:
            return Attempt(Seen.HANDSHAKE, f"during authentication: {exc}")
    if s.password:
        password = s.password
        try:
            transport.auth_password(s.username, password)
            return None
        except paramiko.BadAuthenticationType as exc:
            if "keyboard-interactive" not in exc.allowed_types:
                tried.append(f"password not allowed (server allows {', '.join(exc.allowed_types)})")
                return Attempt(Seen.AUTH, f"user {s.username!r}: " + "; ".join(tried))
        except paramiko.AuthenticationException as exc:
            tried.append(f"password: {exc}")
            return Attempt(Seen.AUTH, f"user {s.username!r}: " + "; ".join(tried))
        except (paramiko.SSHException, EOFError, OSError) as exc:
            return Attempt(Seen.HANDSHAKE, f"during authentication: {exc}")
        try:
            transport.auth_interactive(s.username, lambda _t, _i, prompts: [password for _ in prompts])
            return None
        except (paramiko.SSHException, EOFError, OSError) as exc:
            tried.append(f"keyboard-interactive: {exc}")
    return Attempt(Seen.AUTH, f"user {s.username!r}: " + "; ".join(tried))


def _exec_quiet(transport: paramiko.Transport, cmd: str, timeout: float) -> int:
    chan = transport.open_session(timeout=timeout)
    try:
        chan.settimeout(timeout)
        chan.exec_command(cmd)
        chan.status_event.wait(timeout)
        return int(chan.exit_status)
    finally:
        chan.close()


def _responsive(transport: paramiko.Transport, timeout: float) -> bool:
    """Does the server still answer? A global request wants a reply, even a refusal: silence means dead.

    Needed because a rebooting guest behind QEMU's port forward vanishes without closing the host socket.
    """
    if not transport.is_active():
        return False
    answered = threading.Event()

    def ask() -> None:
        try:
            transport.global_request("keepalive@openssh.com", wait=True)
        except Exception:  # the transport died: leave `answered` unset
            return
        if transport.is_active():
            answered.set()

    threading.Thread(target=ask, daemon=True, name="ssh-liveness").start()
    return answered.wait(timeout)
