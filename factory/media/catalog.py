"""The ISO catalog: one TOML file per release under isos/, loaded into frozen Release records."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, NoReturn

from factory import paths
from factory.errors import FactoryError, Location
from factory.options import suggest
from factory.schema.values import CATALOG_RELEASE
from factory.textfile import check_nesting, read_text

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
FINGERPRINT_RE = re.compile(r"^[0-9A-F]{40}$")


class InstallerFamily(StrEnum):
    """How a vendor installer is driven unattended; the value names the config format."""

    SUBIQUITY = "autoinstall"
    DEBIAN = "preseed"
    ANACONDA = "kickstart"

    @property
    def media_files(self) -> tuple[str, ...]:
        """Paths on the installer media where the rendered config lands."""
        return _MEDIA_FILES[self]

    def kernel_args(self, volume_id: str) -> str:
        """Kernel arguments that make the installer pick up the config from the media with no prompt.

        Raw form: escaping `;` for grub (or quoting for isolinux) is the remaster's job.
        """
        if self is InstallerFamily.SUBIQUITY:
            return "autoinstall ds=nocloud;s=/cdrom/nocloud/"
        if self is InstallerFamily.DEBIAN:
            # The netinst CD initrd mounts the media at /cdrom; priority=critical hides unanswered questions.
            return "auto=true priority=critical preseed/file=/cdrom/preseed.cfg"
        return f"inst.ks=hd:LABEL={dracut_label(volume_id)}:/ks.cfg"


def dracut_label(volume_id: str) -> str:
    """A volume id as dracut's hd:LABEL= syntax takes it (spaces written as \\x20)."""
    return volume_id.replace(" ", "\\x20")


_MEDIA_FILES = {
    InstallerFamily.SUBIQUITY: ("nocloud/user-data", "nocloud/meta-data"),
    InstallerFamily.DEBIAN: ("preseed.cfg",),
    InstallerFamily.ANACONDA: ("ks.cfg",),
}


@dataclass(frozen=True)
class Release:
    """One pinned installer ISO and what a remaster needs to know about it."""

    name: str
    title: str
    family: InstallerFamily
    iso_urls: tuple[str, ...]
    sha256: str
    iso_filename: str
    checksum_url: str
    signature_url: str
    signing_key_fingerprint: str
    volume_id: str
    kernel: str
    initrd: str
    boot_configs: tuple[str, ...]
    source: Path

    @property
    def checksum(self) -> str:
        """The checksum spec the ISO cache takes: the pinned sha256, else the vendor's SUMS file."""
        return f"sha256:{self.sha256}" if self.sha256 else f"file:{self.checksum_url}"


# Folders (':'-separated) searched before the shipped catalog: a site's own releases, or a test's.
ISOS_DIR_ENV = "FACTORY_ISOS_DIR"


def catalog_dir() -> Path:
    """Where the shipped release files live (isos/ in a checkout, factory/_data/isos when installed)."""
    return paths.data_dir("isos")


def catalog_dirs() -> list[Path]:
    """Every folder searched for release files, first match wins: $FACTORY_ISOS_DIR's, then the shipped one."""
    extra = [Path(p).expanduser() for p in os.environ.get(ISOS_DIR_ENV, "").split(os.pathsep) if p]
    for folder in extra:
        if not folder.is_dir():
            raise FactoryError(f"{ISOS_DIR_ENV}: {folder} is not a directory",
                               hint="point it at folders of NAME.toml release files (':'-separated)")
    return [*extra, catalog_dir()]


def _files() -> dict[str, Path]:
    """Release name -> file; a release in an earlier folder shadows one of the same name in a later one."""
    found: dict[str, Path] = {}
    for folder in reversed(catalog_dirs()):
        found.update({p.stem: p for p in folder.glob("*.toml")})
    return found


def release_file(name: str) -> Path | None:
    """The catalog file a release is read from (its content is an input of the build's media step)."""
    return _files().get(name)


