"""The verified ISO cache: resumable downloads, sha256 / SHA256SUMS (+ gpgv) checks, offline lookup.

Finished downloads live in the content-addressed store (factory.store, kind "iso", keyed by their sha256),
unfinished ones in its partial/ folder (resumable). Under cache_dir("iso") stay the small files: locks/<key>.lock
(one download per file at a time), sums/<hash of url> (checksum lists kept for offline use), by-url/ and by-digest/
(pointers for checksums that are not sha256), index.json (sha256 of ISOs found in local folders, keyed by path,
size and mtime: a speed-up for files outside the store, never part of an ID).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from factory import events, paths
from factory.errors import FactoryError
from factory.fsutil import atomic_path, file_lock
from factory.schema.values import ALGO_OF_LENGTH, CHECKSUM_ALGORITHMS, CheckKind, Checksum, Digest
from factory.store import Store

if TYPE_CHECKING:
    from factory.media.catalog import Release

CHUNK = 1 << 20
TIMEOUT = 60.0
# The checksum syntax is declared with the options (factory.schema.values), so validate and the cache share it.
ALGORITHMS = CHECKSUM_ALGORITHMS


def offline_mode(offline: bool = False) -> bool:
    return offline or os.environ.get("FACTORY_OFFLINE", "") not in ("", "0", "false", "no")


def fetch(urls: Sequence[str], checksum: str, *, offline: bool = False, filename: str | None = None,
          signature: str | None = None, key_fingerprint: str | None = None) -> Path:
    """A verified local copy of the file at urls (tried in order): from local folders, the cache, or a download.

    Local paths and file:// URLs are verified in place and returned as they are. With `file:` checksums,
    signature (URL/path of a detached signature, or the list itself when clear-signed) and key_fingerprint
    authenticate the list with gpgv where the key is available.
    """
    if not urls:
        raise FactoryError("no ISO URL or path given")
    offline = offline_mode(offline)
    name = filename or _basename(urls[0])
    for url in urls:
        local = _local_path(url)
        if local is not None and local.is_file():
            # With "none" there is nothing to compare with: reading a 400 MB base image would cost ~0.5 s a build.
            if Checksum.parse(checksum).kind is not CheckKind.NONE:
                verify(local, checksum, offline=offline, filename=name, signature=signature,
                       key_fingerprint=key_fingerprint)
            return local
    if all(_local_path(u) is not None for u in urls):
        raise FactoryError(f"ISO not found: {', '.join(urls)}", hint="check the path (or give an http(s) URL)")
    spec = Checksum.parse(checksum)
    expected = _expected(spec, name, offline=offline, signature=signature, key_fingerprint=key_fingerprint)
    found = _find(expected, name, urls, deep=offline)
    if found is not None:
        return found
    if offline:
        raise _offline_miss(name, expected)
    key = expected.hex if expected else hashlib.sha256("\n".join(urls).encode()).hexdigest()
    with file_lock(paths.cache_dir("iso", "locks") / f"{key[:32]}.lock"):
        # Another process may have finished the same download while this one waited for the lock.
        found = _find(expected, name, urls, deep=False)
        if found is not None:
            return found
        return _download_any(urls, name, key, expected)


def _find(expected: Digest | None, name: str, urls: Sequence[str], *, deep: bool) -> Path | None:
    if expected is None:
        return _by_url(urls)
    if expected.algo == "sha256":
        return find_local(expected.hex, name, deep=deep)
    alias = paths.cache_dir("iso", "by-digest") / f"{expected.algo}-{expected.hex}"
    if alias.is_file() and Path(alias.read_text().strip()).is_file():
        return Path(alias.read_text().strip())
    index = _Index()
    for cand in _candidates(name, deep=deep):
        if cand.is_file() and index.digest(cand, expected.algo) == expected.hex:
            return cand
    return None


def fetch_release(release: Release, *, offline: bool = False) -> Path:
    """The catalog release's ISO, verified against its pinned sha256 (or its vendor SHA256SUMS when unpinned)."""
    return fetch(release.iso_urls, release.checksum, offline=offline, filename=release.iso_filename,
                 signature=release.signature_url or None, key_fingerprint=release.signing_key_fingerprint or None)


