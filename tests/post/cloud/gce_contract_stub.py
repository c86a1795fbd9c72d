"""Compute Engine images CONTRACT STUB: the REST calls googlecompute-import makes (images.insert, images.get,
globalOperations.get) and the OAuth 2.0 token endpoint a service-account key's `token_uri` names.

A stand-in for Google's control plane, not a mock of factory: its own process on 127.0.0.1. The token endpoint
checks the JWT-bearer assertion's RS256 signature against the service account's public key; the API takes the
token it issued or a self-signed JWT of that key. images.insert reads `rawDisk.source` from the real GCS
emulator it is pointed at and validates it as GCE does: a gzip'd tar whose first member is `disk.raw`. The
operation is RUNNING for one poll, then DONE (with `error.errors[]` when the image is invalid:
`INVALID_IMAGE_FILE`, or the object is missing: `RESOURCE_NOT_FOUND`). The IAM Credentials API's
generateAccessToken (`POST /v1/projects/-/serviceAccounts/EMAIL:generateAccessToken`, authorized by the token it
issued) issues a token that acts as EMAIL. GET /_stub/calls lists the inserted image bodies and who inserted them
(`principal`: the impersonated service account, or null for the key's own account).

    python gce_contract_stub.py --gcs-endpoint URL --public-key PEM_FILE   (prints "PORT <n>")
"""

from __future__ import annotations

import argparse
import base64
import io
import itertools
import json
import tarfile
import threading
import urllib.request
import zlib
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from stub_http import QuietHandler, serve

TOKEN = "stub-gce-token"
IMPERSONATED = "stub-impersonated-token:"
BASE = "https://www.googleapis.com/compute/v1"


def _b64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class State:
    def __init__(self, args: argparse.Namespace) -> None:
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        with open(args.public_key, "rb") as fh:
            self.public_key = load_pem_public_key(fh.read())
        self.gcs = args.gcs_endpoint.rstrip("/")
        self.lock = threading.Lock()
        self.ids = itertools.count(1)
        self.ops: dict[str, dict[str, Any]] = {}
        self.images: dict[str, dict[str, Any]] = {}
        self.calls: list[dict[str, Any]] = []

    def assertion_ok(self, jwt: str) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        try:
            head, body, sig = jwt.split(".")
            self.public_key.verify(_b64(sig), f"{head}.{body}".encode(), padding.PKCS1v15(),  # type: ignore[union-attr]
                                   hashes.SHA256())
        except (ValueError, InvalidSignature):
            return False
        return True

    def image_problem(self, source: str) -> tuple[str, str] | None:
        """(code, message) of why GCE would refuse rawDisk.source, or None."""
        bucket, _, name = source.removeprefix("https://storage.googleapis.com/").partition("/")
        url = f"{self.gcs}/storage/v1/b/{bucket}/o/{quote(name, safe='')}?alt=media"
        try:
            with urllib.request.urlopen(url) as resp:
                data = resp.read()
        except OSError:
            return "RESOURCE_NOT_FOUND", f"The resource '{source}' was not found"
        try:
            raw = zlib.decompress(data, 16 + zlib.MAX_WBITS)
            with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
                first = tar.next()
        except (zlib.error, tarfile.TarError):
            first = None
        if first is None or first.name != "disk.raw":
            return "INVALID_IMAGE_FILE", f"The image file {source} is not a gzip'd tar archive holding disk.raw."
        return None


class Handler(QuietHandler):
    state: State

    def _principal(self) -> str | None:
        bearer = self.headers.get("Authorization", "").removeprefix("Bearer ")
        return bearer.removeprefix(IMPERSONATED) if bearer.startswith(IMPERSONATED) else None

    def _denied(self) -> bool:
        """A token from /token or generateAccessToken, or a self-signed JWT of the service account (google-auth's
        JWT access, which the Cloud client libraries use for service-account keys)."""
        bearer = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if bearer == TOKEN or bearer.startswith(IMPERSONATED) or \
                (bearer.count(".") == 2 and self.state.assertion_ok(bearer)):
            return False
        self._json(401, {"error": {"code": 401, "message": "Request had invalid authentication credentials.",
                                   "errors": [{"reason": "authError", "message": "Invalid Credentials"}]}})
        return True

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if url.path == "/token":
            form = parse_qs(body.decode())
            if not self.state.assertion_ok(form.get("assertion", [""])[0]):
                return self._json(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
            return self._json(200, {"access_token": TOKEN, "expires_in": 3600, "token_type": "Bearer"})
        if self._denied():
            return None
        if url.path.endswith(":generateAccessToken") and url.path.startswith("/v1/projects/-/serviceAccounts/"):
            email = url.path.removeprefix("/v1/projects/-/serviceAccounts/").removesuffix(":generateAccessToken")
            if self._principal() is not None or not json.loads(body).get("scope"):
                return self._json(400, {"error": {"code": 400, "message": "Request contains an invalid argument."}})
            return self._json(200, {"accessToken": IMPERSONATED + email, "expireTime": "2099-01-01T00:00:00Z"})
        parts = url.path.strip("/").split("/")      # compute v1 projects P global images
        if parts[-2:] != ["global", "images"]:
            return self._json(404, {"error": {"code": 404, "message": f"no such method {url.path}"}})
        project, image = parts[3], json.loads(body)
        with self.state.lock:
            self.state.calls.append({"project": project, "body": image, "principal": self._principal()})
            op_id = f"operation-{next(self.state.ids)}"
            self.state.ops[op_id] = {"polls": 0, "project": project, "image": image,
                                     "problem": self.state.image_problem(image["rawDisk"]["source"])}
        return self._json(200, self._operation(op_id))

    def _operation(self, op_id: str) -> dict[str, Any]:
        op = self.state.ops[op_id]
        link = f"{BASE}/projects/{op['project']}/global/images/{op['image']['name']}"
        out: dict[str, Any] = {"kind": "compute#operation", "id": op_id.split("-")[1], "name": op_id,
                               "operationType": "insert", "targetLink": link, "status": "RUNNING",
                               "selfLink": f"{BASE}/projects/{op['project']}/global/operations/{op_id}"}
        if op["polls"] >= 1:
            out["status"] = "DONE"
            if op["problem"]:
                code, message = op["problem"]
                out |= {"httpErrorStatusCode": 400, "httpErrorMessage": "BAD REQUEST",
                        "error": {"errors": [{"code": code, "message": message}]}}
            else:
                self.state.images[f"{op['project']}/{op['image']['name']}"] = dict(op["image"], selfLink=link,
                                                                                    status="READY")
        return out

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        if url.path == "/_stub/calls":
            with self.state.lock:
                return self._json(200, self.state.calls)
        if self._denied():
            return None
        parts = url.path.strip("/").split("/")
        with self.state.lock:
            if parts[-2] == "operations" and parts[-1] in self.state.ops:
                self.state.ops[parts[-1]]["polls"] += 1
                return self._json(200, self._operation(parts[-1]))
            if parts[-2] == "images" and f"{parts[3]}/{parts[-1]}" in self.state.images:
                return self._json(200, self.state.images[f"{parts[3]}/{parts[-1]}"])
        return self._json(404, {"error": {"code": 404, "message": f"The resource '{url.path}' was not found"}})

    def do_DELETE(self) -> None:
        self._json(405, {"error": {"code": 405, "message": "not part of this stub's contract"}})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gcs-endpoint", required=True)
    ap.add_argument("--public-key", required=True)
    args = ap.parse_args()
    Handler.state = State(args)
    serve(Handler)


if __name__ == "__main__":
    main()
