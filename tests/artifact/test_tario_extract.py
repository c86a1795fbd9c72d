"""extract_plain: what tar's `data` filter does, on every Python 3.11 (Debian 12 ships 3.11.2, before filter=)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from factory.artifact.tario import extract_plain


def _tar(path: Path, members: list[tuple[str, bytes | None, int, bytes]]) -> Path:
    """members: (name, data or None for a directory, mode, type)."""
    with tarfile.open(path, "w") as tar:
        for name, data, mode, kind in members:
            info = tarfile.TarInfo(name)
            info.mode, info.type, info.uid, info.gid = mode, kind, 4242, 4242
            if kind == tarfile.SYMTYPE:
                info.linkname = "/etc/passwd"
            info.size = len(data or b"")
            tar.addfile(info, io.BytesIO(data) if data else None)
    return path


def test_files_and_directories_land_inside_with_plain_modes(tmp_path: Path) -> None:
    src = _tar(tmp_path / "a.tar", [("top", None, 0o700, tarfile.DIRTYPE),
                                    ("top/run.sh", b"#!/bin/sh\n", 0o4777, tarfile.REGTYPE),
                                    ("./top/deep/data.txt", b"x" * 3_000_000, 0o666, tarfile.REGTYPE)])
    with tarfile.open(src) as tar:
        written = extract_plain(tar, tmp_path / "out")
    out = tmp_path / "out"
    assert sorted(p.relative_to(out).as_posix() for p in written) == ["top/deep/data.txt", "top/run.sh"]
    assert (out / "top/run.sh").stat().st_mode & 0o7777 == 0o755        # setuid and world-write dropped
    assert (out / "top/deep/data.txt").stat().st_mode & 0o7777 == 0o644
    assert (out / "top/deep/data.txt").read_bytes() == b"x" * 3_000_000
    assert (out / "top/run.sh").stat().st_uid != 4242                     # the archive's owner is not applied


@pytest.mark.parametrize("name, kind, says", [
    ("../escape.txt", tarfile.REGTYPE, "outside"),
    ("a/../../escape.txt", tarfile.REGTYPE, "outside"),
    ("/tmp/escape.txt", tarfile.REGTYPE, "outside"),
    ("link", tarfile.SYMTYPE, "link or device"),
    ("fifo", tarfile.FIFOTYPE, "link or device"),
])
def test_escapes_links_and_devices_are_refused_by_name(tmp_path: Path, name: str, kind: bytes, says: str) -> None:
    src = _tar(tmp_path / "bad.tar", [("ok.txt", b"ok", 0o644, tarfile.REGTYPE), (name, b"", 0o644, kind)])
    with tarfile.open(src) as tar, pytest.raises(ValueError, match=says) as err:
        extract_plain(tar, tmp_path / "out")
    assert repr(name) in str(err.value)
    assert not (tmp_path / "escape.txt").exists() and not Path("/tmp/escape.txt").exists()
    assert not (tmp_path / "out" / "link").exists()