def verify(path: Path, checksum: str, *, offline: bool = False, filename: str | None = None,
           signature: str | None = None, key_fingerprint: str | None = None) -> str:
    """Check path against a checksum spec; return its sha256 hex or raise a FactoryError naming both digests."""
    spec = Checksum.parse(checksum)
    name = filename or path.name
    expected = _expected(spec, name, offline=offline_mode(offline), signature=signature,
                         key_fingerprint=key_fingerprint)
    algos = ["sha256"] + ([expected.algo] if expected and expected.algo != "sha256" else [])
    digests = file_digests(path, algos)
    if expected and digests[expected.algo] != expected.hex:
        raise FactoryError(f"checksum mismatch for {path}: expected {expected}, got {digests[expected.algo]}",
                           hint="the file is corrupt or not the one pinned; fetch it again or fix --iso-checksum")
    return digests["sha256"]


def sha256_file(path: Path, *, progress: bool = True) -> str:
    return file_digests(path, ["sha256"], progress=progress)["sha256"]


def indexed_sha256(path: Path) -> str:
    """sha256 of a file, remembered by (path, size, mtime) so a multi-GiB ISO is read once."""
    return _Index().digest(path, "sha256")


def file_digests(path: Path, algos: Sequence[str], *, progress: bool = True) -> dict[str, str]:
    """Several digests of a file in one read (progress shown for big files)."""
    hashers = {a: hashlib.new(a) for a in algos}
    size = path.stat().st_size
    show = progress and size > 256 * CHUNK
    with open(path, "rb") as fh, (events.progress(f"checksum {path.name}", size) if show else _no_progress()) as bar:
        while chunk := fh.read(CHUNK):
            for h in hashers.values():
                h.update(chunk)
            if bar is not None:
                bar.advance(len(chunk))
    return {a: h.hexdigest() for a, h in hashers.items()}


@contextlib.contextmanager
def _no_progress() -> Iterator[None]:
    yield None


# --- checksum lists ------------------------------------------------------------------------------------------------

def _expected(spec: Checksum, name: str, *, offline: bool, signature: str | None,
              key_fingerprint: str | None) -> Digest | None:
    if spec.kind in (CheckKind.SHA256, CheckKind.DIGEST):
        return Digest(spec.algo, spec.value)
    if spec.kind is CheckKind.NONE:
        return None
    text = read_sums(spec.value, offline=offline, signature=signature, key_fingerprint=key_fingerprint)
    found = sums_lookup_digest(text, name)
    if found is None:
        raise FactoryError(f"{name} is not listed in the checksum file {spec.value}",
                           hint="pass filename= / check the release's iso filename")
    return found


def sums_lookup(text: str, name: str) -> str | None:
    """The hex digest for name in a checksum list (see sums_lookup_digest)."""
    found = sums_lookup_digest(text, name)
    return found.hex if found else None


def sums_lookup_digest(text: str, name: str) -> Digest | None:
    """name's digest in a SHA256SUMS/SHA512SUMS/... list: GNU `HEX  name` / `HEX *name` or BSD `SHA256 (name) = HEX`."""
    for line in text.splitlines():
        line = line.strip()
        bsd = re.match(r"^(MD5|SHA1|SHA256|SHA512) \((.+)\) = ([0-9a-fA-F]+)$", line, re.IGNORECASE)
        if bsd and Path(bsd.group(2)).name == name:
            return Digest(bsd.group(1).lower(), bsd.group(3).lower())
        gnu = re.match(r"^([0-9a-fA-F]+) [ *](.+)$", line)
        if gnu and len(gnu.group(1)) in ALGO_OF_LENGTH and Path(gnu.group(2).lstrip("./")).name == name:
            return Digest(ALGO_OF_LENGTH[len(gnu.group(1))], gnu.group(1).lower())
    return None


def read_sums(source: str, *, offline: bool, signature: str | None = None,
              key_fingerprint: str | None = None) -> str:
    """The text of a checksum list, authenticated with gpgv when a signature and key fingerprint are given."""
    data = _read_small(source, offline=offline, what="checksum list")
    clearsigned = data.lstrip().startswith(b"-----BEGIN PGP SIGNED MESSAGE-----")
    if signature and key_fingerprint:
        from factory.media import signing

        sig = None if clearsigned or signature == source else _read_small(signature, offline=offline,
                                                                          what="signature")
        try:
            data = signing.verify(data, sig, key_fingerprint)
        except signing.KeyNotFound as exc:
            if os.environ.get("FACTORY_REQUIRE_SIGNATURE") == "1":
                raise
            events.warn(f"{source}: signature not checked: {exc.message}")
            data = signing.strip_clearsign(data) if clearsigned else data
    elif clearsigned:
        from factory.media import signing

        data = signing.strip_clearsign(data)
    return data.decode(errors="replace")


