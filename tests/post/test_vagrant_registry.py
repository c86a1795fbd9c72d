"""vagrant-registry against a contract stub of HCP Vagrant Box Registry and its auth server
(tests/post/hcp_vagrant_registry_contract_stub.py, TLS with a self-signed certificate): the box made by the real
vagrant post-processor (or handed over by artifice) is published and released; missing credentials, HTTP errors
and interrupted uploads are clear errors; neither the client secret nor the issued token reaches the output."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hcp_vagrant_registry_contract_stub import (
    CLIENT_ID,
    CLIENT_SECRET,
    TOKEN,
    RegistryState,
    hcp_vagrant_registry_stub,
)

from factory.artifact.model import Artifact
from factory.errors import FactoryError
from factory.post import PostContext, run_chains, vagrant_registry
from factory.template.model import PostProcessorSpec

Chains = Callable[[str], list[list[PostProcessorSpec]]]
API = "/vagrant/2022-09-30/registry/acme"


def registry_block(stub: RegistryState, extra: str = "", secret: str = CLIENT_SECRET) -> str:
    return f'''
    post-processor "vagrant-registry" {{
      box_tag                  = "acme/debian"
      version                  = "1.2.3"
      version_description      = "nightly"
      client_id                = "{CLIENT_ID}"
      client_secret            = "{secret}"
      hcp_api_address          = "{stub.address}"
      hcp_auth_url             = "{stub.base}"
      insecure_skip_tls_verify = true
      {extra}
    }}'''


def make_box(tmp_path: Path, metadata: dict[str, str]) -> Artifact:
    box = tmp_path / "handmade.box"
    with tarfile.open(box, "w:gz") as tar:
        raw = json.dumps(metadata).encode()
        info = tarfile.TarInfo("metadata.json")
        info.size = len(raw)
        tar.addfile(info, io.BytesIO(raw))
    return Artifact("packer.post-processor.artifice", "b.qemu.x", "qemu", (box,))


def api_calls(stub: RegistryState) -> list[str]:
    return [f"{m} {p.split('?')[0].replace(API, '')}" for m, p, _ in stub.requests
            if not p.startswith(("/storage/", "/oauth2/"))]


def test_a_new_box_is_created_uploaded_directly_and_released(chains: Chains, ctx: PostContext,
                                                             tmp_path: Path) -> None:
    boxed = make_box(tmp_path, {"provider": "libvirt", "architecture": "arm64"})
    with hcp_vagrant_registry_stub() as stub:
        stub.add_registry("acme")
        (spec,) = chains(registry_block(stub, 'box_description = "Debian"\n box_private = true'))
        (out,) = [o for o in run_chains([spec], boxed, ctx) if o.builder_id == vagrant_registry.BUILDER_ID]
    box = stub.registries["acme"]["debian"]
    assert box["description"] == "Debian" and box["is_private"] is True
    version = box["versions"]["1.2.3"]
    assert version["state"] == "ACTIVE" and version["description"] == "nightly"
    arch = version["providers"]["libvirt"]["arm64"]
    assert arch["hosted"] and arch["sha256"] == hashlib.sha256(boxed.files[0].read_bytes()).hexdigest()
    assert arch["box_data"] == {"checksum_type": "NONE"} and arch["default"] is False
    assert api_calls(stub) == [
        "GET /box/debian", "POST /boxes", "GET /operation/2020-05-05/organizations/org-1/projects/proj-1/"
        f"operations/{stub.requests[3][1].split('/operations/')[1].split('/')[0]}/wait",
        "GET /box/debian/version/1.2.3", "POST /box/debian/versions",
        "GET /box/debian/version/1.2.3/provider/libvirt", "POST /box/debian/version/1.2.3/providers",
        "GET /box/debian/version/1.2.3/provider/libvirt/architecture/arm64",
        "POST /box/debian/version/1.2.3/provider/libvirt/architectures",
        "GET /box/debian/version/1.2.3/provider/libvirt/architecture/arm64/direct/upload",
        f"PUT /box/debian/version/1.2.3/provider/libvirt/architecture/arm64/direct/complete/{next(iter(stub.storage))}",
        "PUT /box/debian/version/1.2.3/release"]
    assert all(auth == f"Bearer {TOKEN}" for _, p, auth in stub.requests if p.startswith("/vagrant/"))
    assert all(auth == "" for _, p, auth in stub.requests if p.startswith("/storage/"))  # token stays home
    assert out.artifact_id == "acme/debian" and out.state["provider"] == "libvirt"


def test_the_vagrant_post_processors_box_with_checksum_no_direct_upload_and_no_release(
        chains: Chains, artifact: Artifact, ctx: PostContext) -> None:
    with hcp_vagrant_registry_stub() as stub:
        stub.add_registry("acme")
        stub.registries["acme"]["debian"] = {"description": "", "versions": {}}
        extra = ('architecture = "amd64"\n default_architecture = "amd64"\n no_direct_upload = true\n'
                 'no_release = true\n box_checksum = "sha256:abc123"')
        body = 'post-processors {\n    post-processor "vagrant" {}' + registry_block(stub, extra) + "\n  }"
        run_chains(chains(body), artifact, ctx)
    version = stub.registries["acme"]["debian"]["versions"]["1.2.3"]
    arch = version["providers"]["libvirt"]["amd64"]
    assert version["state"] == "UNRELEASED" and arch["hosted"] and arch["default"] is True
    assert arch["box_data"] == {"checksum_type": "SHA256", "checksum": "abc123"}
    calls = api_calls(stub)
    assert "POST /boxes" not in calls and calls[-1].endswith("/architecture/amd64/upload")


def test_box_download_url_registers_the_url_and_a_rerun_updates_the_architecture(
        chains: Chains, ctx: PostContext, tmp_path: Path) -> None:
    boxed = make_box(tmp_path, {"provider": "virtualbox", "architecture": "amd64"})
    url = 'box_download_url = "https://boxes.example/{{.Provider}}-{{.Architecture}}.box"'
    with hcp_vagrant_registry_stub() as stub:
        stub.add_registry("acme")
        (spec,) = chains(registry_block(stub, url + "\n no_release = true"))
        run_chains([spec], boxed, ctx)
        (again,) = chains(registry_block(stub, url + '\n box_checksum = "md5:0f0f"'))
        run_chains([again], boxed, ctx)
    version = stub.registries["acme"]["debian"]["versions"]["1.2.3"]
    data = version["providers"]["virtualbox"]["amd64"]["box_data"]
    assert data == {"checksum_type": "MD5", "checksum": "0f0f",
                    "download_url": "https://boxes.example/virtualbox-amd64.box"}
    assert version["state"] == "ACTIVE" and not stub.storage
    assert "PUT /box/debian/version/1.2.3/provider/virtualbox/architecture/amd64" in api_calls(stub)


def test_http_errors_are_surfaced_verbatim(chains: Chains, ctx: PostContext, tmp_path: Path) -> None:
    boxed = make_box(tmp_path, {"provider": "libvirt", "architecture": "amd64"})
    with hcp_vagrant_registry_stub() as stub:
        stub.add_registry("acme")
        stub.fail[("POST", API + "/box/debian/versions")] = (403, "principal lacks vagrant.versions.create on acme")
        (spec,) = chains(registry_block(stub))
        with pytest.raises(FactoryError) as err:
            run_chains([spec], boxed, ctx)
        assert err.value.message == ("vagrant-registry: POST /vagrant/2022-09-30/registry/acme/box/debian/versions "
                                     "failed with HTTP 403: principal lacks vagrant.versions.create on acme")
        (bad,) = chains(registry_block(stub, secret="not-the-secret-99"))
        with pytest.raises(FactoryError, match=r"getting an HCP token from .* failed with HTTP 401: .*invalid_client"):
            run_chains([bad], boxed, ctx)


def test_an_interrupted_upload_is_retried_then_reported(chains: Chains, ctx: PostContext, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vagrant_registry, "UPLOAD_RETRY_DELAY", 0.0)
    boxed = make_box(tmp_path, {"provider": "libvirt", "architecture": "amd64"})
    with hcp_vagrant_registry_stub() as stub:
        stub.add_registry("acme")
        stub.interrupt_uploads = 1
        (spec,) = chains(registry_block(stub))
        run_chains([spec], boxed, ctx)
        assert stub.registries["acme"]["debian"]["versions"]["1.2.3"]["providers"]["libvirt"]["amd64"]["hosted"]
        stub.interrupt_uploads = 3
        (other,) = chains(registry_block(stub).replace('"1.2.3"', '"1.2.4"'))
        with pytest.raises(FactoryError, match=r"failed to upload box asset handmade\.box after 3 tries: "
                                               r"upload interrupted"):
            run_chains([other], boxed, ctx)
    version = stub.registries["acme"]["debian"]["versions"]["1.2.4"]
    assert version["state"] == "UNRELEASED" and not version["providers"]["libvirt"]["amd64"]["hosted"]


def test_tls_is_verified_unless_skipped(chains: Chains, ctx: PostContext, tmp_path: Path) -> None:
    boxed = make_box(tmp_path, {"provider": "libvirt", "architecture": "amd64"})
    with hcp_vagrant_registry_stub() as stub:
        stub.add_registry("acme")
        (spec,) = chains(registry_block(stub).replace("insecure_skip_tls_verify = true", ""))
        with pytest.raises(FactoryError, match="CERTIFICATE_VERIFY_FAILED"):
            run_chains([spec], boxed, ctx)
    assert not stub.registries["acme"]


def test_a_development_registry_without_credentials_gets_no_token(chains: Chains, ctx: PostContext,
                                                                  tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HCP_CLIENT_ID", raising=False)
    monkeypatch.delenv("HCP_CLIENT_SECRET", raising=False)
    boxed = make_box(tmp_path, {"provider": "libvirt", "architecture": "amd64"})
    with hcp_vagrant_registry_stub() as stub:
        stub.add_registry("acme")
        block = "\n".join(line for line in registry_block(stub).splitlines() if "client_" not in line)
        (spec,) = chains(block)
        with pytest.raises(FactoryError, match=r"GET /vagrant/2022-09-30/registry/acme/box/debian failed with "
                                               r"HTTP 401: unauthenticated"):
            run_chains([spec], boxed, ctx)
    assert not any(p.startswith("/oauth2/") for _, p, _ in stub.requests)


TEMPLATE = """
source "null" "n" {
  communicator = "none"
}
build {
  sources = ["source.null.n"]
  post-processors {
    post-processor "artifice" {
      files = ["handmade.box"]
    }
    post-processor "vagrant-registry" {
      box_tag       = "acme/debian"
      version       = "0.1.0"
      client_id     = "CLIENT"
      architecture  = "amd64"
      EXTRA
    }
  }
}
"""


def _factory(tmp: Path, command: str, extra: str, env: dict[str, str],
             version: str = "0.1.0") -> subprocess.CompletedProcess[str]:
    text = TEMPLATE.replace("CLIENT", CLIENT_ID).replace("EXTRA", extra).replace("0.1.0", version)
    (tmp / "t.pkr.hcl").write_text(text)
    full = {k: v for k, v in os.environ.items() if not k.startswith("HCP_")} | env | {"COLUMNS": "300"}
    return subprocess.run([sys.executable, "-m", "factory", command, "t.pkr.hcl"], cwd=tmp, env=full,
                          capture_output=True, text=True, timeout=180)


def test_validate_refuses_missing_credentials_for_hcp(tmp_path: Path) -> None:
    proc = _factory(tmp_path, "validate", "", {})
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "t.pkr.hcl:11:5" in proc.stderr and "client_secret must be set" in proc.stderr
    assert "HCP_CLIENT_SECRET" in proc.stderr
    assert _factory(tmp_path, "validate", "", {"HCP_CLIENT_SECRET": "from-env-secret-1"}).returncode == 0


def test_factory_build_publishes_and_keeps_the_secret_and_token_out_of_the_output(tmp_path: Path) -> None:
    make_box(tmp_path, {"provider": "libvirt"})
    env = {"HCP_CLIENT_SECRET": CLIENT_SECRET}
    with hcp_vagrant_registry_stub() as stub:
        stub.add_registry("acme")
        extra = (f'hcp_api_address = "{stub.address}"\n hcp_auth_url = "{stub.base}"\n'
                 "insecure_skip_tls_verify = true")
        ok = _factory(tmp_path, "build", extra, env)
        assert ok.returncode == 0, ok.stderr
        assert stub.registries["acme"]["debian"]["versions"]["0.1.0"]["state"] == "ACTIVE"
        # An API that echoes the token in its error: the message is shown, the token masked.
        stub.fail[("PUT", API + "/box/debian/version/0.2.0/release")] = (500, f"token {TOKEN} may not release")
        bad = _factory(tmp_path, "build", extra, env, version="0.2.0")
    assert bad.returncode == 1 and "HTTP 500: token <sensitive> may not release" in bad.stderr
    for proc in (ok, bad):
        shown = proc.stdout + proc.stderr
        assert CLIENT_SECRET not in shown and TOKEN not in shown and "Traceback" not in shown
