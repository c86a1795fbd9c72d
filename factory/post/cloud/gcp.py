"""`googlecompute-import`: disk.raw in a tar.gz uploaded to Cloud Storage with a resumable upload, then
`images.insert` and its operation awaited. Options: factory/schema/cloud.py."""

from __future__ import annotations

import os
import time
from typing import Any

from factory.artifact.model import Artifact, Firmware
from factory.errors import FactoryError
from factory.post.base import PostContext, PostProcessor, Result
from factory.post.cloud.common import render_name, result_artifact, upload_file
from factory.post.cloud.gcsupload import resumable_upload
from factory.schema.types import parse_size_mib

BUILDER_ID = "packer.post-processor.googlecompute-import"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
ADC_PLACES = ("GOOGLE_APPLICATION_CREDENTIALS, gcloud's application default credentials "
              "(~/.config/gcloud/application_default_credentials.json) and the GCE metadata server")
OPERATION_TIMEOUT = 3 * 3600


def credentials(config: Any) -> tuple[Any, str]:
    """(credentials, where they came from): account_file, else Application Default Credentials."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError
    from google.oauth2 import service_account

    if config.account_file:
        path = os.path.expanduser(config.account_file)
        try:
            creds: Any = service_account.Credentials.from_service_account_file(path, scopes=SCOPES)
        except (OSError, ValueError) as exc:
            raise FactoryError(f"googlecompute-import: account_file {path} is not a usable service account key: "
                               f"{exc}", hint="download a JSON key of the service account, or drop account_file "
                               "to use " + ADC_PLACES) from None
        source = f"account_file {path}"
    else:
        try:
            creds, _ = google.auth.default(scopes=SCOPES)
        except DefaultCredentialsError as exc:
            raise FactoryError(f"googlecompute-import: no Google credentials found: {exc}",
                               hint="set account_file, or provide credentials in " + ADC_PLACES) from None
        source = "Application Default Credentials"
    if config.impersonate_service_account:
        from google.auth import impersonated_credentials

        who = config.impersonate_service_account
        override = f"{config.iam_endpoint.rstrip('/')}/v1/projects/-/serviceAccounts/{who}:generateAccessToken" \
            if config.iam_endpoint else None
        creds = impersonated_credentials.Credentials(source_credentials=creds, target_scopes=SCOPES,
                                                     target_principal=who, iam_endpoint_override=override)
        source += f", impersonating {config.impersonate_service_account}"
    return creds, source


def _api_error(exc: Exception, what: str, source: str) -> FactoryError:
    from google.api_core import exceptions as gex
    from google.auth.exceptions import RefreshError

    if isinstance(exc, RefreshError | gex.Unauthorized):
        return FactoryError(f"googlecompute-import: {what}: Google rejected the credentials from {source}: {exc}",
                            hint="check the key and its roles (Storage Object Admin, Compute Image User); "
                            "credentials are looked for in account_file, then " + ADC_PLACES)
    if isinstance(exc, gex.Forbidden):
        return FactoryError(f"googlecompute-import: {what}: permission denied for {source}: {exc.message}")
    message = getattr(exc, "message", None) or str(exc)
    return FactoryError(f"googlecompute-import: {what}: {message}")


class GoogleComputeImport(PostProcessor, type="googlecompute-import"):
    def process(self, config: Any, artifact: Artifact, ctx: PostContext) -> Result:
        from google.api_core.exceptions import GoogleAPIError, NotFound
        from google.auth.exceptions import GoogleAuthError
        from google.auth.transport.requests import AuthorizedSession
        from google.cloud import storage  # type: ignore[attr-defined]  # (untyped namespace package)

        creds, source = credentials(config)
        name = render_name(config.gcs_object_name, {"BuildName": ctx.source_name}, "gcs_object_name")
        client = storage.Client(project=config.project_id, credentials=creds)
        blob = client.bucket(config.bucket).blob(name)
        with upload_file(artifact, "gce", (".tar.gz",), "googlecompute-import", ctx) as tarball:
            ctx.emit(f"Uploading {tarball.name} to gs://{config.bucket}/{name} (resumable)")
            try:
                stats = resumable_upload(blob, AuthorizedSession(creds), tarball, ctx.root,
                                         parse_size_mib(config.upload_chunk_size) << 20, "application/gzip",
                                         ctx.emit)
            except NotFound:
                raise FactoryError(f"googlecompute-import: the bucket {config.bucket!r} does not exist",
                                   hint="create it in project_id's project, or fix bucket") from None
            except (GoogleAPIError, GoogleAuthError) as exc:
                raise _api_error(exc, f"uploading to gs://{config.bucket}/{name}", source) from None
        ctx.emit(f"Uploaded {tarball.name} to gs://{config.bucket}/{name}: {stats.sent_bytes} of {stats.size} "
                 f"bytes sent, {stats.resumed_bytes} already there")
        try:
            link = _insert(config, creds, source, f"https://storage.googleapis.com/{config.bucket}/{name}",
                           artifact, ctx)
        finally:
            if not config.skip_clean:
                blob.delete()
        ctx.emit(f"Created GCE image {config.image_name}: {link}")
        state = {"image_name": config.image_name, "project_id": config.project_id, "self_link": link}
        return Result(result_artifact(BUILDER_ID, artifact, link, state), keep_input=False)


def _insert(config: Any, creds: Any, source: str, uri: str, artifact: Artifact, ctx: PostContext) -> str:
    """images.insert from the uploaded tarball; wait for its operation; the new image's self link."""
    from google.api_core.exceptions import GoogleAPIError
    from google.auth.exceptions import GoogleAuthError
    from google.cloud import compute_v1

    features = list(config.image_guest_os_features)
    if artifact.hardware.firmware == Firmware.EFI and "UEFI_COMPATIBLE" not in features:
        features.append("UEFI_COMPATIBLE")
    image = compute_v1.Image(name=config.image_name, raw_disk=compute_v1.RawDisk(source=uri),
                             guest_os_features=[compute_v1.GuestOsFeature(type_=f) for f in features],
                             labels=dict(config.image_labels), storage_locations=list(config.image_storage_locations))
    if config.image_family:
        image.family = config.image_family
    if config.image_description:
        image.description = config.image_description
    if config.image_architecture:
        image.architecture = config.image_architecture
    options = {"api_endpoint": config.compute_endpoint} if config.compute_endpoint else None
    images = compute_v1.ImagesClient(credentials=creds, client_options=options)
    what = f"creating image {config.image_name}"
    try:
        operation = images.insert(project=config.project_id, image_resource=image)
        ctx.emit(f"Creating image {config.image_name} from {uri} (operation {operation.name})")
        done = _wait(compute_v1.GlobalOperationsClient(credentials=creds, client_options=options),
                     config.project_id, operation.name)
        # A failed operation's own messages say why (its HTTP status text does not): shown as written.
        if done.error and done.error.errors:
            raise FactoryError(f"googlecompute-import: {what} failed: " + "; ".join(
                f"{e.code}: {e.message}" for e in done.error.errors))
        return str(images.get(project=config.project_id, image=config.image_name).self_link)
    except (GoogleAPIError, GoogleAuthError) as exc:
        raise _api_error(exc, what, source) from None


def _wait(operations: Any, project: str, name: str) -> Any:
    """Poll globalOperations.get on the same endpoint as the insert until DONE (the client library's own
    waiter asks the default endpoint, whatever compute_endpoint says)."""
    delay, deadline = 0.5, time.monotonic() + OPERATION_TIMEOUT
    while True:
        from google.cloud import compute_v1

        op = operations.get(project=project, operation=name)
        if op.status == compute_v1.Operation.Status.DONE:
            return op
        if time.monotonic() > deadline:
            raise FactoryError(f"googlecompute-import: operation {name} did not finish in {OPERATION_TIMEOUT} s")
        time.sleep(delay)
        delay = min(delay * 1.5, 10.0)
