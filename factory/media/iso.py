"""Remaster a vendor installer ISO so it installs unattended, keeping every boot path; extract files from ISOs.

The ISO9660 volume is rewritten with pycdlib (pure Python): boot menus patched (bootcfg), the rendered config
and checksum lists added, El Torito images kept. The disk boot path (MBR/GPT and Ubuntu's appended EFI
partition) is then restored by `hybrid.restore`. Output is deterministic: pycdlib's clock is frozen at the
source volume's modification date, and files are added in sorted order.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import pycdlib
from pycdlib.pycdlibexception import PyCdlibException

from factory.errors import FactoryError, die
from factory.fsutil import atomic_path
from factory.media import bootcfg, hybrid
from factory.media.isofs import DEFAULT_EPOCH, MediaWriter, frozen_clock, kernel_copy
from factory.run import run

if TYPE_CHECKING:
    from factory.media.catalog import Release

# Bump whenever the bytes remaster() writes for the same inputs change: it is part of the output cache key.
REMASTER_VERSION = "1"

# Boot configs patched when present, besides those a release lists.
KNOWN_CONFIGS = ("boot/grub/grub.cfg", "boot/grub/loopback.cfg", "EFI/BOOT/grub.cfg", "EFI/boot/grub.cfg")
LOADER_DIRS = ("isolinux", "syslinux", "boot/isolinux", "boot/syslinux")
CHECKSUM_LISTS = {"md5sum.txt": "md5", "MD5SUMS": "md5", "sha256sum.txt": "sha256", "SHA256SUMS": "sha256"}
# Inside El Torito EFI images (RHEL's efiboot.img): grub reads its config from the image itself.
EFI_IMAGE_CONFIGS = ("EFI/BOOT/grub.cfg", "EFI/boot/grub.cfg")


class MediaConfig(Protocol):
    """What remaster needs of a rendered config (factory.media.preseed.RenderedConfig)."""

    @property
    def files(self) -> dict[str, bytes]: ...


@dataclass(frozen=True)
class RemasterReport:
    """What a remaster changed, for the user and for tests."""

    out: Path
    patched: dict[str, int]  # boot config -> install entries given the arguments
    added: tuple[str, ...]
    volume_id: str


def volume_id(iso: Path) -> str:
    """The ISO9660 volume id (what dracut's hd:LABEL= and GRUB's search -l see)."""
    if not iso.is_file():
        die(f"ISO not found: {iso}", hint="check the path of the installer ISO")
    with iso.open("rb") as fh:
        fh.seek(16 * 2048)
        pvd = fh.read(2048)
    if pvd[1:6] != b"CD001":
        die(f"{iso} is not an ISO9660 image", hint="give the vendor's installer .iso file")
    return pvd[40:72].decode("ascii", errors="replace").rstrip()


def check_installer(src: Path, release: Release) -> None:
    """Refuse an ISO that is not the release's installer: it must hold the release's kernel, initrd and at least
    one of its boot menus (the files remastering patches), else the result would boot nothing unattended."""
    volume_id(src)
    iso = pycdlib.PyCdlib()
    try:
        iso.open(str(src))
    except PyCdlibException as exc:
        die(f"cannot read {src} as an ISO: {exc}", hint="give the vendor's installer .iso file")
    with contextlib.ExitStack() as stack:
        stack.callback(iso.close)
        writer = MediaWriter(iso, stack)
        missing = [p for p in (release.kernel, release.initrd) if writer.iso_path(p) is None]
        menus = [p for p in release.boot_configs if writer.iso_path(p) is not None]
    if missing or not menus:
        lacks = missing + ([] if menus else [f"a boot menu ({' or '.join(release.boot_configs)})"])
        die(f"{src} is not a {release.title} installer: it has no {', '.join(lacks)}",
            hint=f"factory looked for {release.kernel}, {release.initrd} and one of "
                 f"{', '.join(release.boot_configs)}; give the vendor's installer ISO "
                 f"({release.iso_filename}) or pick the matching release (`factory iso-list`)")


def _volume_epoch(iso: Path) -> float:
    """The source volume's modification date (falls back to a fixed date): new records carry it."""
    with iso.open("rb") as fh:
        fh.seek(16 * 2048 + 830)
        raw = fh.read(17)
    try:
        stamp = datetime.strptime(raw[:14].decode(), "%Y%m%d%H%M%S")
    except (UnicodeDecodeError, ValueError):
        return DEFAULT_EPOCH
    offset = timedelta(minutes=15 * int.from_bytes(raw[16:17], "little", signed=True))
    return (stamp.replace(tzinfo=UTC) - offset).timestamp()


def remaster(src: Path, out: Path, *, config: MediaConfig, kernel_args: str, boot_configs: Sequence[str] = (),
             progress: Callable[[int, int], None] | None = None) -> Path:
    """Write out: src with unattended boot menus, config.files on the media, and every boot path kept.

    kernel_args are raw (e.g. `autoinstall ds=nocloud;s=/cdrom/nocloud/`; escaped here for GRUB); boot_configs
    are the release's configs to patch (known ones are found anyway); progress(bytes_done_delta, total).
    """
    return remaster_report(src, out, config=config, kernel_args=kernel_args, boot_configs=boot_configs,
                           progress=progress).out


