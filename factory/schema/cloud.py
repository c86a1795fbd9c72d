"""Cloud import post-processors: `amazon-import`, `azure-import` and `googlecompute-import`.

Option names are Packer's where Packer has the post-processor (amazon-import, googlecompute-import); Packer has
no azure-import, so its options follow the Azure builder's names (`resource_group`, `storage_account`,
`gallery_*`). Credentials come from each SDK's standard chain unless an option names them.
"""

# opt() returns a dataclasses.field (factory.options); ruff cannot see that, so RUF009 misfires here.
# ruff: noqa: RUF009

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from factory.errors import FactoryError
from factory.options import Component, Kind, Support, opt
from factory.schema.types import Checked, OptionProblem

IGNORED = Support.IGNORED
AWS_FORMATS = ("vmdk", "raw", "vhd", "vhdx", "ova")


def _polling(value: dict[str, str]) -> None:
    for key, number in value.items():
        if key not in ("delay_seconds", "max_attempts"):
            raise FactoryError(f"aws_polling: unknown setting {key!r}", hint="use delay_seconds and max_attempts")
        try:
            float(number)
        except ValueError:
            raise FactoryError(f"aws_polling.{key}: {number!r} is not a number", hint="e.g. delay_seconds = 30") \
                from None


@dataclass(frozen=True)
class AmazonImportPostProcessor(Checked, Component, kind=Kind.POST_PROCESSOR, name="amazon-import"):
    """Upload the disk to S3 and import it as an AMI (VM Import/Export)."""

    summary: ClassVar[str] = ("Uploads the disk to S3 (parallel multipart, resumable, sparse as a streamOptimized "
                              "VMDK) and imports it as an AMI with ImportImage or ImportSnapshot + RegisterImage; "
                              "copies to more regions, tags and shares it.")

    # Credentials and endpoints (Packer's AccessConfig); unset ones fall back to boto3's standard chain.
    access_key: str | None = opt(None, help="AWS access key (else boto3's chain: AWS_ACCESS_KEY_ID, the shared "
                                 "credentials file, the profile, the instance role).", sensitive=True)
    secret_key: str | None = opt(None, help="AWS secret key, with `access_key`.", sensitive=True)
    token: str | None = opt(None, help="Session token of temporary credentials.", sensitive=True)
    profile: str | None = opt(None, help="Profile of the shared config/credentials files (else AWS_PROFILE).")
    shared_credentials_file: str | None = opt(None, help="Path of the shared credentials file "
                                              "(else AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials).")
    region: str | None = opt(None, help="Region of the bucket and the import (else AWS_REGION / the profile's).")
    custom_endpoint_ec2: str | None = opt(None, help="EC2 endpoint URL for private clouds (else "
                                          "AWS_ENDPOINT_URL_EC2 / the profile's `endpoint_url`).")
    insecure_skip_tls_verify: bool = opt(False, help="Do not verify the endpoints' TLS certificates.")
    assume_role: dict[str, str] = opt({}, help="Role to assume first: `role_arn` (required), `session_name`, "
                                      "`external_id`, `duration_seconds`.")
    skip_region_validation: bool = opt(False, help="Accepted for compatibility; factory never checks region "
                                       "names against a list.", support=IGNORED)

    # The upload
    s3_bucket_name: str = opt(required=True, help="Bucket the image is uploaded to (in `region`). Required.")
    s3_key_name: str = opt("packer-import-{{timestamp}}.{{.Format}}", help="Object key of the upload; "
                           "`{{timestamp}}`, `{{.Format}}` and `{{.BuildName}}` are expanded. With the default "
                           "key, a re-run does not resume: set a fixed key to resume an interrupted upload.")
    s3_encryption: str | None = opt(None, help="Server-side encryption of the upload: `AES256` or `aws:kms`.")
    s3_encryption_key: str | None = opt(None, help="KMS key of `s3_encryption = \"aws:kms\"`.")
    skip_clean: bool = opt(False, help="Keep the uploaded object in S3 after the import.")
    format: str = opt("vmdk", help="Disk format imported: `vmdk`, `raw`, `vhd`, `vhdx`, `ova`. An artifact file "
                      "with that extension is uploaded as is; else the disk is converted (factory's default "
                      "`vmdk` is a streamOptimized VMDK, which holds only allocated data; Packer's default is "
                      "`ova`).")
    upload_concurrency: int = opt(4, help="Parts uploaded at once.", factory_only=True)
    upload_part_size: str | None = opt(None, help="Multipart part size, e.g. `64M` (default: 16 MiB, grown so "
                                       "a file needs at most 10,000 parts).", factory_only=True)

    # The import
    import_method: str = opt("import-image", help="`import-image` (Packer's: ImportImage, AWS detects the OS) "
                             "or `import-snapshot` (ImportSnapshot + RegisterImage: explicit boot mode and "
                             "architecture, ENA, no OS detection).", factory_only=True)
    role_name: str | None = opt(None, help="Service role of the import (AWS's default is `vmimport`).")
    license_type: str | None = opt(None, help="ImportImage license type: `AWS` or `BYOL`.")
    architecture: str = opt("x86_64", help="`x86_64`, `arm64` or `i386`.")
    boot_mode: str | None = opt(None, help="`legacy-bios`, `uefi` or `uefi-preferred` (default: `uefi` for "
                                "arm64 and EFI builds, else `legacy-bios`).")
    platform: str | None = opt(None, help="`linux` or `windows`; required with `boot_mode = \"uefi\"`.")
    ena_support: bool = opt(True, help="import-snapshot: register the AMI with ENA networking.",
                            factory_only=True)
    root_device_name: str = opt("/dev/xvda", help="import-snapshot: root device of the registered AMI.",
                                factory_only=True)
    imds_support: str | None = opt(None, help="`v2.0` to require IMDSv2 on instances of the AMI.")
    ami_encrypt: bool = opt(False, help="Encrypt the imported snapshot.")
    ami_kms_key: str | None = opt(None, help="KMS key of `ami_encrypt`.")
    aws_polling: dict[str, str] = opt({}, help="Import polling: `delay_seconds` (default 15) and "
                                      "`max_attempts` (default: 3 hours' worth); AWS_POLL_DELAY_SECONDS and "
                                      "AWS_MAX_ATTEMPTS override them, as in Packer.")

    # The AMI
    ami_name: str | None = opt(None, help="Name of the AMI (default: the name AWS gives the import).")
    ami_description: str | None = opt(None, help="Description of the AMI.")
    ami_regions: list[str] = opt([], help="More regions the AMI is copied to (with the same name, tags and "
                                 "launch permissions).")
    tags: dict[str, str] = opt({}, help="Tags set on the AMI and its snapshots.")
    ami_users: list[str] = opt([], help="Account IDs allowed to launch the AMI.")
    ami_groups: list[str] = opt([], help="Groups allowed to launch the AMI (`all` makes it public).")
    ami_org_arns: list[str] = opt([], help="Organization ARNs allowed to launch the AMI.")
    ami_ou_arns: list[str] = opt([], help="Organizational unit ARNs allowed to launch the AMI.")

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        "format": AWS_FORMATS, "import_method": ("import-image", "import-snapshot"),
        "architecture": ("x86_64", "arm64", "i386"), "boot_mode": ("legacy-bios", "uefi", "uefi-preferred"),
        "platform": ("linux", "windows"), "s3_encryption": ("AES256", "aws:kms"), "imds_support": ("v2.0",),
        "license_type": ("AWS", "BYOL")}
    SIZES: ClassVar[frozenset[str]] = frozenset({"upload_part_size"})
    VALIDATORS: ClassVar[dict[str, Callable[[Any], object]]] = {"aws_polling": _polling}
    REQUIRES: ClassVar[tuple[tuple[str, str, str], ...]] = (
        ("access_key", "secret_key", "set both, or neither to use boto3's credential chain"),
        ("ami_kms_key", "ami_encrypt", "set ami_encrypt = true"))

    def problems(self) -> list[OptionProblem]:
        out = []
        if self.boot_mode == "uefi" and self.platform is None and self.import_method == "import-image":
            out.append(OptionProblem("platform", "platform must be set for uefi image imports",
                                     'add platform = "linux" (or "windows")'))
        if self.boot_mode == "uefi-preferred" and self.import_method == "import-image":
            out.append(OptionProblem("boot_mode", "ImportImage does not support boot_mode uefi-preferred (EC2 API "
                                     "reference)", 'use "uefi" or "legacy-bios", or import_method = '
                                     '"import-snapshot" (RegisterImage takes uefi-preferred)'))
        if self.architecture == "arm64" and self.boot_mode == "legacy-bios":
            out.append(OptionProblem("boot_mode", "arm64 images boot with uefi, not legacy-bios",
                                     'drop boot_mode, or set boot_mode = "uefi"'))
        if self.assume_role and "role_arn" not in self.assume_role:
            out.append(OptionProblem("assume_role", "assume_role needs role_arn",
                                     'e.g. assume_role = { role_arn = "arn:aws:iam::123456789012:role/import" }'))
        if not 1 <= self.upload_concurrency <= 64:
            out.append(OptionProblem("upload_concurrency", f"upload_concurrency {self.upload_concurrency} is out "
                                     "of range", "use 1 to 64"))
        return out


