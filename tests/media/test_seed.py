"""The pure-Python seed ISO maker, checked by the tools a guest and cloud-init actually use (blkid, xorriso)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pycdlib
import pytest

from factory.cli import main
from factory.errors import FactoryError
from factory.media.seed import make_cidata, make_iso

USER_DATA = b"#cloud-config\nhostname: seeded\n"
META_DATA = b"instance-id: i-1\nlocal-hostname: seeded\n"


def _blkid(iso: Path) -> dict[str, str]:
    out = subprocess.run(["blkid", "-p", "-o", "export", str(iso)], check=True, capture_output=True, text=True)
    return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)


def _extract(iso: Path, path: str, dest: Path) -> bytes:
    subprocess.run(["xorriso", "-osirrox", "on", "-indev", str(iso), "-extract", path, str(dest)],
                   check=True, capture_output=True)
    return dest.read_bytes()


def test_cidata_is_what_cloud_init_looks_for(tmp_path: Path) -> None:
    iso = make_cidata(USER_DATA, META_DATA, tmp_path / "seed.iso", network_config=b"version: 2\n")
    info = _blkid(iso)
    # cloud-init's NoCloud finds its seed with `blkid -tLABEL=cidata` and mounts it as iso9660.
    assert info["TYPE"] == "iso9660" and info["LABEL"] == "cidata"
    assert _extract(iso, "/user-data", tmp_path / "ud") == USER_DATA
    assert _extract(iso, "/meta-data", tmp_path / "md") == META_DATA
    assert _extract(iso, "/network-config", tmp_path / "nc") == b"version: 2\n"


def test_names_nested_dirs_and_sources_survive(tmp_path: Path) -> None:
    big = tmp_path / "payload.bin"
    big.write_bytes(bytes(range(256)) * 1000)
    files: dict[str, bytes | Path] = {"a/b/c.txt": b"deep", "a/long-name-with-many-chars.tar.gz": big,
                                      "user-data": b"1", "user_data": b"2", "UPPER.CFG": b"3"}
    iso = make_iso(files, tmp_path / "data.iso", label="DATA")
    listing = subprocess.run(["xorriso", "-indev", str(iso), "-find", "/", "-type", "f"],
                             check=True, capture_output=True, text=True).stdout.split()
    assert sorted(p.strip("'") for p in listing) == sorted("/" + p for p in files)
    assert _extract(iso, "/a/long-name-with-many-chars.tar.gz", tmp_path / "x") == big.read_bytes()
    assert _extract(iso, "/user_data", tmp_path / "y") == b"2"
    # Joliet (what Windows and some firmware read) carries the same names.
    reader = pycdlib.PyCdlib()
    reader.open(str(iso))
    try:
        names = {rec.file_identifier().decode("utf-16-be") for rec in reader.list_children(joliet_path="/a")
                 if not (rec.is_dot() or rec.is_dotdot())}
    finally:
        reader.close()
    assert names == {"b", "long-name-with-many-chars.tar.gz"}


def test_output_is_deterministic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    one = make_cidata(USER_DATA, META_DATA, tmp_path / "one.iso")
    two = make_cidata(USER_DATA, META_DATA, tmp_path / "two.iso")
    assert one.read_bytes() == two.read_bytes()
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    three = make_cidata(USER_DATA, META_DATA, tmp_path / "three.iso")
    assert three.read_bytes() != one.read_bytes()  # the epoch is honoured, so the dates are really fixed by it


def test_missing_source_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FactoryError, match="not found"):
        make_iso({"x": tmp_path / "nope"}, tmp_path / "out.iso")
    assert list(tmp_path.iterdir()) == []


def test_seed_iso_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ud, extra = tmp_path / "user-data.yaml", tmp_path / "notes.txt"
    ud.write_bytes(USER_DATA)
    extra.write_text("hello\n")
    out = tmp_path / "seed.iso"
    with pytest.raises(SystemExit) as done:
        main(["seed-iso", "--user-data", str(ud), "--file", f"{extra}:docs/notes.txt", "-o", str(out)])
    assert done.value.code == 0
    assert _extract(out, "/docs/notes.txt", tmp_path / "n") == b"hello\n"
    assert _extract(out, "/meta-data", tmp_path / "m").startswith(b"instance-id: iid-")
    with pytest.raises(SystemExit) as bad:
        main(["seed-iso", "--file", str(tmp_path / "missing"), "-o", str(tmp_path / "x.iso")])
    assert bad.value.code == 1
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert "missing is not a file" in err and "Traceback" not in err
