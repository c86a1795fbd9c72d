"""Cloud Storage resumable upload that survives an interruption.

The SDK opens the session (Blob.create_resumable_upload_session); factory sends the chunks itself over the SDK's
authorized transport, following the documented protocol (PUT with Content-Range; 308 and a Range header while
incomplete). GCS cannot list open sessions, so the session URI is kept in a state file under the build's root
(.factory-uploads/, mode 0600: the URI authorizes the upload) together with the file's size and SHA-256. A
re-run of the same file to the same object asks the session how many bytes it holds (`Content-Range: bytes
*/SIZE`) and sends only the rest. A session that expired (GCS keeps them a week) or a changed file starts anew.
Any failure other than an interruption cancels the session and forgets it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from factory import events
from factory.fsutil import atomic_path, file_sha256, read_part

STATE_DIR = ".factory-uploads"
_RANGE = re.compile(r"bytes=0-(\d+)")


@dataclass(frozen=True)
class GcsStats:
    """What one run sent, and the bytes an interrupted earlier run had already stored."""

    size: int
    sent_bytes: int
    resumed_bytes: int


def state_path(root: Path, bucket: str, name: str) -> Path:
    key = hashlib.sha256(f"gs://{bucket}/{name}".encode()).hexdigest()[:20]
    return root / STATE_DIR / f"gcs-{key}.json"


def _save(path: Path, state: dict[str, Any]) -> None:
    """Atomically, and readable by the owner only: the session URI authorizes the upload."""
    with atomic_path(path, private=True) as tmp:
        tmp.write_text(json.dumps(state))


def _forget(path: Path) -> None:
    path.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        path.parent.rmdir()          # only when no other upload is pending


def _stored(resp: Any, size: int) -> int:
    """Bytes the session holds, from a 308's Range header (none: 0) or a finished upload's 200/201."""
    if resp.status_code in (200, 201):
        return size
    match = _RANGE.fullmatch(resp.headers.get("Range", ""))
    return int(match.group(1)) + 1 if match else 0


def _raise_for(resp: Any) -> None:
    if resp.status_code not in (200, 201, 308):
        from google.api_core import exceptions

        raise exceptions.from_http_response(resp)  # type: ignore[no-untyped-call]


def _offset(session: Any, url: str, size: int) -> int | None:
    """How much of the upload the session holds, or None when it is gone (expired, cancelled)."""
    resp = session.put(url, data=b"", headers={"Content-Range": f"bytes */{size}"})
    if resp.status_code in (404, 410):
        return None
    _raise_for(resp)
    return _stored(resp, size)


def resumable_upload(blob: Any, session: Any, path: Path, root: Path, chunk_size: int, content_type: str,
                     emit: Callable[[str], None]) -> GcsStats:
    """Upload path to blob with a resumable upload; resume the session of an interrupted run of the same file."""
    size, digest = path.stat().st_size, file_sha256(path)
    state = state_path(root, blob.bucket.name, blob.name)
    url, offset = None, 0
    with contextlib.suppress(OSError, ValueError):
        saved = json.loads(state.read_text())
        if saved.get("size") == size and saved.get("sha256") == digest:
            found = _offset(session, saved["url"], size)
            if found is not None:
                url, offset = saved["url"], found
                emit(f"Resuming the upload to gs://{blob.bucket.name}/{blob.name}: {offset} of {size} bytes "
                     "already there")
    if url is None:
        url = blob.create_resumable_upload_session(content_type=content_type, size=size)
        _save(state, {"url": url, "size": size, "sha256": digest})
    resumed, sent = offset, 0
    try:
        with open(path, "rb") as fh, events.progress(f"uploading {path.name} to gs://{blob.bucket.name}/"
                                                     f"{blob.name}", size) as bar:
            bar.advance(offset)
            while offset < size:
                data = read_part(fh.fileno(), path, offset, min(chunk_size, size - offset))
                resp = session.put(url, data=data, headers={
                    "Content-Range": f"bytes {offset}-{offset + len(data) - 1}/{size}"})
                _raise_for(resp)
                sent += len(data)
                stored = _stored(resp, size)
                bar.advance(stored - offset)
                offset = stored
    except Exception:
        # Not an interruption (KeyboardInterrupt and kills never get here): nobody will resume this session.
        with contextlib.suppress(Exception):
            session.delete(url)
        _forget(state)
        raise
    _forget(state)
    return GcsStats(size, sent, resumed)