@dataclass(frozen=True)
class AzureImportPostProcessor(Checked, Component, kind=Kind.POST_PROCESSOR, name="azure-import"):
    """Upload the disk as a page blob and create a managed image or a Shared Image Gallery version."""

    summary: ClassVar[str] = ("Uploads the disk as a fixed VHD page blob (zero ranges skipped) and creates a "
                              "managed image, or an image version in a Shared Image Gallery, through ARM.")

    subscription_id: str | None = opt(None, help="Subscription of the image (else AZURE_SUBSCRIPTION_ID). "
                                      "Needed unless `skip_image` is set.", factory_only=True)
    resource_group: str = opt(required=True, help="Resource group of the image. Required.", factory_only=True)
    location: str | None = opt(None, help="Region of the image, e.g. `westeurope`. Needed unless `skip_image`.",
                               factory_only=True)
    storage_account: str = opt(required=True, help="Storage account the VHD is uploaded to. Required.",
                               factory_only=True)
    storage_account_key: str | None = opt(None, help="Shared key of `storage_account` (else "
                                          "AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_KEY, or the Azure "
                                          "identity chain).", sensitive=True, factory_only=True)
    container: str = opt("images", help="Blob container of the VHD (it must exist).", factory_only=True)
    blob_name: str = opt("{{.BuildName}}-{{timestamp}}.vhd", help="Name of the page blob; `{{timestamp}}` and "
                         "`{{.BuildName}}` are expanded.", factory_only=True)
    blob_endpoint: str | None = opt(None, help="Blob service URL (default `https://ACCOUNT.blob.core.windows.net`"
                                    "; for Azure Stack, sovereign clouds or Azurite).", factory_only=True)
    resource_manager_endpoint: str | None = opt(None, help="ARM URL (default `https://management.azure.com`).",
                                                factory_only=True)
    image_name: str | None = opt(None, help="Managed image to create (needed unless a gallery or `skip_image`).",
                                 factory_only=True)
    os_type: str = opt("Linux", help="`Linux` or `Windows`.", factory_only=True)
    hyper_v_generation: str | None = opt(None, help="`V1` or `V2` (default: `V2` for EFI builds, else `V1`).",
                                         factory_only=True)
    gallery_name: str | None = opt(None, help="Shared Image Gallery to publish a version to.", factory_only=True)
    gallery_resource_group: str | None = opt(None, help="Resource group of the gallery (default: "
                                             "`resource_group`).", factory_only=True)
    gallery_image_name: str | None = opt(None, help="Image definition in the gallery (it must exist).",
                                         factory_only=True)
    gallery_image_version: str | None = opt(None, help="Version to create, `MAJOR.MINOR.PATCH`.",
                                            factory_only=True)
    replication_regions: list[str] = opt([], help="Regions the gallery version is replicated to (besides "
                                         "`location`).", factory_only=True)
    skip_image: bool = opt(False, help="Only upload the VHD; create no image.", factory_only=True)
    skip_clean: bool = opt(True, help="Keep the VHD blob after the image is made (a managed image made from a "
                           "blob keeps reading it until it is copied; delete it yourself later).",
                           factory_only=True)
    upload_concurrency: int = opt(4, help="Page ranges uploaded at once.", factory_only=True)

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"os_type": ("Linux", "Windows"),
                                                     "hyper_v_generation": ("V1", "V2")}

    def problems(self) -> list[OptionProblem]:
        out = []
        gallery = (self.gallery_name, self.gallery_image_name, self.gallery_image_version)
        if any(gallery) and not all(gallery):
            out.append(OptionProblem("gallery_name", "a gallery version needs gallery_name, gallery_image_name "
                                     "and gallery_image_version", "set all three, or none"))
        return out


