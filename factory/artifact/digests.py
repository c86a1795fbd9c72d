"""Digests computed while a file was being written, so a later checksum or manifest never re-reads it.

Entries are keyed by the file's identity (device, inode, size, mtime): if the file changes, the entry no
longer matches and callers hash the file themselves.
"""

from __future__ import annotations

import os
from pathlib import Path

_KNOWN: dict[tuple[str, int, int, int, int], str] = {}


def _key(path: Path, algorithm: str) -> tuple[str, int, int, int, int]:
    st = os.stat(path)
    return (algorithm, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def remember(path: Path, algorithm: str, hexdigest: str) -> None:
    """Record that path (as it is now) has this digest."""
    _KNOWN[_key(path, algorithm)] = hexdigest


def known(path: Path, algorithm: str) -> str | None:
    """The digest recorded for path if the file is unchanged since, else None."""
    try:
        return _KNOWN.get(_key(path, algorithm))
    except FileNotFoundError:
        return None
