"""The `vagrant-cloud` post-processor (packer-plugin-vagrant): publish a Vagrant box through the Vagrant Cloud
API (box → version → provider → upload → release); and `vagrant-registry`, its HCP successor, which does the same
through the HCP Vagrant Box Registry API (box → version → provider → architecture → upload → release)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import ClassVar

from factory.options import Component, Kind, opt
from factory.schema.types import Checked, OptionProblem

VAGRANT_CLOUD_URL = "https://vagrantcloud.com/api/v2"
HCP_API_ADDRESS = "api.cloud.hashicorp.com:443"
HCP_AUTH_URL = "https://auth.idp.hashicorp.com"
CHECKSUM_TYPES = ("md5", "sha1", "sha256", "sha384", "sha512")


@dataclass(frozen=True)
class VagrantCloudPostProcessor(Component, kind=Kind.POST_PROCESSOR, name="vagrant-cloud"):
    """Upload a `.box` (from the vagrant or artifice post-processor) to Vagrant Cloud and release it."""

    summary: ClassVar[str] = ("Creates the version and provider of an existing box on Vagrant Cloud, uploads "
                              "the .box (direct to storage unless no_direct_upload) and releases the version.")

    box_tag: str = opt(required=True, help="The box, `ORGANIZATION/NAME`; it must exist. Required.")
    version: str = opt(required=True, help="Version to create (or reuse while unreleased). Required.")
    version_description: str | None = opt(None, help="Markdown description of the version.")
    no_release: bool = opt(False, help="Leave the version unreleased.")
    access_token: str | None = opt(None, help="API token (else VAGRANT_CLOUD_TOKEN, then ATLAS_TOKEN); "
                                   "required with the default `vagrant_cloud_url`.", sensitive=True)
    vagrant_cloud_url: str = opt(VAGRANT_CLOUD_URL, help="API base URL (a private Vagrant Cloud).")
    insecure_skip_tls_verify: bool = opt(False, help="Skip TLS verification (only with a custom "
                                         "`vagrant_cloud_url`).")
    box_download_url: str | None = opt(None, help="Register this URL for the provider instead of uploading; "
                                       "`{{.Provider}}`, `{{.ArtifactId}}`, `{{.Architecture}}` are expanded.")
    no_direct_upload: bool = opt(False, help="Upload through Vagrant Cloud instead of directly to its storage "
                                 "(boxes over 5 GiB always do).")
    box_checksum: str | None = opt(None, help="Checksum recorded for the provider, `TYPE:DIGEST` "
                                   "(e.g. `sha256:...`).")
    architecture: str | None = opt(None, help="Architecture of the box (default: the box's metadata.json, "
                                   "else amd64).")
    default_architecture: str | None = opt(None, help="The provider is the version's default when its "
                                           "architecture equals this.")


@dataclass(frozen=True)
class VagrantRegistryPostProcessor(Checked, Component, kind=Kind.POST_PROCESSOR, name="vagrant-registry"):
    """Upload a `.box` to HCP Vagrant Box Registry (packer-plugin-vagrant's `vagrant-registry`)."""

    summary: ClassVar[str] = ("Creates (or finds) the box, version, provider and architecture on HCP Vagrant Box "
                              "Registry with a service principal's OAuth token, uploads the .box (direct to "
                              "storage unless no_direct_upload) and releases the version.")

    box_tag: str = opt(required=True, help="The box, `REGISTRY/NAME`. Required.")
    version: str = opt(required=True, help="Version to create (or reuse). Required.")
    client_id: str | None = opt(None, help="HCP service principal client ID (else HCP_CLIENT_ID); required with "
                                "the default `hcp_api_address`.")
    client_secret: str | None = opt(None, help="HCP service principal secret (else HCP_CLIENT_SECRET); required "
                                    "with the default `hcp_api_address`.", sensitive=True)
    architecture: str | None = opt(None, help="Architecture of the box (default: the box's metadata.json).")
    default_architecture: str | None = opt(None, help="The architecture is the provider's default when it equals "
                                           "this.")
    no_release: bool = opt(False, help="Leave the version unreleased.")
    version_description: str | None = opt(None, help="Markdown description of the version.")
    box_description: str | None = opt(None, help="Description of the box, when this run creates it.")
    box_private: bool = opt(False, help="Create the box private (when this run creates it).")
    box_download_url: str | None = opt(None, help="Register this self-hosted URL instead of uploading; "
                                       "`{{.Provider}}`, `{{.ArtifactId}}`, `{{.Architecture}}` are expanded.")
    box_checksum: str | None = opt(None, help="Checksum recorded for the architecture, `TYPE:DIGEST` (md5, "
                                   "sha1, sha256, sha384, sha512).")
    no_direct_upload: bool = opt(False, help="Upload through the registry instead of directly to storage "
                                 "(boxes over 5 GiB always do).")
    hcp_api_address: str | None = opt(None, help="HCP API `HOST:PORT` (else HCP_API_ADDRESS, else "
                                      f"{HCP_API_ADDRESS}); for development registries.")
    hcp_auth_url: str | None = opt(None, help="HCP auth server URL, whose `/oauth2/token` issues the token (else "
                                   f"HCP_AUTH_URL, else {HCP_AUTH_URL}).")
    insecure_skip_tls_verify: bool = opt(False, help="Skip TLS verification; not allowed with the default "
                                         "`hcp_api_address`.")

    def api_address(self) -> str:
        return self.hcp_api_address or os.environ.get("HCP_API_ADDRESS") or HCP_API_ADDRESS

    def credentials(self) -> tuple[str, str]:
        """(client_id, client_secret) from the options, else HCP_CLIENT_ID / HCP_CLIENT_SECRET."""
        return (self.client_id or os.environ.get("HCP_CLIENT_ID") or "",
                self.client_secret or os.environ.get("HCP_CLIENT_SECRET") or "")

    def problems(self) -> list[OptionProblem]:
        """packer-plugin-vagrant's Configure checks, so `validate` rejects what the upload would."""
        found = []
        registry, _, box = (self.box_tag or "").partition("/")
        if not registry or not box:
            found.append(OptionProblem("box_tag", f"box_tag {self.box_tag!r} must include registry and box name",
                                       'write it as "REGISTRY/NAME"'))
        if self.box_checksum:
            kind, _, digest = self.box_checksum.partition(":")
            if not digest or kind.lower() not in CHECKSUM_TYPES:
                found.append(OptionProblem("box_checksum", "box_checksum must be TYPE:DIGEST",
                                           "TYPE is one of " + ", ".join(CHECKSUM_TYPES)))
        default_api = self.api_address() == HCP_API_ADDRESS
        if self.insecure_skip_tls_verify and default_api:
            found.append(OptionProblem("insecure_skip_tls_verify", "insecure_skip_tls_verify cannot be enabled "
                                       "for HCP", "it is for a development hcp_api_address only"))
        if default_api:
            for name, value, env in zip(("client_id", "client_secret"), self.credentials(),
                                        ("HCP_CLIENT_ID", "HCP_CLIENT_SECRET"), strict=True):
                if not value:
                    found.append(OptionProblem(name, f"{name} must be set", f"set {name} or {env} (an HCP "
                                               "service principal's credentials)"))
        return found