@dataclass(frozen=True)
class GoogleComputeImportPostProcessor(Checked, Component, kind=Kind.POST_PROCESSOR, name="googlecompute-import"):
    """Upload a GCE image tarball to Cloud Storage and create a Compute Engine image from it."""

    summary: ClassVar[str] = ("Uploads disk.raw in a tar.gz (made from the disk if the artifact has none) to GCS "
                              "with a resumable upload, then creates the image with images.insert.")

    project_id: str = opt(required=True, help="Project of the bucket and the image. Required.")
    account_file: str | None = opt(None, help="Service account key JSON (else GOOGLE_APPLICATION_CREDENTIALS / "
                                   "Application Default Credentials).", sensitive=True)
    impersonate_service_account: str | None = opt(None, help="Service account to impersonate with the "
                                                  "credentials found.")
    bucket: str = opt(required=True, help="Bucket the tarball is uploaded to. Required.")
    gcs_object_name: str = opt("packer-import-{{timestamp}}.tar.gz", help="Object name of the upload; "
                               "`{{timestamp}}` and `{{.BuildName}}` are expanded.")
    image_name: str = opt(required=True, help="Name of the image. Required.")
    image_family: str | None = opt(None, help="Family of the image.")
    image_description: str | None = opt(None, help="Description of the image.")
    image_labels: dict[str, str] = opt({}, help="Labels of the image.")
    image_guest_os_features: list[str] = opt([], help="Guest OS features, e.g. `UEFI_COMPATIBLE`, "
                                             "`GVNIC`, `VIRTIO_SCSI_MULTIQUEUE` (UEFI_COMPATIBLE is added for "
                                             "EFI builds).")
    image_storage_locations: list[str] = opt([], help="Storage location of the image, e.g. `us`.")
    image_architecture: str | None = opt(None, help="`X86_64` or `ARM64`.")
    skip_clean: bool = opt(False, help="Keep the uploaded object after the image is made.")
    compute_endpoint: str | None = opt(None, help="Compute API URL (private endpoints, tests); Cloud Storage "
                                       "follows STORAGE_EMULATOR_HOST.", factory_only=True)
    iam_endpoint: str | None = opt(None, help="IAM Credentials API URL that `impersonate_service_account` asks "
                                   "for tokens (default `https://iamcredentials.googleapis.com`; private "
                                   "endpoints, tests).", factory_only=True)
    upload_chunk_size: str = opt("32M", help="Size of each resumable upload request (a multiple of 256 KiB).",
                                 factory_only=True)

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"image_architecture": ("X86_64", "ARM64")}
    SIZES: ClassVar[frozenset[str]] = frozenset({"upload_chunk_size"})
