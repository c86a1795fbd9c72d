"""A contract stub of the Vagrant Cloud API v2 (the box-upload subset packer-plugin-vagrant uses), on 127.0.0.1.

Vagrant Cloud cannot be reached from tests, so this stands in for it, keeping the documented contract: bearer
token auth, `box/ORG/NAME` (404 when missing), versions, providers (name + architecture), upload and direct
upload (an upload_path on storage that takes the bytes without the token, then a callback), release and delete.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOKEN = "contract-stub-token-0123456789"


@dataclass
class CloudState:
    boxes: dict[str, dict[str, Any]] = field(default_factory=dict)      # tag → {"versions": {v: version}}
    storage: dict[str, bytes] = field(default_factory=dict)
    pending: dict[str, tuple[str, str, str, str, bool]] = field(default_factory=dict)  # id → tag, v, p, arch, direct
    requests: list[tuple[str, str, bool]] = field(default_factory=list)  # (method, path, had the token)
    reject_storage: bool = False
    base: str = ""

    def add_box(self, tag: str) -> None:
        self.boxes[tag] = {"versions": {}}


ROUTES = [
    ("GET", r"/api/v2/box/([^/]+/[^/]+)", "box"),
    ("POST", r"/api/v2/box/([^/]+/[^/]+)/versions", "create_version"),
    ("POST", r"/api/v2/box/([^/]+/[^/]+)/version/([^/]+)/providers", "create_provider"),
    ("GET", r"/api/v2/box/([^/]+/[^/]+)/version/([^/]+)/provider/([^/]+)/([^/]+)/upload(/direct)?", "upload"),
    ("PUT", r"/api/v2/confirm/([0-9a-f]+)", "confirm"),
    ("PUT", r"/api/v2/box/([^/]+/[^/]+)/version/([^/]+)/release", "release"),
    ("DELETE", r"/api/v2/box/([^/]+/[^/]+)/version/([^/]+)/provider/([^/]+)/([^/]+)", "delete_provider"),
    ("DELETE", r"/api/v2/box/([^/]+/[^/]+)/version/([^/]+)", "delete_version"),
    ("PUT", r"/storage/([0-9a-f]+)", "store"),
]


class Handler(BaseHTTPRequestHandler):
    state: CloudState

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, code: int, body: Any) -> None:
        raw = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _dispatch(self, method: str) -> None:
        authed = self.headers.get("Authorization") == f"Bearer {TOKEN}"
        self.state.requests.append((method, self.path, authed))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        for verb, pattern, name in ROUTES:
            m = re.fullmatch(pattern, self.path)
            if verb == method and m:
                if name != "store" and not authed:
                    return self._send(401, {"errors": ["Invalid access token"], "success": False})
                return getattr(self, name)(body, *m.groups())
        self._send(404, {"errors": ["Resource not found!"], "success": False})

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _version(self, tag: str, v: str) -> dict[str, Any] | None:
        return self.state.boxes.get(tag, {}).get("versions", {}).get(v)

    def box(self, body: bytes, tag: str) -> None:
        if tag not in self.state.boxes:
            return self._send(404, {"errors": ["Resource not found!"], "success": False})
        versions = [{"version": v, "status": x["status"]} for v, x in self.state.boxes[tag]["versions"].items()]
        self._send(200, {"tag": tag, "versions": versions})

    def create_version(self, body: bytes, tag: str) -> None:
        spec = json.loads(body)["version"]
        if tag not in self.state.boxes or spec["version"] in self.state.boxes[tag]["versions"]:
            return self._send(422, {"errors": ["Version has already been taken"], "success": False})
        self.state.boxes[tag]["versions"][spec["version"]] = {"status": "unreleased", "providers": {},
                                                              "description": spec.get("description", "")}
        self._send(200, {"version": spec["version"], "status": "unreleased"})

    def create_provider(self, body: bytes, tag: str, v: str) -> None:
        spec = json.loads(body)["provider"]
        version = self._version(tag, v)
        if version is None or not spec.get("name") or not spec.get("architecture"):
            return self._send(422, {"errors": ["Name and architecture are required"], "success": False})
        version["providers"][(spec["name"], spec["architecture"])] = dict(spec, hosted=False)
        self._send(200, spec)

    def upload(self, body: bytes, tag: str, v: str, provider: str, arch: str, direct: str | None) -> None:
        version = self._version(tag, v)
        if version is None or (provider, arch) not in version["providers"]:
            return self._send(404, {"errors": ["Resource not found!"], "success": False})
        upload_id = uuid.uuid4().hex
        self.state.pending[upload_id] = (tag, v, provider, arch, bool(direct))
        out = {"upload_path": f"{self.state.base}/storage/{upload_id}"}
        if direct:
            out["callback"] = f"{self.state.base}/api/v2/confirm/{upload_id}"
        self._send(200, out)

    def store(self, body: bytes, upload_id: str) -> None:
        if self.state.reject_storage or upload_id not in self.state.pending:
            return self._send(403, {"errors": ["upload rejected"]})
        self.state.storage[upload_id] = body
        tag, v, provider, arch, direct = self.state.pending[upload_id]
        prov = self._version(tag, v)["providers"][(provider, arch)]  # type: ignore[index]
        prov["sha256"] = hashlib.sha256(body).hexdigest()
        prov["hosted"] = not direct   # a direct upload is hosted once the callback confirms it
        self._send(200, {})

    def confirm(self, body: bytes, upload_id: str) -> None:
        if upload_id not in self.state.storage:
            return self._send(422, {"errors": ["Nothing was uploaded"], "success": False})
        tag, v, provider, arch, _ = self.state.pending[upload_id]
        prov = self._version(tag, v)["providers"][(provider, arch)]  # type: ignore[index]
        prov["hosted"] = True
        self._send(200, {"name": provider})

    def release(self, body: bytes, tag: str, v: str) -> None:
        version = self._version(tag, v)
        if version is None:
            return self._send(404, {"errors": ["Resource not found!"], "success": False})
        version["status"] = "active"
        self._send(200, {"version": v, "status": "active"})

    def delete_provider(self, body: bytes, tag: str, v: str, provider: str, arch: str) -> None:
        version = self._version(tag, v)
        if version is not None:
            version["providers"].pop((provider, arch), None)
        self._send(200, {})

    def delete_version(self, body: bytes, tag: str, v: str) -> None:
        self.state.boxes.get(tag, {}).get("versions", {}).pop(v, None)
        self._send(200, {})


@contextmanager
def vagrant_cloud_stub() -> Iterator[CloudState]:
    state = CloudState()
    handler = type("BoundHandler", (Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
