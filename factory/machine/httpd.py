"""The built-in HTTP server for http_directory / http_content, one per build on a reserved port.

With QEMU user networking the guest reaches the host's loopback as 10.0.2.2, so binding 127.0.0.1 is enough
and exposes nothing to the network (http_bind_address widens it when a template asks).
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from factory.machine.ports import PortLease, reserve

GUEST_HOST_IP = "10.0.2.2"


class _ContentHandler(http.server.SimpleHTTPRequestHandler):
    content: Mapping[str, bytes] = {}

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        body = self.content.get(path) or self.content.get(path.lstrip("/"))
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
    def log_message(self, format: str, *args: Any) -> None:
        _log(self, format, *args)


def _log(handler: http.server.BaseHTTPRequestHandler, format: str, *args: Any) -> None:
    server = handler.server
    emit = getattr(server, "emit", None)
    if emit is not None:
        emit(f"http: {handler.address_string()} {format % args}")


class HttpServer:
    """Serves a directory or an in-memory path → content map until stop()."""

    def __init__(self, *, directory: Path | None = None, content: Mapping[str, bytes] | None = None,
                 port_min: int = 8000, port_max: int = 9000, bind: str = "127.0.0.1",
                 emit: Any = None) -> None:
        self.lease: PortLease = reserve(port_min, port_max, purpose="http server", host=bind)
        handler: Any
        if content is not None:
            handler = type("Handler", (_ContentHandler,), {"content": dict(content)})
        else:
            handler = functools.partial(_DirHandler, directory=str(directory))
        try:
            self.server = http.server.ThreadingHTTPServer((bind, self.lease.port), handler)
        except OSError:
            self.lease.release()
            raise
        self.server.emit = emit  # type: ignore[attr-defined]
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, name="factory-httpd", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return self.lease.port

    def stop(self) -> None:
        """Stop serving and free the port (idempotent)."""
        if self.lease.held:
            self.server.shutdown()
            self.server.server_close()
            self._thread.join(5)
            self.lease.release()
