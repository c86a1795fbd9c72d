"""S3 multipart upload: parallel, resumable, and aborted on failure.

Resuming: an interrupted run (killed, Ctrl-C) leaves its multipart upload in the bucket. The next run for the
same key finds it (ListMultipartUploads), lists its parts (ListParts) and sends only the parts whose size and
MD5 ETag differ from the local file's, so a part already stored is never sent twice. Part boundaries depend only
on the file size, and factory's exports are reproducible, so a re-converted disk resumes too.
Any other failure aborts the upload, so no orphan parts are left to be billed.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from factory import events, ui
from factory.fsutil import read_part

MIB = 1 << 20
MIN_PART = 5 * MIB          # S3's smallest part (but the last)
MAX_PARTS = 10_000
DEFAULT_PART = 16 * MIB


@dataclass(frozen=True)
class UploadStats:
    """What one run sent: bytes and parts sent now, parts found already uploaded by an earlier run."""

    upload_id: str
    size: int
    parts: int
    sent_parts: int
    sent_bytes: int
    resumed_parts: int


def part_size_for(size: int, wanted: int | None = None) -> int:
    """The part size: wanted (or 16 MiB), at least 5 MiB, grown in whole MiB so the file fits 10,000 parts."""
    part = max(wanted or DEFAULT_PART, MIN_PART)
    need = -(-size // MAX_PARTS)
    return max(part, -(-need // MIB) * MIB)


def _md5(data: bytes) -> bytes:
    return hashlib.md5(data, usedforsecurity=False).digest()


def _existing(client: Any, bucket: str, key: str, emit: Callable[[str], None]) -> tuple[str | None, dict[int, Any]]:
    """The newest unfinished upload of key and its parts {number: (size, etag)}; older ones are aborted."""
    uploads: list[dict[str, Any]] = []
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=key):
        uploads += [u for u in page.get("Uploads", []) if u["Key"] == key]
    if not uploads:
        return None, {}
    uploads.sort(key=lambda u: u["Initiated"])
    for stale in uploads[:-1]:
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=stale["UploadId"])
    upload_id = uploads[-1]["UploadId"]
    parts: dict[int, Any] = {}
    for page in client.get_paginator("list_parts").paginate(Bucket=bucket, Key=key, UploadId=upload_id):
        for p in page.get("Parts", []):
            parts[p["PartNumber"]] = (p["Size"], p["ETag"].strip('"'))
    emit(f"Resuming multipart upload {upload_id} of s3://{bucket}/{key}: {len(parts)} part(s) already uploaded")
    return upload_id, parts


def upload(client: Any, path: Path, bucket: str, key: str, *, part_size: int | None = None, concurrency: int = 4,
           extra_args: dict[str, str] | None = None, emit: Callable[[str], None] = ui.info) -> UploadStats:
    """Upload path to s3://bucket/key as a multipart upload; resume an unfinished one for the same key."""
    size = path.stat().st_size
    psize = part_size_for(size, part_size)
    count = max(1, -(-size // psize))
    upload_id, present = _existing(client, bucket, key, emit)
    if upload_id is None:
        upload_id = client.create_multipart_upload(Bucket=bucket, Key=key, **(extra_args or {}))["UploadId"]
    try:
        etags, sent, sent_bytes = _send_parts(client, path, bucket, key, upload_id, size, psize, count, present,
                                              concurrency)
        client.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etags[n]} for n in range(1, count + 1)]})
    except Exception:
        # A failure (not an interruption: KeyboardInterrupt and kills are BaseException or never get here)
        # would leave billed parts nobody resumes.
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise
    return UploadStats(upload_id, size, count, sent, sent_bytes, count - sent)


def _send_parts(client: Any, path: Path, bucket: str, key: str, upload_id: str, size: int, psize: int,
                count: int, present: dict[int, Any], concurrency: int) -> tuple[dict[int, str], int, int]:
    # size is the one upload() planned the parts for: a second stat here, after the file shrank, made a negative
    # length for the last parts (os.pread's bare EINVAL) instead of read_part's error naming the file.
    etags: dict[int, str] = {}
    lock = threading.Lock()
    totals = [0, 0]
    fd = os.open(path, os.O_RDONLY)

    def one(number: int, bar: events.Tracker) -> None:
        offset = (number - 1) * psize
        data = read_part(fd, path, offset, min(psize, size - offset))
        digest = _md5(data)
        have = present.get(number)
        if have is not None and have == (len(data), digest.hex()):
            etags[number] = f'"{digest.hex()}"'
        else:
            resp = client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=data,
                                      ContentMD5=base64.b64encode(digest).decode())
            etags[number] = resp["ETag"]
            with lock:
                totals[0] += 1
                totals[1] += len(data)
        with lock:   # the plain (non-TTY) tracker is not thread-safe
            bar.advance(len(data))

    try:
        with events.progress(f"uploading {path.name} to s3://{bucket}/{key}", size, activity="upload") as bar, \
                ThreadPoolExecutor(max_workers=concurrency) as pool:
            futures = [pool.submit(one, n, bar) for n in range(1, count + 1)]
            wait(futures, return_when=FIRST_EXCEPTION)
            for f in futures:
                if f.done() and f.exception() is not None:
                    for other in futures:
                        other.cancel()
                    raise f.exception()  # type: ignore[misc]
    finally:
        os.close(fd)
    return etags, totals[0], totals[1]