def remaster_report(src: Path, out: Path, *, config: MediaConfig, kernel_args: str,
                    boot_configs: Sequence[str] = (),
                    progress: Callable[[int, int], None] | None = None) -> RemasterReport:
    """remaster(), returning what was patched and added."""
    volid = volume_id(src)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    layout = hybrid.analyse(src)
    with frozen_clock(_volume_epoch(src)), kernel_copy(), contextlib.ExitStack() as stack, \
            tempfile.TemporaryDirectory(prefix=".remaster-", dir=Path(out).parent) as work:
        iso = pycdlib.PyCdlib()
        try:
            iso.open(str(src))
        except PyCdlibException as exc:
            die(f"cannot read {src} as an ISO: {exc}", hint="give the vendor's installer .iso file")
        stack.callback(iso.close)
        writer = MediaWriter(iso, stack)
        changed: dict[str, bytes] = {}
        # EFI images first: they are found by their source extent, which pycdlib renumbers after any change.
        patched = _patch_efi_images(writer, layout, kernel_args, Path(work), changed)
        patched.update(_patch_menus(writer, boot_configs, kernel_args, changed))
        if not any(patched.values()):
            die(f"no install entry found in the boot menus of {src}",
                hint=f"looked in: {', '.join(sorted(patched) or KNOWN_CONFIGS)}; is this an installer ISO?")
        for path in sorted(config.files):
            writer.put(path, config.files[path])
            changed[path] = config.files[path]
        _update_checksum_lists(writer, changed)
        # pycdlib's own isohybrid rewrite drops the APM, mis-pads the image and leaves the backup GPT invalid:
        # every system area is restored by hybrid.restore instead.
        if iso.isohybrid_mbr is not None:
            iso.rm_isohybrid()
        _write(iso, src, out, layout, progress, restore=layout.has_system_area)
    return RemasterReport(Path(out), patched, tuple(sorted(config.files)), volid)


def _write(iso: pycdlib.PyCdlib, src: Path, out: Path, layout: hybrid.Layout,
           progress: Callable[[int, int], None] | None, *, restore: bool) -> None:
    appended = sum((p.last - p.first + 1) * hybrid.SECTOR for p in layout.appended)
    state = {"done": 0, "total": 0}

    def on_write(done: int, total: int, _opaque: object) -> None:
        state["total"] = total + appended
        if progress:
            progress(done - state["done"], state["total"])
        state["done"] = done

    def on_bytes(n: int) -> None:
        if progress:
            progress(n, state["total"])

    with atomic_path(out) as tmp:
        with tmp.open("wb") as fh:
            iso.write_fp(fh, blocksize=1 << 20, progress_cb=on_write)
        if restore:
            hybrid.restore(src, tmp, layout, on_bytes=on_bytes)


def discover_configs(writer: MediaWriter, listed: Sequence[str]) -> list[str]:
    """The boot configs to patch: those the release lists plus known ones present on this ISO."""
    found = [p for p in listed if ":" not in p]
    found += [p for p in KNOWN_CONFIGS if writer.iso_path(p) is not None]
    for folder in LOADER_DIRS:
        iso_dir = writer.iso_path(folder)
        if iso_dir is None:
            continue
        for name in writer.list_names(folder):
            if name.lower().endswith(".cfg"):
                found.append(f"{folder}/{name}")
    unique: dict[str, None] = {}
    for path in found:
        key = (writer.iso_path(path) or path).upper()
        if key not in {(writer.iso_path(p) or p).upper() for p in unique}:
            unique[path] = None
    return list(unique)


def _patch_menus(writer: MediaWriter, listed: Sequence[str], kernel_args: str,
                 changed: dict[str, bytes]) -> dict[str, int]:
    patched: dict[str, int] = {}
    for path in discover_configs(writer, listed):
        raw = writer.read(path)
        if raw is None:
            continue  # listed by the catalog but absent on this ISO variant
        result = bootcfg.patch(path, raw.decode("utf-8", errors="surrogateescape"), kernel_args)
        new = result.text.encode("utf-8", errors="surrogateescape")
        patched[path] = result.entries
        if new != raw:
            writer.put(path, new)
            changed[path] = new
    return patched


def _patch_efi_images(writer: MediaWriter, layout: hybrid.Layout, kernel_args: str, work: Path,
                      changed: dict[str, bytes]) -> dict[str, int]:
    """Patch grub configs inside EFI El Torito images that are files on the ISO (RHEL's images/efiboot.img)."""
    patched: dict[str, int] = {}
    efi_blocks = {e.load_rba for e in layout.catalog if e.is_efi}
    for path, extent in writer.files_at(efi_blocks):
        image = work / Path(path).name
        data = writer.read(path)
        if data is None:
            continue
        image.write_bytes(data)
        touched = False
        for inner in EFI_IMAGE_CONFIGS:
            text = _fat_read(image, inner)
            if text is None:
                continue
            result = bootcfg.patch(inner, text.decode("utf-8", errors="surrogateescape"), kernel_args)
            patched[f"{path}:{inner}"] = result.entries
            if result.entries:
                _fat_write(image, inner, result.text.encode("utf-8", errors="surrogateescape"), work)
                touched = True
            break  # FAT is case-insensitive: the first spelling that exists is the file
        if touched:
            new = image.read_bytes()
            if len(new) != len(data):
                raise FactoryError(f"EFI image {path} changed size while patching (extent {extent})")
            writer.put(path, new)
            changed[path] = new
    return patched


