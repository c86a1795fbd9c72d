"""What the contract stubs share: a JSON-answering request handler and serving on a free loopback port.

Imported by the stub scripts (run as `python X_contract_stub.py`, so this folder is on sys.path); it imports
nothing of factory, so a stub runs in any interpreter that has the SDK it checks objects with."""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class QuietHandler(BaseHTTPRequestHandler):
    """No access log on stderr; JSON answers."""

    def log_message(self, fmt: str, *args: Any) -> None:
        pass

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)


def serve(handler: type[BaseHTTPRequestHandler]) -> None:
    """Serve forever on 127.0.0.1:<free port>, announced as the line "PORT <n>" (cloud_servers.server reads it)."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    print(f"PORT {srv.server_address[1]}", flush=True)
    sys.stdout.close()
    srv.serve_forever()
