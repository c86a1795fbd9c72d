"""Port tunnels over the SSH connection (ssh_local_tunnels, ssh_remote_tunnels), in OpenSSH's
`port:host:hostport` form, as `ssh -L` and `ssh -R` do:

- local "8080:localhost:3000": factory listens on 127.0.0.1:8080 on the build host; each connection is carried
  to localhost:3000 as seen from the guest;
- remote "9090:localhost:80": the guest's sshd listens on localhost:9090; each connection is carried back to
  localhost:80 as seen from the build host.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from collections.abc import Callable

import paramiko

from factory.errors import FactoryError
from factory.schema.values import Tunnel, tunnels

__all__ = ["Tunnel", "Tunnels", "tunnels"]


def _pump(a: socket.socket | paramiko.Channel, b: socket.socket | paramiko.Channel) -> None:
    """Copy bytes both ways until either side closes."""
    try:
        while True:
            ready, _, _ = select.select([a, b], [], [], 1.0)
            for src, dst in ((a, b), (b, a)):
                if src in ready:
                    data = src.recv(65536)
                    if not data:
                        return
                    dst.sendall(data)
    except OSError:
        return
    finally:
        for end in (a, b):
            with contextlib.suppress(OSError):
                end.close()


def _spawn(target: Callable[..., None], *args: object) -> None:
    threading.Thread(target=target, args=args, daemon=True, name="ssh-tunnel").start()


class Tunnels:
    """The tunnels of one communicator: local listeners live as long as it does, remote forwards are asked
    for again on every new transport (after a reboot)."""

    def __init__(self, local: tuple[Tunnel, ...], remote: tuple[Tunnel, ...],
                 transport_of: Callable[[], paramiko.Transport | None]) -> None:
        self.local, self.remote, self.transport_of = local, remote, transport_of
        self._listeners: list[socket.socket] = []
        self._closed = threading.Event()

    def attach(self, transport: paramiko.Transport) -> None:
        """Start what this transport needs: local listeners (once), remote forwards (each time)."""
        if self.local and not self._listeners:
            self._closed = threading.Event()  # a fresh start after close()
            for tunnel in self.local:
                self._listen(tunnel)
        by_port = {t.listen_port: t for t in self.remote}
        for tunnel in self.remote:
            try:
                transport.request_port_forward("localhost", tunnel.listen_port, self._on_remote(by_port))
            except paramiko.SSHException as exc:
                raise FactoryError(f"ssh_remote_tunnels {tunnel}: the guest's sshd refused to listen on "
                                   f"localhost:{tunnel.listen_port}: {exc}",
                                   hint="the port may be taken in the guest, or sshd has AllowTcpForwarding no"
                                   ) from None

    def _listen(self, tunnel: Tunnel) -> None:
        try:
            listener = socket.create_server(("127.0.0.1", tunnel.listen_port))
        except OSError as exc:
            self.close()
            raise FactoryError(f"ssh_local_tunnels {tunnel}: cannot listen on 127.0.0.1:{tunnel.listen_port}: "
                               f"{exc.strerror or exc}", hint="choose a free local port") from None
        listener.settimeout(0.5)
        self._listeners.append(listener)
        _spawn(self._accept, listener, tunnel, self._closed)

    def _accept(self, listener: socket.socket, tunnel: Tunnel, closed: threading.Event) -> None:
        while not closed.is_set():
            try:
                client, peer = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            transport = self.transport_of()
            try:
                if transport is None or not transport.is_active():
                    raise paramiko.SSHException("not connected")
                chan = transport.open_channel("direct-tcpip", (tunnel.host, tunnel.port), peer, timeout=30)
            except (paramiko.SSHException, OSError):
                client.close()  # the guest could not reach the target: the client sees a closed connection
                continue
            _spawn(_pump, client, chan)

    def _on_remote(self, by_port: dict[int, Tunnel]) -> Callable[[paramiko.Channel, tuple[str, int],
                                                                 tuple[str, int]], None]:
        def handler(chan: paramiko.Channel, origin: tuple[str, int], server: tuple[str, int]) -> None:
            tunnel = by_port.get(server[1])
            if tunnel is None:
                chan.close()
                return
            _spawn(self._connect_back, chan, tunnel)
        return handler

    @staticmethod
    def _connect_back(chan: paramiko.Channel, tunnel: Tunnel) -> None:
        try:
            sock = socket.create_connection((tunnel.host, tunnel.port), timeout=30)
        except OSError:
            chan.close()
            return
        sock.settimeout(None)
        _pump(sock, chan)

    def close(self) -> None:
        self._closed.set()
        for listener in self._listeners:
            listener.close()
        self._listeners.clear()
