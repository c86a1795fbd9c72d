"""The SSH communicator (paramiko): wait for a guest's sshd with diagnostics, run commands live, move files.

    comm = connect(SSHSettings(port=2222, username="root", keypair=KeyPair.generate()), alive=vm.check)
    status = comm.run("uname -a", on_line=print)
    comm.upload(b"hello", "/tmp/hello"); comm.download("/etc/os-release", Path("os-release"))

`expect` guards against reaching the wrong sshd (an installer's own): "SHA256:..." pins the host key, anything
else is a command that must exit 0 on the right system; a wrong system is skipped and the wait goes on.

Packer's other communicator options live beside it: the route to sshd (route.py: SOCKS5 proxy, bastion), the
login (auth.py: keys with certificates, agent, password, keyboard-interactive), algorithms (algorithms.py),
tunnels (tunnel.py) and SCP transfers (scp.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import paramiko
import paramiko.agent

from factory import secrets
from factory.comm import algorithms, close_quietly
from factory.comm.auth import Login, authenticate
from factory.comm.keys import KeyPair, load_private_key
from factory.comm.route import Bastion, Proxy, Route
from factory.comm.transfer import Transfer
from factory.comm.tunnel import Tunnel, Tunnels
from factory.comm.wait import Attempt, Journal, Seen
from factory.errors import FactoryError

__all__ = ["Bastion", "Communicator", "Disconnected", "KeyPair", "Proxy", "SSHSettings", "Tunnel", "connect"]

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
    keepalive_interval: float = 5.0      # <= 0: no keep-alives (ssh_keep_alive_interval = "-1s")
    # A server that answers nothing for this long is gone (a rebooting guest behind QEMU's port forward never
    # closes the socket). Generous, because a guest busy under TCG still answers within seconds.
    dead_after: float = 30.0
    # Fast polling is what keeps "sshd up → first command" under a second.
    poll_interval: float = 0.05
    connect_timeout: float = 1.0
    pty: bool = False                    # ssh_pty: commands run on a pseudo-terminal (stderr joins stdout)
    agent_auth: bool = False             # ssh_agent_auth: also offer the keys of the agent at SSH_AUTH_SOCK
    forward_agent: bool = True           # not ssh_disable_agent_forwarding: as Packer, when SSH_AUTH_SOCK is set
    certificate_file: Path | str | None = None   # ssh_certificate_file, for private_key_file
    ciphers: tuple[str, ...] = ()        # ssh_ciphers (checked names, in preference order)
    kex_algorithms: tuple[str, ...] = ()  # ssh_key_exchange_algorithms
    file_transfer: str = "sftp"          # ssh_file_transfer_method: "sftp" or "scp"
    read_write_timeout: float | None = None  # ssh_read_write_timeout: silence after which the server is gone
    local_tunnels: tuple[Tunnel, ...] = ()
    remote_tunnels: tuple[Tunnel, ...] = ()
    bastion: Bastion | None = None
    proxy: Proxy | None = None

    @property
    def target(self) -> str:
        return f"{self.username}@{self.host}:{self.port}"

    def login_keys(self) -> list[paramiko.PKey]:
        found = [self.keypair.pkey()] if self.keypair else []
        if self.private_key_file:
            cert = Path(self.certificate_file).expanduser() if self.certificate_file else None
            found.append(load_private_key(Path(self.private_key_file).expanduser(), certificate=cert))
        elif self.certificate_file:
            raise FactoryError("ssh_certificate_file needs ssh_private_key_file (the key the certificate signs)",
                               hint="set ssh_private_key_file to the private key of the certificate")
        return found

    def login(self) -> Login:
        return Login(self.username, self.password, tuple(self.login_keys()), agent=self.agent_auth)

    @property
    def silence_limit(self) -> float:
        """How long the server may answer nothing, liveness probes included, before it counts as gone."""
        return self.read_write_timeout or self.dead_after

    @property
    def probe_every(self) -> float | None:
        """After this much silence during a command, ask the server whether it is still there."""
        if self.keepalive_interval > 0:
            return self.keepalive_interval
        return self.read_write_timeout / 2 if self.read_write_timeout else None


class Disconnected(FactoryError):
    """The connection dropped before the remote command reported its exit status (reboot, sshd restart)."""


def connect(settings: SSHSettings, *, alive: Callable[[], None] = lambda: None, expect: str | None = None,
            notify: LineSink | None = None) -> Communicator:
    """Wait until the guest's sshd accepts and authenticates us, then return a connected Communicator.

    alive() is called between attempts and must raise if the machine died, which ends the wait at once.
    """
    if settings.password:
        secrets.register(settings.password)
    # Unusable credentials or algorithms fail now, not after minutes of waiting for the guest.
    settings.login().check(settings.target)
    dropped = (algorithms.choose("ssh_ciphers", settings.ciphers, algorithms.CIPHERS)[1]
               + algorithms.choose("ssh_key_exchange_algorithms", settings.kex_algorithms, algorithms.KEX)[1])
    comm = Communicator(settings, alive=alive, expect=expect, notify=notify)
    if dropped:
        comm.notify(f"not offered (factory's SSH lacks them): {', '.join(dropped)}")
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
        super().__init__(settings.file_transfer, settings.read_write_timeout)
        self.settings, self.alive, self.expect = settings, alive, expect
        self._notify = notify
        self._transport: paramiko.Transport | None = None
        self._login = settings.login()
        self._route = Route(settings.host, settings.port, proxy=settings.proxy, bastion=settings.bastion)
        self._tunnels = Tunnels(settings.local_tunnels, settings.remote_tunnels, lambda: self._transport)
        self._deferred: list[str] = []

    def notify(self, message: str) -> None:
        (self._notify or log.info)(secrets.mask(message))

    # -- connection ---------------------------------------------------------------------------------------------
    def reconnect(self, timeout: float | None = None) -> None:
        """(Re)connect, waiting up to timeout (default ssh_timeout) with the same diagnostics as the first wait."""
        self._disconnect()
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
                if s.keepalive_interval > 0:
                    result.set_keepalive(max(1, round(s.keepalive_interval)))
                self._transport = result
                self._tunnels.attach(result)
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
                raise journal.error(s.target + self._route.describe(), time.monotonic() - journal.started)
            pause = s.poll_interval if result.seen not in (Seen.AUTH, Seen.WRONG_SYSTEM) else 1.0
            time.sleep(min(pause, left))

    def _attempt(self, connect_timeout: float, banner_timeout: float) -> paramiko.Transport | Attempt:
        s = self.settings
        stream = self._route.open(connect_timeout, banner_timeout)
        if isinstance(stream, Attempt):
            return stream
        transport = paramiko.Transport(stream)
        algorithms.restrict(transport, algorithms.choose("ssh_ciphers", s.ciphers, algorithms.CIPHERS)[0],
                            algorithms.choose("ssh_key_exchange_algorithms", s.kex_algorithms, algorithms.KEX)[0])
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
        if (failed := authenticate(transport, self._login)) is not None:
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
        """Run what was deferred (if the guest is still there), then close the session, its tunnels and the route
        (bastion) (idempotent)."""
        if self._deferred and self.is_connected():
            with contextlib.suppress(FactoryError, OSError, EOFError, paramiko.SSHException):
                self._run_deferred(timeout=30.0)
        self._deferred.clear()
        self._disconnect()
        self._tunnels.close()
        self._route.close()

    def _disconnect(self) -> None:
        self._drop_sftp()
        if self._transport is not None:
            self._transport.close()
            self._transport = None

    def __enter__(self) -> Communicator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- commands -----------------------------------------------------------------------------------------------
    def defer(self, cmd: str) -> None:
        """Run cmd (a cleanup such as `rm -f`) just before the next command, on its line, or before the next file
        transfer, or at close: whichever comes first. Its exit status is not looked at.

        Each command is an SSH session of its own, which costs the guest a fork, a PAM and a logind session
        (~0.2 s under emulation): a shell provisioner's cleanup then rides with the next command (another
        script, the checkpoint's `sync`, the shutdown_command) instead. The lines are joined with newlines, a
        command separator in sh, csh and fish alike, so the next command's exit status stays its own."""
        self._deferred.append(cmd)

    def _run_deferred(self, timeout: float | None) -> None:
        pending = "\n".join(self._deferred)
        self._deferred.clear()
        self.run(pending, on_line=lambda line: None, timeout=timeout)

    def run(self, cmd: str, *, on_line: LineSink | None = None, timeout: float | None = None,
            stdin: bytes | None = None) -> int:
        """Run cmd through the login shell, streaming stdout and stderr lines live; return the exit status.

        stdin, if given, is fed to the command and then closed (EOF); without it the command's stdin stays open
        and empty, as with Packer. Raises Disconnected if the connection drops first, FactoryError on timeout. A
        command killed by a signal (no exit status, connection still up) returns -1.
        """
        transport = self.transport
        line = "\n".join([*self._deferred, cmd])  # what defer() queued runs first (rm -f, so nothing to show)
        self._deferred.clear()
        chan = transport.open_session(timeout=30)
        forwarding = self._session_options(chan)
        chan.exec_command(line)
        if stdin is not None:
            # Fed from a thread: a command that writes before it reads cannot deadlock against a full window.
            threading.Thread(target=_feed, args=(chan, stdin), daemon=True, name="ssh-stdin").start()
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
                elif (probe := self.settings.probe_every) is not None and now - heard > probe:
                    if not _responsive(transport, self.settings.silence_limit):
                        raise self._lost(cmd)
                    heard = now
                if deadline is not None and now > deadline:
                    raise FactoryError(f"remote command timed out after {timeout:g}s: {secrets.mask(cmd)}",
                                       hint="raise the provisioner's timeout, or check why the command hangs")
        finally:
            out.flush()
            err.flush()
            close_quietly(chan)  # after a shutdown_command or a reboot the guest may be gone already
            if forwarding is not None:
                forwarding.close()
        # paramiko keeps -1 until an exit-status message arrives (it also sets status_event on a bare close).
        if chan.exit_status != -1:
            return int(chan.exit_status)
        # Closed without a status: either the connection died (reboot) or the command was killed by a signal.
        if not transport.is_active() or not _responsive(transport, 3.0):
            raise self._lost(cmd)
        return -1

    def _session_options(self, chan: paramiko.Channel) -> paramiko.agent.AgentRequestHandler | None:
        """ssh_pty and agent forwarding (Packer forwards the local agent unless ssh_disable_agent_forwarding)."""
        s = self.settings
        if s.pty:
            chan.get_pty(term="xterm", width=80, height=40)  # Packer's terminal type and size
        if s.forward_agent and os.environ.get("SSH_AUTH_SOCK"):
            return paramiko.agent.AgentRequestHandler(chan)
        return None

    def _lost(self, cmd: str) -> Disconnected:
        if self._transport is not None:
            self._transport.close()
        self._drop_sftp()
        return Disconnected(f"the SSH connection to {self.settings.target} dropped while running: "
                            f"{secrets.mask(cmd)}",
                            hint='if the command reboots the guest or restarts sshd, set expect_disconnect = true')

    def _sftp_transport(self) -> paramiko.Transport:
        if self._deferred:  # a deferred `rm -f` must not remove what the transfer is about to write
            self._run_deferred(timeout=None)
        return self.transport


def _feed(chan: paramiko.Channel, data: bytes) -> None:
    try:
        chan.sendall(data)
        chan.shutdown_write()
    except (OSError, EOFError, paramiko.SSHException):
        pass  # the command ended or the connection dropped: run() reports that


def _exec_quiet(transport: paramiko.Transport, cmd: str, timeout: float) -> int:
    chan = transport.open_session(timeout=timeout)
    try:
        chan.settimeout(timeout)
        chan.exec_command(cmd)
        chan.status_event.wait(timeout)
        return int(chan.exit_status)
    finally:
        close_quietly(chan)


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