def _read_small(source: str, *, offline: bool, what: str) -> bytes:
    """A small file by path or URL; URLs are kept in the cache so offline runs can use them again."""
    local = _local_path(source)
    if local is not None:
        try:
            return local.read_bytes()
        except OSError as exc:
            raise FactoryError(f"cannot read the {what} {local}: {exc.strerror}") from exc
    kept = paths.cache_dir("iso", "sums") / hashlib.sha256(source.encode()).hexdigest()[:32]
    if offline:
        if kept.is_file():
            return kept.read_bytes()
        raise FactoryError(f"offline: the {what} {source} was never downloaded",
                           hint="run once online, or pin the ISO with sha256:HEX")
    try:
        with urllib.request.urlopen(source, timeout=TIMEOUT) as resp:
            data: bytes = resp.read(16 * CHUNK)
    except (urllib.error.URLError, OSError) as exc:
        raise FactoryError(f"cannot download the {what} {source}: {_reason(exc)}") from exc
    with atomic_path(kept) as tmp:
        tmp.write_bytes(data)
    return data


# --- local lookup --------------------------------------------------------------------------------------------------

def search_dirs() -> list[Path]:
    """Where ISOs are looked up by checksum: FACTORY_ISO_PATH folders, then the catalog folder (isos/)."""
    dirs = [Path(p) for p in os.environ.get("FACTORY_ISO_PATH", "").split(os.pathsep) if p]
    with contextlib.suppress(FileNotFoundError):
        dirs.append(paths.data_dir("isos"))
    return dirs


def cached_path(sha256: str, name: str) -> Path:
    return Store().folder(sha256) / name


def find_local(sha256: str, name: str, *, deep: bool) -> Path | None:
    """A file with this sha256: in the store, or in the search folders (same name first; any *.iso when deep)."""
    stored = Store().get(sha256)
    if stored is not None:
        return stored
    legacy = paths.cache_dir("iso") / "sha256" / sha256  # where factory kept downloads before the store
    if legacy.is_dir():
        for entry in sorted(legacy.iterdir()):
            if entry.is_file() and not entry.name.startswith("."):
                return entry
    index = _Index()
    for cand in _candidates(name, deep=deep):
        if cand.is_file() and index.sha256(cand) == sha256:
            return cand
    return None


def _candidates(name: str, *, deep: bool) -> list[Path]:
    candidates = [d / name for d in search_dirs()]
    if deep:
        candidates += [p for d in search_dirs() if d.is_dir() for p in sorted(d.glob("*.iso")) if p.name != name]
    return candidates


class _Index:
    """sha256 of files in the search folders, remembered by (path, size, mtime) so ISOs are hashed once."""

    def __init__(self) -> None:
        self.path = paths.cache_dir("iso") / "index.json"
        try:
            self.data: dict[str, str] = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.data = {}

    def sha256(self, file: Path) -> str:
        return self.digest(file, "sha256")

    def digest(self, file: Path, algo: str) -> str:
        st = file.stat()
        key = f"{file.resolve()}|{st.st_size}|{st.st_mtime_ns}"
        key = key if algo == "sha256" else f"{algo}|{key}"
        if key not in self.data:
            self.data[key] = file_digests(file, [algo])[algo]
            with atomic_path(self.path) as tmp:
                tmp.write_text(json.dumps(self.data, indent=0, sort_keys=True))
        return self.data[key]


def _by_url(urls: Sequence[str]) -> Path | None:
    """For checksum `none`: the file an earlier download of the same URLs landed as."""
    ref = paths.cache_dir("iso", "by-url") / hashlib.sha256("\n".join(urls).encode()).hexdigest()
    if ref.is_file():
        target = Path(ref.read_text().strip())
        if target.is_file():
            return target
    return None


