"""How the bytes reach the guest's sshd: directly, through a SOCKS5 proxy (ssh_proxy_*), or through a bastion
(jump host, ssh_bastion_*: an SSH login there, then a direct-tcpip channel to the target).

Each attempt returns a stream paramiko can run SSH over, or the Attempt that says why not, so the wait's
diagnostics work the same on every route. Wrong proxy or bastion credentials are errors at once: waiting for
the guest cannot fix them.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

import paramiko
from python_socks import ProxyConnectionError, ProxyError, ProxyTimeoutError, ProxyType
from python_socks.sync import Proxy as SocksProxy

from factory import secrets
from factory.comm.auth import Login, authenticate
from factory.comm.keys import load_private_key
from factory.comm.wait import Attempt, Seen, await_banner, tcp_connect
from factory.errors import FactoryError

# SOCKS5 reply codes (RFC 1928 section 6) that mean "the target is not there (yet)": keep waiting.
_SOCKS_WAIT = {1: Seen.REFUSED, 3: Seen.UNREACHABLE, 4: Seen.UNREACHABLE, 5: Seen.REFUSED, 6: Seen.CONNECT_TIMEOUT}


@dataclass(frozen=True)
class Proxy:
    """A SOCKS5 proxy (ssh_proxy_host/port/username/password); the proxy resolves the target's name."""

    host: str
    port: int = 1080
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    def connect(self, host: str, port: int, timeout: float) -> socket.socket | Attempt:
        where = f"SOCKS proxy {self.host}:{self.port}"
        proxy = SocksProxy(ProxyType.SOCKS5, self.host, self.port, username=self.username,
                           password=self.password, rdns=True)
        try:
            sock = proxy.connect(host, port, timeout=timeout)
        except ProxyTimeoutError:
            return Attempt(Seen.CONNECT_TIMEOUT, f"{where}: no answer within {timeout:g}s")
        except ProxyConnectionError as exc:
            return Attempt(Seen.REFUSED, f"{where} is not reachable: {exc}")
        except ProxyError as exc:
            if exc.error_code in _SOCKS_WAIT:
                return Attempt(_SOCKS_WAIT[exc.error_code], f"{where} could not reach {host}:{port}: {exc}")
            raise FactoryError(f"the {where} refused the connection to {host}:{port}: {secrets.mask(str(exc))}",
                               hint="check ssh_proxy_username/ssh_proxy_password and the proxy's rules"
                               ) from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


@dataclass(frozen=True)
class Bastion:
    """A jump host (ssh_bastion_*); without its own key it uses ssh_private_key_file, as Packer does."""

    host: str
    port: int = 22
    username: str = "root"
    password: str | None = field(default=None, repr=False)
    private_key_file: Path | None = None
    certificate_file: Path | None = None
    agent_auth: bool = False
    interactive: bool = False

    @property
    def target(self) -> str:
        return f"{self.username}@{self.host}:{self.port}"

    def login(self) -> Login:
        keys = (load_private_key(self.private_key_file, certificate=self.certificate_file,
                                 option="ssh_bastion_private_key_file"),) if self.private_key_file else ()
        return Login(self.username, self.password, keys, agent=self.agent_auth, interactive=self.interactive)


class Route:
    """Opens one stream to host:port per connection attempt, over the chosen route."""

    def __init__(self, host: str, port: int, *, proxy: Proxy | None = None, bastion: Bastion | None = None) -> None:
        if proxy is not None and bastion is not None:
            raise FactoryError("ssh_bastion_host and ssh_proxy_host cannot both be set",
                               hint="keep one of them, as in Packer")
        self.host, self.port, self.proxy, self.bastion = host, port, proxy, bastion
        self._jump: paramiko.Transport | None = None
        if bastion is not None:
            if bastion.password:
                secrets.register(bastion.password)
            bastion.login().check(f"the bastion {bastion.target}")
        if proxy is not None and proxy.password:
            secrets.register(proxy.password)

    def describe(self) -> str:
        if self.bastion is not None:
            return f" through the bastion {self.bastion.target}"
        if self.proxy is not None:
            return f" through the SOCKS proxy {self.proxy.host}:{self.proxy.port}"
        return ""

    def open(self, connect_timeout: float, banner_timeout: float) -> socket.socket | paramiko.Channel | Attempt:
        """A stream whose sshd has started to speak, or why there is none yet."""
        if self.bastion is not None:
            return self._through_bastion(connect_timeout, banner_timeout)
        if self.proxy is not None:
            sock = self.proxy.connect(self.host, self.port, connect_timeout)
        else:
            sock = tcp_connect(self.host, self.port, connect_timeout)
        if isinstance(sock, Attempt):
            return sock
        if (silent := await_banner(sock, banner_timeout)) is not None:
            sock.close()
            return silent
        return sock

    def close(self) -> None:
        if self._jump is not None:
            self._jump.close()
            self._jump = None

    # -- bastion --------------------------------------------------------------------------------------------
    def _through_bastion(self, connect_timeout: float, banner_timeout: float) -> paramiko.Channel | Attempt:
        jump = self._jump_transport(connect_timeout, banner_timeout)
        if isinstance(jump, Attempt):
            return jump
        try:
            chan = jump.open_channel("direct-tcpip", (self.host, self.port), ("127.0.0.1", 0),
                                     timeout=max(connect_timeout, 5.0))
        except paramiko.ChannelException as exc:
            return Attempt(Seen.REFUSED, f"the bastion could not connect to {self.host}:{self.port}: {exc.text}")
        except (paramiko.SSHException, EOFError, OSError) as exc:
            self.close()
            return Attempt(Seen.REFUSED, f"the bastion {self.bastion and self.bastion.target} dropped: {exc}")
        # As await_banner does for a socket: has the target's sshd spoken (without consuming its banner)?
        deadline = time.monotonic() + banner_timeout
        while not chan.recv_ready():
            if chan.closed or chan.eof_received:
                chan.close()
                return Attempt(Seen.CLOSED_BEFORE_BANNER, "(through the bastion)")
            if time.monotonic() > deadline:
                chan.close()
                return Attempt(Seen.NO_BANNER, f"nothing received within {banner_timeout:g}s (through the bastion)")
            time.sleep(0.01)
        return chan

    def _jump_transport(self, connect_timeout: float, banner_timeout: float) -> paramiko.Transport | Attempt:
        if self._jump is not None and self._jump.is_active():
            return self._jump
        bastion = self.bastion
        assert bastion is not None
        sock = tcp_connect(bastion.host, bastion.port, connect_timeout)
        if isinstance(sock, Attempt):
            return Attempt(sock.seen, f"bastion {bastion.host}:{bastion.port}: {sock.detail or sock.seen}")
        transport = paramiko.Transport(sock)
        try:
            transport.start_client(timeout=max(15.0, banner_timeout))
            failed = authenticate(transport, bastion.login())
        except (paramiko.SSHException, EOFError, OSError) as exc:
            transport.close()
            return Attempt(Seen.HANDSHAKE, f"bastion {bastion.target}: {exc}")
        except BaseException:
            transport.close()
            raise
        if failed is not None:
            transport.close()
            if failed.seen is Seen.AUTH:
                raise FactoryError(f"cannot log in to the bastion {bastion.target}: {failed.detail}",
                                   hint="check ssh_bastion_username and ssh_bastion_password / "
                                        "ssh_bastion_private_key_file / ssh_bastion_agent_auth")
            return Attempt(failed.seen, f"bastion {bastion.target}: {failed.detail}")
        transport.set_keepalive(5)
        self._jump = transport
        return transport
