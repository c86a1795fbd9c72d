"""A contract stub of HCP Vagrant Box Registry (the box-upload subset packer-plugin-vagrant's vagrant-registry
uses), served over TLS on 127.0.0.1 with a throw-away self-signed certificate.

HCP cannot be reached from tests, so this stands in for both of its servers, keeping the documented contract:
the auth server's client-credentials grant (`POST /oauth2/token`, Basic client id/secret, audience), bearer-token
auth on `/vagrant/2022-09-30/registry/R/...` (box, version, provider, architecture: GET → 404 when missing, POST to
create, PUT to update an architecture), box creation as a long-running operation waited on through
`/operation/2020-05-05/.../operations/ID/wait`, upload tickets (pre-signed storage URL; direct uploads also get an
object id completed with `.../direct/complete/OBJECT`), release. Errors are google.rpc.Status bodies.
Test knobs: `fail` (answer a route with a given error), `interrupt_uploads` (cut the connection mid-upload).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import json
import re
import socket
import ssl
import tempfile
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CLIENT_ID = "stub-client-id"
CLIENT_SECRET = "stub-Client-Secret-42"
TOKEN = "hcp-stub-access-token-7f3a9c"
V = "/vagrant/2022-09-30/registry/([^/]+)"


@dataclass
class RegistryState:
    registries: dict[str, dict[str, Any]] = field(default_factory=dict)   # registry → box → {"versions": {...}}
    storage: dict[str, bytes] = field(default_factory=dict)
    tickets: dict[str, tuple[str, str, str, str, str, bool]] = field(default_factory=dict)
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path, Authorization header)
    fail: dict[tuple[str, str], tuple[int, str]] = field(default_factory=dict)  # (method, path regex) → error
    interrupt_uploads: int = 0
    address: str = ""   # HOST:PORT, as hcp_api_address takes it

    @property
    def base(self) -> str:
        return f"https://{self.address}"

    def add_registry(self, name: str) -> None:
        self.registries[name] = {}

    def architecture(self, reg: str, box: str, v: str, prov: str, arch: str) -> dict[str, Any]:
        return dict(self.registries[reg][box]["versions"][v]["providers"][prov][arch])


ROUTES = [
    ("POST", r"/oauth2/token", "token"),
    ("GET", r"/operation/2020-05-05/organizations/([^/]+)/projects/([^/]+)/operations/([^/]+)/wait", "wait"),
    ("GET", V + r"/box/([^/]+)", "read_box"),
    ("POST", V + r"/boxes", "create_box"),
    ("GET", V + r"/box/([^/]+)/version/([^/]+)", "read_version"),
    ("POST", V + r"/box/([^/]+)/versions", "create_version"),
    ("PUT", V + r"/box/([^/]+)/version/([^/]+)/release", "release"),
    ("GET", V + r"/box/([^/]+)/version/([^/]+)/provider/([^/]+)", "read_provider"),
    ("POST", V + r"/box/([^/]+)/version/([^/]+)/providers", "create_provider"),
    ("GET", V + r"/box/([^/]+)/version/([^/]+)/provider/([^/]+)/architecture/([^/]+)", "read_arch"),
    ("PUT", V + r"/box/([^/]+)/version/([^/]+)/provider/([^/]+)/architecture/([^/]+)", "update_arch"),
    ("POST", V + r"/box/([^/]+)/version/([^/]+)/provider/([^/]+)/architectures", "create_arch"),
    ("GET", V + r"/box/([^/]+)/version/([^/]+)/provider/([^/]+)/architecture/([^/]+)/(direct/)?upload", "ticket"),
    ("PUT", V + r"/box/([^/]+)/version/([^/]+)/provider/([^/]+)/architecture/([^/]+)/direct/complete/([^/]+)",
     "complete"),
    ("PUT", r"/storage/([0-9a-f]+)", "store"),
]


def _status(code: int, message: str) -> dict[str, Any]:
    return {"code": code, "message": message, "details": []}


class Handler(BaseHTTPRequestHandler):
    state: RegistryState

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, code: int, body: Any) -> None:
        raw = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self, method: str) -> None:
        path = urllib.parse.urlsplit(self.path).path
        auth = self.headers.get("Authorization") or ""
        self.state.requests.append((method, self.path, auth))
        for (verb, pattern), (code, message) in self.state.fail.items():
            if verb == method and re.fullmatch(pattern, path):
                self._body()
                return self._send(code, _status(code, message))
        for verb, pattern, name in ROUTES:
            m = re.fullmatch(pattern, path)
            if verb == method and m:
                if name not in ("token", "store") and auth != f"Bearer {TOKEN}":
                    self._body()
                    return self._send(401, _status(16, "unauthenticated: invalid or missing bearer token"))
                return getattr(self, name)(*m.groups())
        self._body()
        self._send(404, _status(5, f"no route for {method} {path}"))

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    # -- auth server
    def token(self) -> None:
        form = urllib.parse.parse_qs(self._body().decode())
        basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if form.get("grant_type") != ["client_credentials"] or form.get("audience") != \
                ["https://api.hashicorp.cloud"]:
            return self._send(400, {"error": "invalid_request"})
        if self.headers.get("Authorization") != f"Basic {basic}":
            return self._send(401, {"error": "invalid_client", "error_description": "client authentication failed"})
        self._send(200, {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 3600})

    # -- registry
    def _boxes(self, reg: str) -> dict[str, Any] | None:
        return self.state.registries.get(reg)

    def _version(self, reg: str, box: str, v: str) -> dict[str, Any] | None:
        return ((self._boxes(reg) or {}).get(box) or {}).get("versions", {}).get(v)

    def _not_found(self, what: str) -> None:
        self._send(404, _status(5, f"{what} not found"))

    def wait(self, org: str, project: str, op_id: str) -> None:
        self._send(200, {"operation": {"id": op_id, "state": "DONE",
                                       "location": {"organization_id": org, "project_id": project}}})

    def read_box(self, reg: str, box: str) -> None:
        boxes = self._boxes(reg)
        if boxes is None or box not in boxes:
            return self._not_found("box")
        self._send(200, {"box": {"name": box, "description": boxes[box]["description"]}})

    def create_box(self, reg: str) -> None:
        spec = json.loads(self._body())
        boxes = self._boxes(reg)
        if boxes is None:
            return self._not_found("registry")
        boxes[spec["name"]] = {"description": spec.get("description", ""), "is_private": spec.get("is_private"),
                               "versions": {}}
        op = {"id": uuid.uuid4().hex, "state": "RUNNING", "location": {"organization_id": "org-1",
                                                                        "project_id": "proj-1"}}
        self._send(200, {"box": {"name": spec["name"]}, "operation": op})

    def read_version(self, reg: str, box: str, v: str) -> None:
        version = self._version(reg, box, v)
        if version is None:
            return self._not_found("version")
        self._send(200, {"version": {"name": v, "state": version["state"]}})

    def create_version(self, reg: str, box: str) -> None:
        spec = json.loads(self._body())
        versions = ((self._boxes(reg) or {}).get(box) or {}).get("versions")
        if versions is None:
            return self._not_found("box")
        if spec["name"] in versions:
            return self._send(409, _status(6, "version already exists"))
        versions[spec["name"]] = {"state": "UNRELEASED", "description": spec.get("description", ""),
                                  "providers": {}}
        self._send(200, {"version": {"name": spec["name"], "state": "UNRELEASED"}})

    def release(self, reg: str, box: str, v: str) -> None:
        version = self._version(reg, box, v)
        if version is None:
            return self._not_found("version")
        if version["state"] != "UNRELEASED":
            return self._send(400, _status(9, "version must be unreleased to release"))
        version["state"] = "ACTIVE"
        self._send(200, {"version": {"name": v, "state": "ACTIVE"}})

    def read_provider(self, reg: str, box: str, v: str, prov: str) -> None:
        version = self._version(reg, box, v)
        if version is None or prov not in version["providers"]:
            return self._not_found("provider")
        self._send(200, {"provider": {"name": prov}})

    def create_provider(self, reg: str, box: str, v: str) -> None:
        spec = json.loads(self._body())
        version = self._version(reg, box, v)
        if version is None:
            return self._not_found("version")
        version["providers"][spec["name"]] = {}
        self._send(200, {"provider": {"name": spec["name"]}})

    def _arch(self, reg: str, box: str, v: str, prov: str) -> dict[str, Any] | None:
        version = self._version(reg, box, v)
        return None if version is None else version["providers"].get(prov)

    def read_arch(self, reg: str, box: str, v: str, prov: str, arch: str) -> None:
        archs = self._arch(reg, box, v, prov)
        if archs is None or arch not in archs:
            return self._not_found("architecture")
        self._send(200, {"architecture": {"architecture_type": arch, **archs[arch]}})

    def update_arch(self, reg: str, box: str, v: str, prov: str, arch: str) -> None:
        spec = json.loads(self._body())
        archs = self._arch(reg, box, v, prov)
        if archs is None or arch not in archs:
            return self._not_found("architecture")
        archs[arch]["box_data"] = spec["box_data"]
        self._send(200, {"architecture": {"architecture_type": arch}})

    def create_arch(self, reg: str, box: str, v: str, prov: str) -> None:
        spec = json.loads(self._body())
        archs = self._arch(reg, box, v, prov)
        if archs is None:
            return self._not_found("provider")
        if spec.get("box_data", {}).get("checksum_type") not in ("NONE", "MD5", "SHA1", "SHA256", "SHA384",
                                                                 "SHA512"):
            return self._send(400, _status(3, "invalid checksum_type"))
        archs[spec["architecture_type"]] = {"default": spec.get("default", False), "box_data": spec["box_data"],
                                            "hosted": False}
        self._send(200, {"architecture": {"architecture_type": spec["architecture_type"]}})

    def ticket(self, reg: str, box: str, v: str, prov: str, arch: str, direct: str | None) -> None:
        archs = self._arch(reg, box, v, prov)
        if archs is None or arch not in archs:
            return self._not_found("architecture")
        object_id = uuid.uuid4().hex
        self.state.tickets[object_id] = (reg, box, v, prov, arch, bool(direct))
        out = {"url": f"{self.state.base}/storage/{object_id}"}
        if direct:
            out["object"] = object_id
        self._send(200, out)

    def store(self, object_id: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if self.state.interrupt_uploads > 0:
            self.state.interrupt_uploads -= 1
            self.rfile.read(length // 2)
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)   # cut off mid-upload: no response at all
            return
        body = self.rfile.read(length)
        if object_id not in self.state.tickets:
            return self._send(403, {"message": "upload url expired"})
        self.state.storage[object_id] = body
        reg, box, v, prov, arch, direct = self.state.tickets[object_id]
        entry = self._arch(reg, box, v, prov)[arch]  # type: ignore[index]
        entry["sha256"] = hashlib.sha256(body).hexdigest()
        entry["hosted"] = not direct   # a direct upload is hosted once completed
        self._send(200, {})

    def complete(self, reg: str, box: str, v: str, prov: str, arch: str, object_id: str) -> None:
        if object_id not in self.state.storage:
            return self._send(400, _status(9, "nothing was uploaded for this object"))
        self._arch(reg, box, v, prov)[arch]["hosted"] = True  # type: ignore[index]
        self._send(200, {})


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, valid for a day (the client must skip verification)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hcp-vagrant-registry-contract-stub")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False).sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@contextmanager
def hcp_vagrant_registry_stub() -> Iterator[RegistryState]:
    state = RegistryState()
    handler = type("BoundHandler", (Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    with tempfile.TemporaryDirectory() as tmp:
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(*_certificate(Path(tmp)))
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    state.address = f"127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
