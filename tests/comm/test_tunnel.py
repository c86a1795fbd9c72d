"""ssh_local_tunnels / ssh_remote_tunnels through a real sshd: `ss` shows sshd carries the connections."""

from __future__ import annotations

import socket
import socketserver
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.sshd import SshServer, free_port

from factory.comm.ssh import connect
from factory.comm.tunnel import Tunnel, tunnels
from factory.errors import FactoryError


class _Echo(socketserver.BaseRequestHandler):
    """Echoes one line prefixed with the name of the process that connected to us (from `ss -tnp`)."""

    def handle(self) -> None:
        peer_port = self.request.getpeername()[1]
        owner = subprocess.run(["ss", "-Htnp", "state", "established", f"( sport = :{peer_port} )"],
                               capture_output=True, text=True).stdout
        name = owner.split('(("', 1)[1].split('"', 1)[0] if '(("' in owner else "?"
        data = self.request.recv(1024)
        self.request.sendall(name.encode() + b":" + data)


@pytest.fixture
def echo() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def _ask(port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"ping")
        return s.recv(1024).decode()


def test_local_tunnel_reaches_the_target_from_the_guest_side(sshd: SshServer, echo: int) -> None:
    port = free_port()
    with connect(sshd.settings(local_tunnels=(Tunnel(port, "127.0.0.1", echo),))) as c:
        assert _ask(port) == "sshd:ping"  # the connection to the target was made by sshd, not by us
        assert _ask(port) == "sshd:ping"
        c.reconnect()  # after a reboot the listener carries on over the new connection
        assert _ask(port) == "sshd:ping"
    with pytest.raises(OSError):
        _ask(port)  # closed with the communicator


def test_remote_tunnel_listens_in_the_guest_and_comes_back_to_the_host(sshd: SshServer, echo: int) -> None:
    port = free_port()
    lines: list[str] = []
    with connect(sshd.settings(remote_tunnels=(Tunnel(port, "127.0.0.1", echo),))) as c:
        listeners = subprocess.run(["ss", "-Htlnp", f"( sport = :{port} )"], capture_output=True,
                                   text=True).stdout
        assert '(("sshd"' in listeners  # the guest's sshd listens on the port
        # A program in the guest connects to localhost:PORT and reaches our echo server on the host.
        assert c.run(f"exec 3<>/dev/tcp/127.0.0.1/{port}; printf ping >&3; head -c 40 <&3; echo",
                     on_line=lines.append, timeout=20) == 0
    # ... and the connection to the echo server came from factory (this process), not from sshd.
    assert lines == [Path("/proc/self/comm").read_text().strip() + ":ping"]


def test_tunnel_forms_are_checked() -> None:
    assert tunnels(["8080:localhost:3000", "9000:[::1]:22"], "ssh_local_tunnels") == (
        Tunnel(8080, "localhost", 3000), Tunnel(9000, "::1", 22))
    for bad in ("8080", "8080:localhost", "x:localhost:3000", "8080:localhost:99999", "8080::22"):
        with pytest.raises(FactoryError, match="is not PORT:HOST:PORT"):
            tunnels([bad], "ssh_local_tunnels")


def test_busy_local_port_is_a_clear_error(sshd: SshServer) -> None:
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        with pytest.raises(FactoryError, match=f"cannot listen on 127.0.0.1:{port}"):
            connect(sshd.settings(local_tunnels=(Tunnel(port, "127.0.0.1", 1),)))
