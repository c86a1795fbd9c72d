"""The ISO catalog: every shipped file loads, is well-formed, and malformed files are refused by file and key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from factory.errors import FactoryError
from factory.media import catalog
from factory.media.catalog import InstallerFamily

REQUIRED = {"ubuntu-24.04", "ubuntu-22.04", "debian-12", "debian-13", "rocky-9", "almalinux-9"}

GOOD = """\
name = "{name}"
title = "Test 1.0"
family = "kickstart"
volume_id = "TEST-1-0"
kernel = "images/pxeboot/vmlinuz"
initrd = "images/pxeboot/initrd.img"
boot_configs = ["EFI/BOOT/grub.cfg"]

[iso]
filename = "test.iso"
urls = ["https://example.invalid/test.iso"]
sha256 = "{sha}"
checksum_url = "https://example.invalid/CHECKSUM"
"""


def test_required_releases_are_present() -> None:
    assert {r.name for r in catalog.releases()} >= REQUIRED


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_release_is_well_formed(name: str) -> None:
    rel = catalog.load(name)
    assert rel.name == name and rel.title
    assert re.fullmatch(r"[0-9a-f]{64}", rel.sha256) or rel.checksum_url.startswith("https://")
    assert rel.iso_urls and all(u.startswith("https://") and u.endswith(rel.iso_filename) for u in rel.iso_urls)
    assert rel.checksum_url.startswith("https://") and rel.signature_url.startswith("https://")
    assert re.fullmatch(r"[0-9A-F]{40}", rel.signing_key_fingerprint)
    assert rel.kernel and rel.initrd and rel.boot_configs and rel.volume_id
    assert len(rel.volume_id) <= 32  # ISO9660 volume identifiers are at most 32 characters
    assert rel.checksum == (f"sha256:{rel.sha256}" if rel.sha256 else f"file:{rel.checksum_url}")


def test_families_match_the_distributions() -> None:
    fam = {r.name: r.family for r in catalog.releases()}
    assert fam["ubuntu-24.04"] is fam["ubuntu-22.04"] is InstallerFamily.SUBIQUITY
    assert fam["debian-12"] is fam["debian-13"] is InstallerFamily.DEBIAN
    assert fam["rocky-9"] is fam["almalinux-9"] is InstallerFamily.ANACONDA


def test_kernel_args_and_media_files() -> None:
    assert InstallerFamily.SUBIQUITY.kernel_args("x") == "autoinstall ds=nocloud;s=/cdrom/nocloud/"
    assert InstallerFamily.SUBIQUITY.media_files == ("nocloud/user-data", "nocloud/meta-data")
    assert "preseed/file=/cdrom/preseed.cfg" in InstallerFamily.DEBIAN.kernel_args("x")
    assert InstallerFamily.DEBIAN.media_files == ("preseed.cfg",)
    assert InstallerFamily.ANACONDA.kernel_args("My Disk") == "inst.ks=hd:LABEL=My\\x20Disk:/ks.cfg"
    assert InstallerFamily.ANACONDA.media_files == ("ks.cfg",)


def test_unknown_release_suggests_a_name() -> None:
    with pytest.raises(FactoryError) as exc:
        catalog.load("ubuntu-24.4")
    assert "unknown release 'ubuntu-24.4'" in exc.value.message
    assert exc.value.hint and "ubuntu-24.04" in exc.value.hint


@pytest.fixture
def fake_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(catalog, "catalog_dir", lambda: tmp_path)
    return tmp_path


@pytest.mark.parametrize(("edit", "key", "words"), [
    (lambda t: t.replace('sha256 = "' + "a" * 64 + '"', 'sha256 = "abc"'), "iso.sha256", "64 hex"),
    (lambda t: t.replace('sha256 = "' + "a" * 64 + '"\nchecksum_url = "https://example.invalid/CHECKSUM"', ""),
     "iso.sha256", "required"),
    (lambda t: t.replace('family = "kickstart"', 'family = "yast"'), "family", "unknown installer family"),
    (lambda t: t.replace('volume_id = "TEST-1-0"\n', ""), "volume_id", "required"),
    (lambda t: t.replace('boot_configs = ["EFI/BOOT/grub.cfg"]', "boot_configs = 3"), "boot_configs", "list"),
    (lambda t: t.replace('kernel = "images/pxeboot/vmlinuz"', "kernel = 7"), "kernel", "must be a string"),
    (lambda t: t.replace('name = "t1"', 'name = "t2"'), "name", "does not match"),
    (lambda t: t.split("[iso]")[0], "iso", "missing"),
])
def test_malformed_file_names_file_and_key(fake_catalog: Path, edit, key: str, words: str) -> None:  # type: ignore[no-untyped-def]
    (fake_catalog / "t1.toml").write_text(edit(GOOD.format(name="t1", sha="a" * 64)))
    with pytest.raises(FactoryError) as exc:
        catalog.load("t1")
    rendered = exc.value.render()
    assert "t1.toml" in rendered and exc.value.message.startswith(f"{key}:") and words in rendered


def test_toml_syntax_error_names_the_file(fake_catalog: Path) -> None:
    (fake_catalog / "t1.toml").write_text('name = "t1\n')
    with pytest.raises(FactoryError) as exc:
        catalog.releases()
    assert "t1.toml" in exc.value.render() and "malformed catalog file" in exc.value.message


def test_checksum_url_alone_is_enough(fake_catalog: Path) -> None:
    (fake_catalog / "t1.toml").write_text(GOOD.format(name="t1", sha=""))
    rel = catalog.load("t1")
    assert rel.sha256 == "" and rel.checksum == "file:https://example.invalid/CHECKSUM"


def test_iso_list_shows_every_release() -> None:
    import sys

    from factory.run import run

    out = run([sys.executable, "-m", "factory", "iso-list"], env={"COLUMNS": "200"})
    lines = out.stdout.decode().splitlines()
    for rel in catalog.releases():
        row = next((line for line in lines if f" {rel.name} " in line), "")
        assert rel.family.value in row and rel.iso_filename in row


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_signing_key_is_shipped_and_matches_the_pin(name: str, tmp_path: Path) -> None:
    """The key file named by the pinned fingerprint really holds that key (gpg recomputes the fingerprint)."""
    from factory.run import run

    rel = catalog.load(name)
    key = catalog.catalog_dir() / "keys" / f"{rel.signing_key_fingerprint}.gpg"
    out = run(["gpg", "--homedir", str(tmp_path), "--batch", "--show-keys", "--with-colons", str(key)])
    fprs = [line.split(":")[9] for line in out.stdout.decode().splitlines() if line.startswith("fpr:")]
    assert fprs and fprs[0] == rel.signing_key_fingerprint


def test_iso_list_json_is_the_catalog() -> None:
    import json
    import sys

    from factory.run import run

    rows = json.loads(run([sys.executable, "-m", "factory", "iso-list", "--json"]).stdout)
    assert {r["name"]: (r["sha256"], r["family"]) for r in rows} == {
        r.name: (r.sha256, r.family.value) for r in catalog.releases()}


def test_iso_fetch_offline_miss_is_one_clear_message(tmp_path: Path) -> None:
    import os
    import sys

    from factory.run import run

    env = {"FACTORY_OFFLINE": "1", "FACTORY_ISO_PATH": str(tmp_path), "FACTORY_CACHE_DIR": str(tmp_path / "c"),
           "PATH": os.environ["PATH"]}
    proc = run([sys.executable, "-m", "factory", "iso-fetch", "debian-12"], check=False, env=env)
    err = " ".join(proc.stderr.decode().split())
    rel = catalog.load("debian-12")
    assert proc.returncode == 1 and "Traceback" not in err
    assert f"{rel.iso_filename} (sha256 {rel.sha256})" in err and str(tmp_path) in err


def test_iso_fetch_offline_hit_prints_the_path(tmp_path: Path) -> None:
    """A file the catalog pins cannot be made here, so a fake release pins a small local file instead."""
    import hashlib
    import sys

    from factory.run import run

    cat = tmp_path / "isos"
    cat.mkdir()
    iso = tmp_path / "store" / "test.iso"
    iso.parent.mkdir()
    iso.write_bytes(b"iso bytes")
    (cat / "t1.toml").write_text(GOOD.format(name="t1", sha=hashlib.sha256(b"iso bytes").hexdigest()))
    code = ("import sys; from pathlib import Path; from factory.media import catalog; "
            f"catalog.catalog_dir = lambda: Path({str(cat)!r}); sys.argv[1:] = ['iso-fetch', 't1', '--offline']; "
            "from factory.cli import main; main()")
    proc = run([sys.executable, "-c", code], env={"FACTORY_ISO_PATH": str(iso.parent),
                                                  "FACTORY_CACHE_DIR": str(tmp_path / "c")})
    assert proc.stdout.decode().strip() == str(iso)


def test_factory_isos_dir_adds_releases_and_shadows_shipped_ones(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "t1.toml").write_text(GOOD.format(name="t1", sha="a" * 64))
    (site / "debian-12.toml").write_text(GOOD.format(name="debian-12", sha="b" * 64))
    monkeypatch.setenv("FACTORY_ISOS_DIR", str(site))
    assert catalog.catalog_dirs() == [site, catalog.catalog_dir()]
    assert catalog.load("t1").source == site / "t1.toml"
    assert catalog.load("debian-12").title == "Test 1.0"  # the site's file wins over the shipped one
    assert {r.name for r in catalog.releases()} >= REQUIRED | {"t1"}
    assert catalog.load("ubuntu-24.04").source.parent == catalog.catalog_dir()


def test_factory_isos_dir_that_is_missing_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACTORY_ISOS_DIR", str(tmp_path / "nope"))
    with pytest.raises(FactoryError) as exc:
        catalog.load("t1")
    assert exc.value.message == f"FACTORY_ISOS_DIR: {tmp_path / 'nope'} is not a directory"


def test_iso_list_shows_a_release_from_factory_isos_dir(tmp_path: Path) -> None:
    import sys

    from factory.run import run

    (tmp_path / "t1.toml").write_text(GOOD.format(name="t1", sha="a" * 64))
    proc = run([sys.executable, "-m", "factory", "iso-list"],
               env={"FACTORY_ISOS_DIR": str(tmp_path), "COLUMNS": "400"})
    out = proc.stdout.decode()
    assert str(tmp_path) in out and "Test 1.0" in out and "ubuntu-24.04" in out


def test_keys_beside_a_factory_isos_dir_release_are_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from factory.media import signing

    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "vendor.gpg").write_bytes(b"")
    monkeypatch.setenv("FACTORY_ISOS_DIR", str(tmp_path))
    found = signing.keyring_files()
    assert found.index(tmp_path / "keys" / "vendor.gpg") < found.index(next(
        p for p in found if p.parent == catalog.catalog_dir() / "keys"))