# pycdlib has no FAT support; mtools edits the EFI image file in place (no mounts, no root).
def _fat_read(image: Path, inner: str) -> bytes | None:
    proc = run(["mtype", "-i", image, f"::/{inner}"], check=False)
    return proc.stdout if proc.returncode == 0 else None


def _fat_write(image: Path, inner: str, data: bytes, work: Path) -> None:
    staged = work / "staged.cfg"
    staged.write_bytes(data)
    run(["mcopy", "-o", "-i", image, staged, f"::/{inner}"], env={"MTOOLS_SKIP_CHECK": "1"})


def _update_checksum_lists(writer: MediaWriter, changed: Mapping[str, bytes]) -> None:
    """Refresh md5sum.txt-style lists for the changed files and list the new ones (as vendors' tools do)."""
    for name, algo in CHECKSUM_LISTS.items():
        raw = writer.read(name)
        if raw is None:
            continue
        text = raw.decode("utf-8", errors="surrogateescape")
        writer.put(name, update_sums(text, changed, algo).encode("utf-8", errors="surrogateescape"))


_SUM_LINE = re.compile(r"^([0-9a-fA-F]+)(\s+\*?)(\S.*?)\s*$")


def update_sums(text: str, changed: Mapping[str, bytes], algo: str) -> str:
    """Rewrite the digest of each changed path in a `HEX  ./path` list; append paths it did not list."""
    digests = {path.strip("/"): hashlib.new(algo, data).hexdigest() for path, data in changed.items()}
    lines = text.splitlines(keepends=True)
    seen: set[str] = set()
    prefix = "./"
    for i, line in enumerate(lines):
        m = _SUM_LINE.match(line.rstrip("\n"))
        if not m:
            continue
        listed = m.group(3)
        prefix = "./" if listed.startswith("./") else ("/" if listed.startswith("/") else "")
        key = listed.lstrip("./").lstrip("/") if listed.startswith(("./", "/")) else listed
        if key in digests:
            lines[i] = f"{digests[key]}{m.group(2)}{listed}\n"
            seen.add(key)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    lines += [f"{digests[p]}  {prefix}{p}\n" for p in sorted(digests) if p not in seen]
    return "".join(lines)


def extract(iso: Path, paths: Iterable[str], dest: Path) -> list[Path]:
    """Copy files (by their long path on the media, e.g. casper/vmlinuz) out of iso into dest."""
    dest.mkdir(parents=True, exist_ok=True)
    out: list[Path] = []
    with contextlib.ExitStack() as stack:
        reader = pycdlib.PyCdlib()
        try:
            reader.open(str(iso))
        except (PyCdlibException, OSError) as exc:
            die(f"cannot read {iso} as an ISO: {exc}")
        stack.callback(reader.close)
        writer = MediaWriter(reader, stack)
        for path in paths:
            iso_path = writer.iso_path(path)
            if iso_path is None:
                die(f"{path} is not on {iso}", hint="check the kernel/initrd paths of the release")
            target = dest / Path(path).name
            reader.get_file_from_iso(str(target), iso_path=iso_path)
            out.append(target)
    return out



# --- output cache ----------------------------------------------------------------------------------------------------

KEEP_CACHED = 4  # remastered ISOs kept in the store (hard links: free while the user's copy exists)


class CachedConfig(MediaConfig, Protocol):
    def digest(self) -> str: ...


def cache_key(iso_sha256: str, config: CachedConfig, kernel_args: str, boot_configs: Sequence[str]) -> str:
    """Names a remaster result: the source ISO, the rendered config, the arguments and this code's version."""
    recipe = json.dumps([REMASTER_VERSION, iso_sha256, config.digest(), kernel_args, sorted(boot_configs)])
    return hashlib.sha256(recipe.encode()).hexdigest()


def remaster_cached(src: Path, iso_sha256: str, out: Path, *, config: CachedConfig, kernel_args: str,
                    boot_configs: Sequence[str] = (),
                    progress: Callable[[int, int], None] | None = None) -> RemasterReport | None:
    """remaster() through the store: a hit links (or copies) the earlier result and returns None."""
    from factory.store import Store

    reports: list[RemasterReport] = []

    def make(dest: Path) -> None:
        reports.append(remaster_report(src, dest, config=config, kernel_args=kernel_args,
                                       boot_configs=boot_configs, progress=progress))

    store = Store()
    store.cached(cache_key(iso_sha256, config, kernel_args, boot_configs), "remaster", out, make)
    for old in store.entries("remaster")[:-KEEP_CACHED]:
        store.remove(old.key)
    return reports[0] if reports else None
