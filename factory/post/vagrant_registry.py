"""`vagrant-registry`: publish a .box to HCP Vagrant Box Registry, in packer-plugin-vagrant's steps.

    POST {hcp_auth_url}/oauth2/token              client_credentials grant → bearer token (a registered secret)
    GET  .../registry/R/box/B                     404: POST .../registry/R/boxes, then wait for its operation
    GET  .../box/B/version/V                      404: POST .../box/B/versions
    GET  .../version/V/provider/P                 404: POST .../version/V/providers
    GET  .../provider/P/architecture/A            200: PUT it (box data), 404: POST .../provider/P/architectures
    GET  .../architecture/A/direct/upload         → url and object (GET .../upload → url with no_direct_upload)
    PUT  url (the box bytes, no token), then PUT .../architecture/A/direct/complete/OBJECT
    PUT  .../box/B/version/V/release              unless no_release or the version is already released

Paths are under https://{hcp_api_address}/vagrant/2022-09-30. The upload is tried three times, as Packer does.
Packer's steps have no cleanups here (a failed run leaves the version for the next run to reuse), and neither do
these. Options: factory/schema/vagrant_cloud.py.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from factory import secrets
from factory.artifact.model import Artifact
from factory.errors import FactoryError
from factory.placeholders import expand
from factory.post.base import PostContext, PostProcessor, Result
from factory.post.vagrant_cloud import BOX_BUILDERS, DIRECT_UPLOAD_LIMIT, box_metadata
from factory.schema.vagrant_cloud import HCP_AUTH_URL

BUILDER_ID = "hashicorp.post-processor.vagrant-registry"
API = "/vagrant/2022-09-30"
AUDIENCE = "https://api.hashicorp.cloud"
BOX_CREATE_TIMEOUT = "60s"
UPLOAD_TRIES = 3
UPLOAD_RETRY_DELAY = 10.0   # seconds between upload tries (Packer: 10 s)


class HcpError(FactoryError):
    """An HCP API call answered with an error status; `status` lets a step treat 404 as "create it"."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class HcpClient:
    """JSON calls to the HCP API with a service principal's bearer token; errors quote the API's message."""

    def __init__(self, address: str, insecure: bool) -> None:
        self.base = f"https://{address}".rstrip("/")   # HOST:PORT; HCP's SDK always speaks TLS to it
        self.context = ssl._create_unverified_context() if insecure else None
        self.token = ""

    def login(self, auth_url: str, client_id: str, client_secret: str) -> None:
        """The OAuth2 client-credentials grant HCP's SDK makes (credentials in a Basic header)."""
        basic = base64.b64encode(f"{urllib.parse.quote(client_id)}:{urllib.parse.quote(client_secret)}"
                                 .encode()).decode()
        secrets.register(basic)
        form = urllib.parse.urlencode({"grant_type": "client_credentials", "audience": AUDIENCE}).encode()
        url = auth_url.rstrip("/") + "/oauth2/token"
        status, raw = self._send(urllib.request.Request(url, data=form, method="POST", headers={
            "Content-Type": "application/x-www-form-urlencoded", "Authorization": f"Basic {basic}"}), url)
        if status != 200:
            raise FactoryError(f"vagrant-registry: getting an HCP token from {url} failed with HTTP {status}: "
                               f"{_message(raw)}", hint="check client_id and client_secret (or HCP_CLIENT_ID "
                               "and HCP_CLIENT_SECRET)")
        token = _json(raw, url).get("access_token")
        if not token:
            raise FactoryError(f"vagrant-registry: {url} answered without an access_token")
        secrets.register(str(token))
        self.token = str(token)

    def call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        url = f"{self.base}{path}"
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None if body is None else json.dumps(body).encode()
        status, raw = self._send(urllib.request.Request(url, data=data, method=method, headers=headers), url)
        if not 200 <= status < 300:
            raise HcpError(f"vagrant-registry: {method} {path} failed with HTTP {status}: {_message(raw)}", status)
        return _json(raw, url)

    def _send(self, req: urllib.request.Request, url: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(req, timeout=120, context=self.context) as resp:
                return int(resp.status), bytes(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except (OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            raise FactoryError(f"vagrant-registry: {req.get_method()} {url}: {reason}",
                               hint="check hcp_api_address, hcp_auth_url and the network") from None

    def upload(self, url: str, box: Path, say: Any) -> None:
        """PUT the box to the pre-signed URL (without the token), UPLOAD_TRIES times before giving up."""
        for attempt in range(1, UPLOAD_TRIES + 1):
            try:
                self._put(url, box)
                return
            except FactoryError as exc:
                if attempt == UPLOAD_TRIES:
                    raise FactoryError(f"vagrant-registry: failed to upload box asset {box.name} after "
                                       f"{UPLOAD_TRIES} tries: {exc.message}") from None
                say(f"vagrant-registry: error uploading box, will retry in {UPLOAD_RETRY_DELAY:g}s: {exc.message}")
                time.sleep(UPLOAD_RETRY_DELAY)

    def _put(self, url: str, box: Path) -> None:
        size = box.stat().st_size
        with open(box, "rb") as fh:
            req = urllib.request.Request(url, data=fh, method="PUT", headers={
                "Content-Type": "application/octet-stream", "Content-Length": str(size)})
            try:
                with urllib.request.urlopen(req, timeout=3600, context=self.context) as resp:
                    resp.read()
                    status = int(resp.status)
            except urllib.error.HTTPError as exc:
                raise FactoryError(f"HTTP {exc.code}: {_message(exc.read())}") from None
            except (OSError, http.client.HTTPException) as exc:
                raise FactoryError(f"upload interrupted: {getattr(exc, 'reason', exc) or type(exc).__name__}") \
                    from None
        if status != 200:   # Packer accepts exactly 200 from storage
            raise FactoryError(f"bad HTTP status: {status}")


def _message(raw: bytes) -> str:
    """The API's own words: google.rpc.Status `message`, else the body as sent."""
    try:
        doc = json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace").strip()[:500] or "(no body)"
    if isinstance(doc, dict) and doc.get("message"):
        return str(doc["message"])
    return json.dumps(doc)[:500]


def _json(raw: bytes, url: str) -> dict[str, Any]:
    try:
        doc = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise FactoryError(f"vagrant-registry: {url} answered with a body that is not JSON: "
                           f"{raw[:200].decode(errors='replace')}") from None
    return doc if isinstance(doc, dict) else {}


class VagrantRegistry(PostProcessor, type="vagrant-registry"):
    def process(self, config: Any, artifact: Artifact, ctx: PostContext) -> Result:
        if artifact.builder_id not in BOX_BUILDERS:
            raise FactoryError(f"vagrant-registry: the input artifact ({artifact.builder_id}) is not a Vagrant "
                               "box", hint='put post-processor "vagrant" (or "artifice" with a .box) before it in '
                               "a post-processors chain")
        if not artifact.files or artifact.files[0].suffix != ".box":
            raise FactoryError(f"vagrant-registry: the artifact's first file is not a .box: {artifact.describe()}")
        box = artifact.files[0]
        meta = {} if config.architecture and artifact.builder_id != BOX_BUILDERS[1] else box_metadata(box)
        arch = config.architecture or meta.get("architecture")
        if not arch:
            raise FactoryError(f"vagrant-registry: could not determine the architecture from {box.name}'s "
                               "metadata.json", hint="set architecture")
        provider = (artifact.artifact_id if artifact.builder_id != BOX_BUILDERS[1] else "") or meta.get("provider")
        if not provider:
            raise FactoryError(f"vagrant-registry: could not determine the provider from {box.name}'s "
                               "metadata.json")
        client = HcpClient(config.api_address(), config.insecure_skip_tls_verify)
        client_id, client_secret = config.credentials()
        if client_secret:
            secrets.register(client_secret)
        if client_id and client_secret:
            client.login(config.hcp_auth_url or os.environ.get("HCP_AUTH_URL") or HCP_AUTH_URL, client_id,
                         client_secret)
        _Publish(client, config, ctx, str(provider), str(arch)).run(box, artifact.artifact_id)
        return Result(Artifact(BUILDER_ID, artifact.build_name, artifact.builder_type, (),
                               artifact_id=config.box_tag, state={
                                   "box_tag": config.box_tag, "version": config.version,
                                   "provider": str(provider), "architecture": str(arch)}), keep_input=True)


class _Publish:
    """The steps of one publication; `version` is the API's version record (its state decides the release)."""

    def __init__(self, client: HcpClient, config: Any, ctx: PostContext, provider: str, arch: str) -> None:
        self.client, self.config, self.say, self.provider, self.arch = client, config, ctx.emit, provider, arch
        self.registry, _, self.box = config.box_tag.partition("/")
        self.version_path = f"{API}/registry/{self.registry}/box/{self.box}/version/{config.version}"
        self.arch_path = f"{self.version_path}/provider/{provider}/architecture/{arch}"

    def run(self, box: Path, artifact_id: str) -> None:
        self._box()
        version = self._version()
        self._provider()
        self._architecture(artifact_id)
        if not self.config.box_download_url:
            self._upload(box)
        self._release(version)

    def _read(self, path: str) -> dict[str, Any] | None:
        """GET path; None when it does not exist (404), so the step creates it."""
        try:
            return self.client.call("GET", path)
        except HcpError as exc:
            if exc.status == 404:
                return None
            raise

    def _box(self) -> None:
        if self._read(f"{API}/registry/{self.registry}/box/{self.box}") is not None:
            self.say(f"vagrant-registry: found box {self.config.box_tag}")
            return
        created = self.client.call("POST", f"{API}/registry/{self.registry}/boxes", {
            "name": self.box, "description": self.config.box_description or "",
            "is_private": self.config.box_private})
        self.say(f"vagrant-registry: created box {self.config.box_tag}; waiting for it to become available")
        op = created.get("operation")
        if not isinstance(op, dict) or not op.get("id"):
            raise FactoryError("vagrant-registry: unable to wait for the box to become available (the API "
                               "returned no operation)", hint="check the box's state in HCP Vagrant and retry")
        loc = op.get("location") or {}
        waited = self.client.call("GET", f"/operation/2020-05-05/organizations/{loc.get('organization_id')}/"
                                  f"projects/{loc.get('project_id')}/operations/{op['id']}/wait"
                                  f"?timeout={BOX_CREATE_TIMEOUT}").get("operation") or {}
        if (waited.get("error") or {}).get("message"):
            raise FactoryError(f"vagrant-registry: box creation reported a failure: {waited['error']['message']}")
        if waited.get("state") != "DONE":
            raise FactoryError("vagrant-registry: timeout exceeded waiting for the box to become available",
                               hint="verify the box in HCP Vagrant and retry")

    def _version(self) -> dict[str, Any]:
        found = self._read(self.version_path)
        if found is None:
            found = self.client.call("POST", f"{API}/registry/{self.registry}/box/{self.box}/versions", {
                "name": self.config.version, "description": self.config.version_description or ""})
            self.say(f"vagrant-registry: created version {self.config.version}")
        version = found.get("version")
        if not isinstance(version, dict):
            raise FactoryError(f"vagrant-registry: invalid response body for version {self.config.version}")
        return version

    def _provider(self) -> None:
        if self._read(f"{self.version_path}/provider/{self.provider}") is None:
            self.client.call("POST", f"{self.version_path}/providers", {"name": self.provider})
            self.say(f"vagrant-registry: created provider {self.provider}")

    def _architecture(self, artifact_id: str) -> None:
        data: dict[str, Any] = {"checksum_type": "NONE"}
        if self.config.box_download_url:
            values = {"Provider": self.provider, "ArtifactId": artifact_id, "Architecture": self.arch}
            data["download_url"] = expand(self.config.box_download_url, values, "box_download_url")
        if self.config.box_checksum:
            kind, _, digest = self.config.box_checksum.partition(":")
            data.update(checksum_type=kind.upper(), checksum=digest)
        if self._read(self.arch_path) is not None:
            self.client.call("PUT", self.arch_path, {"box_data": data})
            return
        self.client.call("POST", f"{self.version_path}/provider/{self.provider}/architectures", {
            "architecture_type": self.arch, "default": self.arch == self.config.default_architecture,
            "box_data": data})
        self.say(f"vagrant-registry: created architecture {self.arch}")

    def _upload(self, box: Path) -> None:
        size = box.stat().st_size
        direct = not self.config.no_direct_upload and size <= DIRECT_UPLOAD_LIMIT
        self.say(f"vagrant-registry: uploading {box.name} ({size} bytes{', direct to storage' if direct else ''})")
        ticket = self.client.call("GET", f"{self.arch_path}/{'direct/upload' if direct else 'upload'}")
        if not ticket.get("url") or (direct and not ticket.get("object")):
            raise FactoryError("vagrant-registry: failure preparing upload: the API returned no upload url"
                               + (" and object" if direct else ""))
        self.client.upload(str(ticket["url"]), box, self.say)
        if direct:
            self.client.call("PUT", f"{self.arch_path}/direct/complete/{ticket['object']}")
        self.say("vagrant-registry: box successfully uploaded")

    def _release(self, version: dict[str, Any]) -> None:
        if self.config.no_release:
            self.say("vagrant-registry: not releasing version due to configuration")
        elif version.get("state") not in (None, "UNRELEASED"):
            self.say("vagrant-registry: version not in unreleased state, skipping release")
        else:
            self.client.call("PUT", f"{self.version_path}/release")
            self.say(f"vagrant-registry: released version {self.config.version}")