def _offline_miss(name: str, expected: Digest | None) -> FactoryError:
    where = [str(paths.cache_dir("iso"))] + [str(d) for d in search_dirs()]
    want = f"{name} ({expected})" if expected else name
    return FactoryError(
        f"offline: {want} is not in the ISO cache or any ISO folder",
        hint=f"copy {name} with {expected or 'any checksum'} into one of: {', '.join(where)} "
             "(FACTORY_ISO_PATH adds folders, separated by ':')")


# --- downloads -----------------------------------------------------------------------------------------------------

def _download_any(urls: Sequence[str], name: str, key: str, expected: Digest | None) -> Path:
    failures = []
    for url in urls:
        if _local_path(url) is not None:
            continue
        try:
            return _download(url, name, key, expected)
        except _TransferError as exc:
            failures.append(f"{url}: {exc}")
    raise FactoryError(f"could not download {name}:\n  " + "\n  ".join(failures),
                       hint="check the network or proxy (https_proxy), or bring the file and use --offline")


class _TransferError(Exception):
    pass


def _hashers(expected: Digest | None) -> dict[str, Any]:
    algos = {"sha256"} | ({expected.algo} if expected else set())
    return {a: hashlib.new(a) for a in sorted(algos)}


def _download(url: str, name: str, key: str, expected: Digest | None) -> Path:
    part = Store().partial(f"{key[:32]}-{name}.part")
    hashers = _hashers(expected)
    have = part.stat().st_size if part.exists() else 0
    if have:
        with open(part, "rb") as fh:  # resume: the digests must cover the bytes already on disk
            while chunk := fh.read(CHUNK):
                for h in hashers.values():
                    h.update(chunk)
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urllib.request.urlopen(req, timeout=TIMEOUT)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # the partial file is already complete
            return _land(part, name, expected, hashers, url, key)
        raise _TransferError(_reason(exc)) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise _TransferError(_reason(exc)) from exc
    with resp:
        if have and resp.status != 206:  # the server ignored Range: start over
            have, hashers = 0, _hashers(expected)
        length = resp.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        label = f"download {name}" + (f" (resuming at {have >> 20} MiB)" if have else "")
        try:
            with open(part, "ab" if have else "wb") as out, events.progress(label, total, activity="download") as bar:
                bar.advance(have)
                while chunk := resp.read(CHUNK):
                    out.write(chunk)
                    for h in hashers.values():
                        h.update(chunk)
                    bar.advance(len(chunk))
        except OSError as exc:  # a broken connection keeps the partial file for the next attempt
            raise _TransferError(f"transfer interrupted: {_reason(exc)} (will resume)") from exc
    got = part.stat().st_size
    if total is not None and got < total:  # http.client ends a short body quietly; the length tells
        raise _TransferError(f"transfer interrupted after {got} of {total} bytes (will resume)")
    return _land(part, name, expected, hashers, url, key)


def _land(part: Path, name: str, expected: Digest | None, hashers: dict[str, Any], url: str, key: str) -> Path:
    digests = {a: h.hexdigest() for a, h in hashers.items()}
    if expected and digests[expected.algo] != expected.hex:
        part.unlink(missing_ok=True)
        raise FactoryError(f"checksum mismatch for {name} from {url}: expected {expected}, "
                           f"got {digests[expected.algo]}",
                           hint="the download was removed; the mirror may be serving another release")
    # Same file system: the file appears under its final name complete or not at all.
    final = Store().adopt(digests["sha256"], "iso", part, name)
    # The cache is keyed by sha256; other ways to find the same file again are small pointer files.
    ref = None
    if expected is None:
        ref = paths.cache_dir("iso", "by-url") / key
    elif expected.algo != "sha256":
        ref = paths.cache_dir("iso", "by-digest") / f"{expected.algo}-{expected.hex}"
    if ref is not None:
        with atomic_path(ref) as tmp:
            tmp.write_text(str(final))
    events.say(f"cached {name} (sha256 {digests['sha256']})")
    return final


def _local_path(url: str) -> Path | None:
    parts = urlsplit(url)
    if parts.scheme == "file":
        return Path(unquote(parts.path))
    if not parts.scheme:
        return Path(url).expanduser()
    return None


def _basename(url: str) -> str:
    return Path(unquote(urlsplit(url).path)).name or "download.iso"


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return str(exc.reason)
    return str(exc) or type(exc).__name__