def releases() -> list[Release]:
    """Every release in the catalog, sorted by name."""
    return sorted((_parse(p) for p in _files().values()), key=lambda r: r.name)


def names() -> list[str]:
    return sorted(_files())


@CATALOG_RELEASE.implement  # `iso = "name"` is checked when the template is read, so a typo names file:line
def load(name: str) -> Release:
    """The release called name (the file NAME.toml in the first catalog folder that has one)."""
    files = _files()
    path = files.get(name)
    if path is None:
        known = sorted(files)
        close = suggest(name, known)
        hint = f"did you mean {close!r}?" if close else f"known releases: {', '.join(known)}"
        raise FactoryError(f"unknown release {name!r}: no {name}.toml in the ISO catalog", hint=hint)
    return _parse(path)


def _parse(path: Path) -> Release:
    text = read_text(path, "catalog file")
    check_nesting(text, str(path), "catalog file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib puts the place in the message: "Invalid value (at line 3, column 9)"
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        line, col = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
        raise FactoryError(f"malformed catalog file: {str(exc).split(' (at ')[0]}",
                           where=Location(str(path), line, col), hint="a catalog file is TOML") from None
    reader = _Reader(path, data)
    iso = reader.table("iso")
    family_text = reader.string(data, "family")
    try:
        family = InstallerFamily(family_text)
    except ValueError:
        choices = ", ".join(f.value for f in InstallerFamily)
        reader.fail("family", f"unknown installer family {family_text!r} (one of: {choices})")
    sha256 = reader.string(iso, "iso.sha256", required=False).lower()
    checksum_url = reader.string(iso, "iso.checksum_url", required=False)
    if sha256 and not SHA256_RE.match(sha256):
        reader.fail("iso.sha256", "not a sha256 (64 hex digits)")
    if not sha256 and not checksum_url:
        reader.fail("iso.sha256", "required: a pinned sha256, or iso.checksum_url to verify against")
    fingerprint = reader.string(iso, "iso.signing_key_fingerprint", required=False).replace(" ", "").upper()
    if fingerprint and not FINGERPRINT_RE.match(fingerprint):
        reader.fail("iso.signing_key_fingerprint", "not an OpenPGP v4 fingerprint (40 hex digits)")
    name = reader.string(data, "name")
    if name != path.stem:
        reader.fail("name", f"{name!r} does not match the file name {path.stem!r}")
    return Release(
        name=name,
        title=reader.string(data, "title"),
        family=family,
        iso_urls=reader.strings(iso, "iso.urls"),
        sha256=sha256,
        iso_filename=reader.string(iso, "iso.filename"),
        checksum_url=checksum_url,
        signature_url=reader.string(iso, "iso.signature_url", required=False),
        signing_key_fingerprint=fingerprint,
        volume_id=reader.string(data, "volume_id"),
        kernel=reader.string(data, "kernel"),
        initrd=reader.string(data, "initrd"),
        boot_configs=reader.strings(data, "boot_configs"),
        source=path,
    )


class _Reader:
    """Typed access to one parsed file; every failure names the file and the dotted key."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path, self.data = path, data

    def fail(self, key: str, message: str) -> NoReturn:
        raise FactoryError(f"{key}: {message}", where=Location(str(self.path), block=key),
                           hint="see the other files in the catalog for the expected shape")

    def table(self, key: str) -> dict[str, Any]:
        value = self.data.get(key)
        if not isinstance(value, dict):
            self.fail(key, "required table is missing" if value is None else "must be a table")
        return value

    def string(self, table: dict[str, Any], key: str, *, required: bool = True) -> str:
        value = table.get(key.rsplit(".", 1)[-1], "")
        if not isinstance(value, str):
            self.fail(key, f"must be a string, not {type(value).__name__}")
        if required and not value.strip():
            self.fail(key, "required")
        return str(value).strip()

    def strings(self, table: dict[str, Any], key: str) -> tuple[str, ...]:
        value = table.get(key.rsplit(".", 1)[-1])
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            self.fail(key, "required: a non-empty list of strings")
        return tuple(value)
