"""Small data ISOs in pure Python (pycdlib): the NoCloud `cidata` seed and any file set a guest should see.

No xorriso/genisoimage needed. Output is deterministic (fixed timestamps, sorted order) and appears atomically.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

import pycdlib

from factory.errors import die
from factory.fsutil import atomic_path
from factory.media.isofs import DEFAULT_EPOCH, MediaWriter, check_media_path, frozen_clock

NOCLOUD_LABEL = "cidata"


def _epoch() -> float:
    """SOURCE_DATE_EPOCH (the reproducible-builds convention) if set, else a fixed date."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "")
    return float(value) if value.isdigit() else DEFAULT_EPOCH


def make_iso(files: Mapping[str, bytes | Path], out: Path, *, label: str = NOCLOUD_LABEL) -> Path:
    """Write an ISO9660 (Joliet + Rock Ridge) image holding files, keyed by their path on the media."""
    if not files:
        die("a seed ISO needs at least one file")
    if not label or len(label) > 32 or not (label.isascii() and label.isprintable()):
        die(f"volume label {label!r} must be 1 to 32 printable ASCII characters",
            hint="ISO9660 volume ids are ASCII; cloud-init's NoCloud seed wants 'cidata'")
    for dest, src in files.items():
        check_media_path(dest)
        if isinstance(src, Path) and not src.is_file():
            die(f"file for {dest!r} not found: {src}", hint="check the path given on the command line")
    out = Path(out)
    with frozen_clock(_epoch()), contextlib.ExitStack() as stack:
        iso = pycdlib.PyCdlib()
        # Level 3 allows long ISO9660 names; Rock Ridge and Joliet carry the real (case-preserving) names.
        iso.new(interchange_level=3, vol_ident=label, joliet=3, rock_ridge="1.09", sys_ident="LINUX")
        stack.callback(iso.close)
        writer = MediaWriter(iso, stack)
        for dest in sorted(files, key=lambda p: p.strip("/")):
            writer.put(dest, files[dest])
        with atomic_path(out) as tmp:
            iso.write(str(tmp))
    return out


def seed_key(files: Mapping[str, bytes | Path], label: str) -> str:
    """Names a seed ISO in the store: its label, the clock it is made with, each file's path and content."""
    doc = [1, label, _epoch()]
    for dest in sorted(files):
        src = files[dest]
        data = src.read_bytes() if isinstance(src, Path) else src
        doc.append([dest, hashlib.sha256(data).hexdigest()])
    return hashlib.sha256(json.dumps(doc).encode()).hexdigest()


def make_iso_stored(files: Mapping[str, bytes | Path], out: Path, *, label: str = NOCLOUD_LABEL) -> Path:
    """make_iso() through the store: the same files and label give the stored ISO, linked at out."""
    from factory.store import Store

    Store().cached(seed_key(files, label), "seed", out, lambda dest: make_iso(files, dest, label=label))
    return out


def make_cidata(user_data: bytes, meta_data: bytes, out: Path, network_config: bytes | None = None) -> Path:
    """A NoCloud seed (label `cidata`): user-data, meta-data and optionally network-config at the root."""
    files: dict[str, bytes | Path] = {"user-data": user_data, "meta-data": meta_data}
    if network_config is not None:
        files["network-config"] = network_config
    return make_iso(files, out, label=NOCLOUD_LABEL)
