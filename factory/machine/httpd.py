"""The built-in HTTP server for http_directory / http_content, one per build on a reserved port.

With QEMU user networking the guest reaches the host's loopback as 10.0.2.2 (IPv6: fec0::2 → ::1), so binding
loopback is enough and exposes nothing to the network (http_bind_address widens it when a template asks).
The port is leased by binding the server's own socket, so no other program can take it in between.

One deliberate difference from Packer's server: a cloud-init NoCloud seed (a folder with `meta-data`) that has
no `vendor-data` gets an empty one instead of a 404. cloud-init (22.x, Debian 12's and Ubuntu 22.04's) retries
a 404 on vendor-data ten times a second apart before it goes on without it, which held every nocloud-net boot
for 10 s before SSH came up; an empty vendor-data means the same to it as none. A vendor-data that exists is
served as it is.
"""

from __future__ import annotations

import errno
import functools
import http.server
import io
import ipaddress
import socket
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from factory.errors import FactoryError
from factory.machine.ports import PortLease, lease

GUEST_HOST_IP = "10.0.2.2"
GUEST_HOST_IP6 = "fec0::2"
PROTOCOLS = ("tcp", "tcp4", "tcp6")


OPTIONAL_SEED_PART = "vendor-data"
POLL = 0.05  # seconds between serve_forever's checks for shutdown(): how long stopping the server takes


def absent_optional_seed_part(path: str, exists: Callable[[str], bool]) -> bool:
    """Whether `path` (slash-separated) asks for the vendor-data of a NoCloud seed that has meta-data but no
    vendor-data: served empty (see the module's docstring)."""
    folder, _, name = path.rpartition("/")
    return name == OPTIONAL_SEED_PART and not exists(path) and exists(f"{folder}/meta-data")


def _serve_empty(handler: http.server.BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "0")
    handler.end_headers()
    _log(handler, "%s", f"{OPTIONAL_SEED_PART} is not in the seed: served empty (cloud-init retries a 404 on it)")


class _ContentHandler(http.server.SimpleHTTPRequestHandler):
    content: Mapping[str, bytes] = {}

    def _lookup(self, path: str) -> bytes | None:
        return self.content.get(path) or self.content.get(path.lstrip("/"))

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        body = self._lookup(path)
        if body is None and absent_optional_seed_part(path, lambda p: self._lookup(p) is not None):
            _serve_empty(self)
            return
        if body is None:
            self.send_error(404, "not in http_content")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        _log(self, format, *args)


class _DirHandler(http.server.SimpleHTTPRequestHandler):
    def send_head(self) -> Any:
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        if absent_optional_seed_part(path, lambda p: Path(self.translate_path(p)).is_file()):
            _serve_empty(self)
            return io.BytesIO(b"")
        return super().send_head()

    def log_message(self, format: str, *args: Any) -> None:
        _log(self, format, *args)


def _log(handler: http.server.BaseHTTPRequestHandler, format: str, *args: Any) -> None:
    server = handler.server
    emit = getattr(server, "emit", None)
    if emit is not None:
        emit(f"http: {handler.address_string()} {format % args}")


class _Server6(http.server.ThreadingHTTPServer):
    """IPv6 only (Go's tcp6): a v4-mapped client must not reach a server the template asked to keep on IPv6."""

    address_family = socket.AF_INET6

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        super().server_bind()


def listen_address(bind: str, protocol: str) -> tuple[str, bool]:
    """The address to bind for http_network_protocol, and whether it is IPv6; bad pairs are user errors."""
    if protocol not in PROTOCOLS:
        raise FactoryError(f"http_network_protocol {protocol!r}: the guest cannot reach a host socket file",
                           hint="use tcp, tcp4 or tcp6")
    try:
        ip = ipaddress.ip_address(bind)
    except ValueError:
        raise FactoryError(f"http_bind_address {bind!r} is not an IP address",
                           hint="e.g. 127.0.0.1 (default), 0.0.0.0, ::1") from None
    if protocol == "tcp6" and ip.version == 4:
        if not (ip.is_loopback or ip.is_unspecified):
            raise FactoryError(f"http_bind_address {bind} is IPv4 but http_network_protocol is tcp6",
                               hint="give an IPv6 address (e.g. ::1) or use tcp4")
        return ("::1" if ip.is_loopback else "::"), True
    if protocol == "tcp4" and ip.version == 6:
        raise FactoryError(f"http_bind_address {bind} is IPv6 but http_network_protocol is tcp4",
                           hint="give an IPv4 address (e.g. 127.0.0.1) or use tcp6")
    return bind, ip.version == 6


class HttpServer:
    """Serves a directory or an in-memory path → content map until stop()."""

    def __init__(self, *, directory: Path | None = None, content: Mapping[str, bytes] | None = None,
                 port_min: int = 8000, port_max: int = 9000, bind: str = "127.0.0.1", protocol: str = "tcp",
                 emit: Any = None, reach: Callable[[bool], str] | None = None) -> None:
        """reach(ipv6): the host's address as the guest sees it (the machine driver's; QEMU user-net's default)."""
        address, self.ipv6 = listen_address(bind, protocol)
        self._reach = reach or guest_host
        handler: Any
        if content is not None:
            handler = type("Handler", (_ContentHandler,), {"content": dict(content)})
        else:
            handler = functools.partial(_DirHandler, directory=str(directory))
        server_cls = _Server6 if self.ipv6 else http.server.ThreadingHTTPServer

        def claim(port: int) -> bool:
            try:
                self.server = server_cls((address, port), handler)
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return False
                raise FactoryError(f"http server: cannot listen on {address} port {port}: {exc.strerror}",
                                   hint="check http_bind_address / http_network_protocol") from exc
            return True

        self.lease: PortLease = lease(port_min, port_max, purpose="http server", claim=claim)
        self.server.emit = emit  # type: ignore[attr-defined]
        self.server.daemon_threads = True
        # serve_forever notices a shutdown() only between polls: at its default 0.5 s every build's end waited
        # 0.25 s on average for the server to stop.
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": POLL},
                                        name="factory-httpd", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self.lease.port

    @property
    def guest_host(self) -> str:
        """The host as the guest reaches it, URL-ready (`{{ .HTTPIP }}`)."""
        return self._reach(self.ipv6)


    def stop(self) -> None:
        """Stop serving and free the port (idempotent)."""
        if self.lease.held:
            self.server.shutdown()
            self.server.server_close()
            self._thread.join(5)
            self.lease.release()


def guest_host(ipv6: bool) -> str:
    """QEMU user networking's address of the host, bracketed for IPv6 so `http://{{ .HTTPIP }}:port/` works."""
    return f"[{GUEST_HOST_IP6}]" if ipv6 else GUEST_HOST_IP
