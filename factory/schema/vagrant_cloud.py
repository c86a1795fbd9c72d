"""The `vagrant-cloud` post-processor (packer-plugin-vagrant): publish a Vagrant box through the Vagrant Cloud
API (box → version → provider → upload → release); and `vagrant-registry`, its HCP successor, declared so
templates validate and inspect, and refused by `factory build` before the build starts (REFUSED says why)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from factory.options import Component, Kind, opt

VAGRANT_CLOUD_URL = "https://vagrantcloud.com/api/v2"


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
class VagrantRegistryPostProcessor(Component, kind=Kind.POST_PROCESSOR, name="vagrant-registry"):
    """Upload a `.box` to HCP Vagrant Box Registry (packer-plugin-vagrant's `vagrant-registry`)."""

    summary: ClassVar[str] = ("Declared with the plugin's options so templates validate and inspect; "
                              "`factory build` refuses it before the build starts.")
    REFUSED: ClassVar[str] = ("it publishes to HCP Vagrant Box Registry through HCP's service-principal API, "
                              "which factory does not implement (it has no HCP API client and no contract to "
                              "test one against)")

    box_tag: str = opt(required=True, help="The box, `REGISTRY/NAME`. Required.")
    version: str = opt(required=True, help="Version to create (semver-like). Required.")
    client_id: str | None = opt(None, help="HCP service principal client ID (else HCP_CLIENT_ID).")
    client_secret: str | None = opt(None, help="HCP service principal secret (else HCP_CLIENT_SECRET).",
                                    sensitive=True)
    architecture: str | None = opt(None, help="Architecture of the box (default: from the box).")
    default_architecture: str | None = opt(None, help="Architecture flagged as the provider's default.")
    no_release: bool = opt(False, help="Leave the version unreleased.")
    version_description: str | None = opt(None, help="Markdown description of the version.")
    box_download_url: str | None = opt(None, help="Register this self-hosted URL instead of uploading.")
    box_checksum: str | None = opt(None, help="Checksum recorded for the provider, `TYPE:DIGEST`.")
    no_direct_upload: bool = opt(False, help="Upload through the registry instead of directly to storage.")
