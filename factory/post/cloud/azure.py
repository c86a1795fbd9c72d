"""`azure-import`: the disk as a fixed VHD page blob (zero ranges never sent), then a managed image or a Shared
Image Gallery version through ARM. Options: factory/schema/cloud.py."""

from __future__ import annotations

import hashlib
import os
import struct
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from factory import events
from factory.artifact.model import Artifact, Firmware
from factory.errors import FactoryError
from factory.fsutil import read_part
from factory.post.base import PostContext, PostProcessor, Result
from factory.post.cloud.common import is_loopback, render_name, result_artifact, upload_file

BUILDER_ID = "factory.post-processor.azure-import"
MIB = 1 << 20
PAGE_CHUNK = 4 * MIB          # the largest Put Page
DIGEST_KEY = "factorydigest"  # blob metadata: content_digest() of the file the blob is being filled from
ARM = "https://management.azure.com"
IDENTITY_CHAIN = ("the Azure identity chain (AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, workload "
                  "identity, managed identity, Azure CLI, Azure PowerShell, Azure Developer CLI)")


def check_fixed_vhd(path: Path) -> int:
    """The virtual size of a fixed VHD whose size Azure accepts (whole MiB), else a FactoryError."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        fh.seek(max(0, size - 512))
        footer = fh.read(512)
    hint = 'let factory convert the disk (drop the .vhd file from the artifact), or use post-processor "vhd"'
    if size < 512 or size % 512 or footer[:8] != b"conectix":
        raise FactoryError(f"azure-import: {path.name} is not a VHD (no footer)", hint=hint)
    current, disk_type = struct.unpack(">Q", footer[48:56])[0], struct.unpack(">I", footer[60:64])[0]
    if disk_type != 2 or size != current + 512:
        raise FactoryError(f"azure-import: {path.name} is a dynamic VHD; Azure needs a fixed one", hint=hint)
    if current % MIB:
        raise FactoryError(f"azure-import: {path.name}'s virtual size {current} is not a whole number of MiB, "
                           "which Azure refuses", hint=hint)
    return int(current)


def data_chunks(path: Path) -> Iterator[tuple[int, int]]:
    """(offset, length) of the 4 MiB-aligned chunks the file's allocated extents touch (SEEK_DATA/SEEK_HOLE)."""
    size = path.stat().st_size
    fd = os.open(path, os.O_RDONLY)
    try:
        pos, last = 0, -1
        while pos < size:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:          # ENXIO: no data after pos
                break
            end = os.lseek(fd, start, os.SEEK_HOLE)
            for idx in range(max(start // PAGE_CHUNK, last + 1), (end - 1) // PAGE_CHUNK + 1):
                yield idx * PAGE_CHUNK, min(PAGE_CHUNK, size - idx * PAGE_CHUNK)
                last = idx
            pos = end
    finally:
        os.close(fd)


def content_digest(path: Path, chunks: list[tuple[int, int]]) -> str:
    """SHA-256 of the chunks' offsets and bytes, but the VHD footer (the last 512 bytes): what a page blob must
    hold for a re-run to resume into it. The footer is left out because it differs between two conversions of
    the same disk (creation time, unique id), and the chunk holding it is always sent again."""
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with open(path, "rb") as fh:
        for offset, length in chunks:
            fh.seek(offset)
            digest.update(offset.to_bytes(8, "big") + fh.read(max(0, min(length, size - 512 - offset))))
    return digest.hexdigest()


def _present(blob: Any, size: int, digest: str, chunks: list[tuple[int, int]]) -> set[int] | None:
    """Offsets of the chunks an earlier run of the same file already wrote (each Put Page is atomic, so a page
    range covering a chunk holds all of it), or None when there is no such blob to resume into."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        props = blob.get_blob_properties()
    except ResourceNotFoundError:
        return None
    if props.blob_type != "PageBlob" or props.size != size or props.metadata.get(DIGEST_KEY) != digest:
        return None
    ranges = sorted((r.start, r.end) for r in blob.list_page_ranges() if not getattr(r, "cleared", False))
    merged: list[list[int]] = []
    for start, end in ranges:
        if merged and start <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    footer = (size - 512) // PAGE_CHUNK * PAGE_CHUNK
    return {off for off, n in chunks if off != footer and any(a <= off and off + n - 1 <= b for a, b in merged)}


@dataclass(frozen=True)
class PageStats:
    """What one run sent, and the chunks an interrupted earlier run had already written."""

    sent_bytes: int
    sent_chunks: int
    resumed_chunks: int


def upload_page_blob(blob: Any, path: Path, concurrency: int, emit: Any) -> PageStats:
    """Put Page every chunk that holds a non-zero byte into a page blob of the file's size. A blob left by an
    interrupted run of the same content (its digest in the blob's metadata; see content_digest) is resumed:
    chunks already written are not sent again, but the footer's. Otherwise the blob is (re)created."""
    size = path.stat().st_size
    chunks = list(data_chunks(path))
    digest = content_digest(path, chunks)
    present = _present(blob, size, digest, chunks)
    if present is None:
        blob.create_page_blob(size, metadata={DIGEST_KEY: digest})
        present = set()
    else:
        emit(f"Resuming the page blob {blob.url}: {len(present)} of {len(chunks)} chunk(s) already there")
    lock, totals = threading.Lock(), [0, 0]
    fd = os.open(path, os.O_RDONLY)

    def one(offset: int, length: int, bar: events.Tracker) -> None:
        data = read_part(fd, path, offset, length)
        if offset not in present and data.count(0) != len(data):   # a new page blob reads zero
            blob.upload_page(data, offset=offset, length=length)
            with lock:
                totals[0] += length
                totals[1] += 1
        with lock:
            bar.advance(length)

    try:
        with events.progress(f"uploading {path.name} to {blob.url}", size) as bar, \
                ThreadPoolExecutor(max_workers=concurrency) as pool:
            for fut in [pool.submit(one, off, n, bar) for off, n in chunks]:
                fut.result()
    finally:
        os.close(fd)
    return PageStats(totals[0], totals[1], len(present))


class _Azure:
    """Clients and credentials of one run, and where they came from (for error messages)."""

    def __init__(self, config: Any) -> None:
        self.config = config
        self.arm = (config.resource_manager_endpoint or ARM).rstrip("/")

    def container(self) -> tuple[Any, str]:
        from azure.storage.blob import BlobServiceClient

        c = self.config
        url = c.blob_endpoint or f"https://{c.storage_account}.blob.core.windows.net"
        conn = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
        if c.storage_account_key:
            svc, source = BlobServiceClient(url, credential={"account_name": c.storage_account,
                                                             "account_key": c.storage_account_key}), \
                "the storage_account_key option"
        elif conn:
            svc, source = BlobServiceClient.from_connection_string(conn), "AZURE_STORAGE_CONNECTION_STRING"
        elif os.environ.get("AZURE_STORAGE_KEY"):
            svc, source = BlobServiceClient(url, credential={"account_name": c.storage_account,
                                                             "account_key": os.environ["AZURE_STORAGE_KEY"]}), \
                "AZURE_STORAGE_KEY"
        else:
            svc, source = BlobServiceClient(url, credential=self.credential()), IDENTITY_CHAIN
        return svc.get_container_client(c.container), source

    def credential(self) -> Any:
        from azure.identity import DefaultAzureCredential

        return DefaultAzureCredential()

    def compute(self) -> Any:
        from azure.mgmt.compute import ComputeManagementClient

        sub = self.config.subscription_id or os.environ.get("AZURE_SUBSCRIPTION_ID")
        if not sub:
            raise FactoryError("azure-import: no subscription", hint="set subscription_id or AZURE_SUBSCRIPTION_ID")
        self.subscription = sub
        return ComputeManagementClient(self.credential(), sub, base_url=self.arm,
                                       credential_scopes=[self.arm + "/.default"])

    def call_options(self) -> dict[str, Any]:
        """Plain HTTP only for a loopback endpoint (a local stand-in); azure-core refuses tokens over it else."""
        return {"enforce_https": False, "polling_interval": 0.2} if is_loopback(self.arm) else {}


def _storage_error(exc: Exception, what: str, source: str, config: Any) -> FactoryError:
    from azure.core.exceptions import ClientAuthenticationError, ResourceNotFoundError

    code = getattr(exc, "error_code", None) or ""
    if isinstance(exc, ResourceNotFoundError) and "Container" in str(code):
        return FactoryError(f"azure-import: {what}: container {config.container!r} does not exist in storage "
                            f"account {config.storage_account!r}", hint="create it, or fix container")
    if isinstance(exc, ClientAuthenticationError) or code in ("AuthenticationFailed", "AuthorizationFailure"):
        return FactoryError(f"azure-import: {what}: Azure Storage rejected the credentials from {source}: "
                            f"{code or type(exc).__name__}", hint="credentials are looked for in: the "
                            "storage_account_key option, AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_KEY, "
                            + IDENTITY_CHAIN)
    return FactoryError(f"azure-import: {what}: {getattr(exc, 'message', None) or exc}")


class AzureImport(PostProcessor, type="azure-import"):
    def process(self, config: Any, artifact: Artifact, ctx: PostContext) -> Result:
        gallery = config.gallery_name and config.gallery_image_name and config.gallery_image_version
        if not config.skip_image and not (config.image_name or gallery):
            raise FactoryError("azure-import needs image_name, a gallery version or skip_image = true",
                               hint='e.g. image_name = "debian-12"')
        if not config.skip_image and not config.location:
            raise FactoryError("azure-import: creating an image needs location", hint='e.g. location = "westeurope"')
        az = _Azure(config)
        name = render_name(config.blob_name, {"BuildName": ctx.source_name}, "blob_name")
        container, source = az.container()
        with upload_file(artifact, "vhd", (".vhd",), "azure-import", ctx) as vhd:
            check_fixed_vhd(vhd)
            blob = container.get_blob_client(name)
            try:
                stats = upload_page_blob(blob, vhd, config.upload_concurrency, ctx.emit)
            except Exception as exc:
                if type(exc).__module__.startswith("azure."):
                    raise _storage_error(exc, f"uploading {vhd.name}", source, config) from None
                raise
            ctx.emit(f"Uploaded {vhd.name} to {blob.url}: {stats.sent_bytes} of {vhd.stat().st_size} bytes sent "
                     f"({stats.sent_chunks} page range(s); zero ranges skipped, {stats.resumed_chunks} already "
                     "there)")
        state = {"blob_url": blob.url}
        ident = blob.url
        if not config.skip_image:
            ident = _create_image(az, config, artifact, blob.url, ctx)
            state["image_id"] = ident
            if not config.skip_clean:
                blob.delete_blob()
        ctx.emit(f"Azure image: {ident}")
        return Result(result_artifact(BUILDER_ID, artifact, ident, state), keep_input=False)


def _create_image(az: _Azure, config: Any, artifact: Artifact, blob_url: str, ctx: PostContext) -> str:
    """PUT the managed image or gallery version (documented ARM bodies) and wait for the operation."""
    from azure.core.exceptions import AzureError, ClientAuthenticationError

    compute = az.compute()
    gen = config.hyper_v_generation or ("V2" if artifact.hardware.firmware == Firmware.EFI else "V1")
    try:
        if config.gallery_name:
            group = config.gallery_resource_group or config.resource_group
            account = (f"/subscriptions/{az.subscription}/resourceGroups/{config.resource_group}/providers/"
                       f"Microsoft.Storage/storageAccounts/{config.storage_account}")
            regions = [config.location, *[r for r in config.replication_regions if r != config.location]]
            body = {"location": config.location, "properties": {
                "publishingProfile": {"targetRegions": [{"name": r} for r in regions]},
                "storageProfile": {"osDiskImage": {"source": {"uri": blob_url, "storageAccountId": account}}}}}
            ctx.emit(f"Creating gallery image version {config.gallery_name}/{config.gallery_image_name}/"
                     f"{config.gallery_image_version} in {', '.join(regions)}")
            poller = compute.gallery_image_versions.begin_create_or_update(
                group, config.gallery_name, config.gallery_image_name, config.gallery_image_version, body,
                **az.call_options())
        else:
            body = {"location": config.location, "properties": {"hyperVGeneration": gen, "storageProfile": {
                "osDisk": {"osType": config.os_type, "osState": "Generalized", "blobUri": blob_url}}}}
            ctx.emit(f"Creating managed image {config.image_name} in {config.resource_group} ({gen})")
            poller = compute.images.begin_create_or_update(config.resource_group, config.image_name, body,
                                                           **az.call_options())
        return str(poller.result().id)
    except ClientAuthenticationError as exc:
        raise FactoryError(f"azure-import: Azure Resource Manager rejected the credentials: {exc.message}",
                           hint="credentials are looked for in " + IDENTITY_CHAIN) from None
    except AzureError as exc:
        raise FactoryError(f"azure-import: creating the image failed: {exc.message}") from None
