"""`vagrant-cloud`: publish a .box through the Vagrant Cloud API v2, in packer-plugin-vagrant's steps.

    GET  box/ORG/NAME                                          the box must exist
    POST box/ORG/NAME/versions                                 unless the version exists (and is unreleased)
    POST box/ORG/NAME/version/V/providers                      name, architecture, url or checksum
    GET  box/ORG/NAME/version/V/provider/P/ARCH/upload[/direct]  → upload_path (and callback when direct)
    PUT  upload_path (the box bytes), then PUT callback        (skipped with box_download_url)
    PUT  box/ORG/NAME/version/V/release                        unless no_release

On failure the provider and version this run created are deleted again, as Packer's step cleanups do.
Options: factory/schema/vagrant_cloud.py.
"""

from __future__ import annotations

import json
import os
import ssl
import tarfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from factory.artifact.model import Artifact
from factory.errors import FactoryError
from factory.placeholders import expand
from factory.post.base import PostContext, PostProcessor, Result
from factory.schema.vagrant_cloud import VAGRANT_CLOUD_URL

BUILDER_ID = "pearkes.post-processor.vagrant-cloud"
BOX_BUILDERS = ("mitchellh.post-processor.vagrant", "packer.post-processor.artifice", "vagrant")
DIRECT_UPLOAD_LIMIT = 5 << 30


class Client:
    """JSON requests to the API with the bearer token; errors carry the API's `errors` list."""

    def __init__(self, base: str, token: str, insecure: bool) -> None:
        self.base, self.token = base.rstrip("/"), token
        self.context = ssl._create_unverified_context() if insecure else None

    def call(self, method: str, path: str, body: Any = None, *, ok: tuple[int, ...] = (200, 201)) -> Any:
        url = path if "://" in path else f"{self.base}/{path}"
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=120, context=self.context) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as exc:
            raw, status = exc.read(), exc.code
        except urllib.error.URLError as exc:
            raise FactoryError(f"vagrant-cloud: {method} {url}: {exc.reason}",
                               hint="check vagrant_cloud_url and the network") from None
        if status not in ok:
            raise FactoryError(f"vagrant-cloud: {method} {path} failed with HTTP {status}: {_errors(raw)}")
        return json.loads(raw) if raw.strip() else {}

    def upload(self, url: str, box: Path) -> None:
        """PUT the box to the upload URL (storage accepts it without our token when direct)."""
        with open(box, "rb") as fh:
            req = urllib.request.Request(url, data=fh, method="PUT", headers={
                "Content-Type": "application/octet-stream", "Content-Length": str(box.stat().st_size)})
            try:
                with urllib.request.urlopen(req, timeout=3600, context=self.context) as resp:
                    resp.read()
            except urllib.error.HTTPError as exc:
                raise FactoryError(f"vagrant-cloud: uploading {box.name} failed with HTTP {exc.code}: "
                                   f"{_errors(exc.read())}") from None
            except urllib.error.URLError as exc:
                raise FactoryError(f"vagrant-cloud: uploading {box.name}: {exc.reason}") from None


def _errors(raw: bytes) -> str:
    try:
        doc = json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")[:200] or "(no body)"
    errs = doc.get("errors") if isinstance(doc, dict) else None
    return "; ".join(str(e) for e in errs) if errs else json.dumps(doc)[:200]


def box_metadata(box: Path) -> dict[str, Any]:
    """metadata.json inside a .box (a gzipped tar); {} if it has none."""
    try:
        with tarfile.open(box) as tar:
            for member in tar:
                if member.name.lstrip("./") == "metadata.json":
                    fh = tar.extractfile(member)
                    return dict(json.loads(fh.read())) if fh else {}
    except (tarfile.TarError, ValueError, OSError) as exc:
        raise FactoryError(f"vagrant-cloud: {box} is not a readable Vagrant box: {exc}") from None
    return {}


def _token(config: Any) -> str:
    token = config.access_token or os.environ.get("VAGRANT_CLOUD_TOKEN") or os.environ.get("ATLAS_TOKEN") or ""
    if not token and config.vagrant_cloud_url == VAGRANT_CLOUD_URL:
        raise FactoryError("vagrant-cloud: access_token must be set if vagrant_cloud_url has not been overridden",
                           hint="set access_token or VAGRANT_CLOUD_TOKEN")
    return token


class VagrantCloud(PostProcessor, type="vagrant-cloud"):
    def process(self, config: Any, artifact: Artifact, ctx: PostContext) -> Result:
        if artifact.builder_id not in BOX_BUILDERS:
            raise FactoryError(f"vagrant-cloud: the input artifact ({artifact.builder_id}) is not a Vagrant box",
                               hint='put post-processor "vagrant" (or "artifice" with a .box) before it in a '
                                    "post-processors chain")
        if not artifact.files or artifact.files[0].suffix != ".box":
            raise FactoryError(f"vagrant-cloud: the artifact's first file is not a .box: {artifact.describe()}")
        if config.box_checksum and ":" not in config.box_checksum:
            raise FactoryError("vagrant-cloud: box_checksum must be TYPE:DIGEST, e.g. sha256:...")
        box = artifact.files[0]
        meta = box_metadata(box)
        provider = (artifact.artifact_id if artifact.builder_id != BOX_BUILDERS[1] else "") or meta.get("provider")
        if not provider:
            raise FactoryError(f"vagrant-cloud: no provider in {box.name}'s metadata.json")
        arch = config.architecture or meta.get("architecture") or "amd64"
        client = Client(config.vagrant_cloud_url, _token(config), config.insecure_skip_tls_verify
                        and config.vagrant_cloud_url != VAGRANT_CLOUD_URL)
        _Publish(client, config, ctx, str(provider), str(arch)).run(box, artifact.artifact_id)
        return Result(Artifact(BUILDER_ID, artifact.build_name, artifact.builder_type, (),
                               artifact_id=f"{config.box_tag}/{provider}", state={
                                   "box_tag": config.box_tag, "version": config.version, "provider": str(provider),
                                   "architecture": str(arch)}), keep_input=True)


class _Publish:
    def __init__(self, client: Client, config: Any, ctx: PostContext, provider: str, arch: str) -> None:
        self.client, self.config, self.ctx, self.provider, self.arch = client, config, ctx, provider, arch
        self.tag, self.version = config.box_tag, config.version
        self.created_version = self.created_provider = False

    def run(self, box: Path, artifact_id: str) -> None:
        try:
            self._steps(box, artifact_id)
        except BaseException:
            self._cleanup()
            raise

    def _steps(self, box: Path, artifact_id: str) -> None:
        c, say = self.client, self.ctx.emit
        say(f"vagrant-cloud: verifying box {self.tag}")
        found = c.call("GET", f"box/{self.tag}")
        versions = {str(v.get("version")): v for v in found.get("versions") or [] if isinstance(v, dict)}
        existing = versions.get(self.version)
        if existing is not None and existing.get("status") == "active":
            raise FactoryError(f"vagrant-cloud: version {self.version} of {self.tag} is already released",
                               hint="bump version (a released version cannot change)")
        if existing is None:
            say(f"vagrant-cloud: creating version {self.version}")
            body = {"version": {"version": self.version, "description": self.config.version_description or ""}}
            c.call("POST", f"box/{self.tag}/versions", body)
            self.created_version = True
        say(f"vagrant-cloud: creating provider {self.provider} ({self.arch})")
        c.call("POST", f"box/{self.tag}/version/{self.version}/providers", {"provider": self._provider(artifact_id)})
        self.created_provider = True
        if not self.config.box_download_url:
            self._upload(box)
        if not self.config.no_release:
            say(f"vagrant-cloud: releasing version {self.version}")
            c.call("PUT", f"box/{self.tag}/version/{self.version}/release")

    def _provider(self, artifact_id: str) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.provider, "architecture": self.arch,
                               "default_architecture": self.arch == self.config.default_architecture}
        if self.config.box_download_url:
            values = {"Provider": self.provider, "ArtifactId": artifact_id, "Architecture": self.arch}
            out["url"] = expand(self.config.box_download_url, values, "box_download_url")
        if self.config.box_checksum:
            out["checksum_type"], out["checksum"] = self.config.box_checksum.split(":", 1)
        return out

    def _upload(self, box: Path) -> None:
        direct = not self.config.no_direct_upload and box.stat().st_size <= DIRECT_UPLOAD_LIMIT
        path = f"box/{self.tag}/version/{self.version}/provider/{self.provider}/{self.arch}/upload"
        self.ctx.emit(f"vagrant-cloud: uploading {box.name} ({box.stat().st_size} bytes"
                      f"{', direct to storage' if direct else ''})")
        upload = self.client.call("GET", path + ("/direct" if direct else ""), ok=(200,))
        if not upload.get("upload_path"):
            raise FactoryError("vagrant-cloud: the API returned no upload_path")
        self.client.upload(str(upload["upload_path"]), box)
        if direct:
            if not upload.get("callback"):
                raise FactoryError("vagrant-cloud: the API returned no callback for the direct upload")
            self.client.call("PUT", str(upload["callback"]))

    def _cleanup(self) -> None:
        """Delete what this run created, as Packer's cleanups do when a step fails."""
        base = f"box/{self.tag}/version/{self.version}"
        for created, path in ((self.created_provider, f"{base}/provider/{self.provider}/{self.arch}"),
                              (self.created_version, base)):
            if created:
                try:
                    self.client.call("DELETE", path, ok=(200, 204))
                    self.ctx.emit(f"vagrant-cloud: cleaned up {path}")
                except FactoryError as exc:
                    self.ctx.emit(f"vagrant-cloud: cleanup failed: {exc.message}")
