"""The content-addressed store: one place for everything factory keeps between builds, keyed by sha256.

A key is either the sha256 of the content (downloaded ISOs) or the sha256 of a recipe that determines the
content (remastered ISOs, seed ISOs, and later disk checkpoints named by their stage ID). Layout under
cache_dir("store"):

    entries/<key>/<name>        the file, under the name users and hypervisors expect (ubuntu.iso, disk.qcow2)
    entries/<key>/entry.json    kind, name, size, created and last-use times, the size+mtime the file had when
                                stored (a hard link edited in place would change them: the entry is then stale)
    locks/<key>.lock            flock: shared while an entry is in use, exclusive while it is written or removed
    partial/                    unfinished writes (resumable downloads keep theirs here)

An entry appears whole or not at all (built in a temporary directory, renamed into place), and `gc` never removes
an entry whose lock another process holds.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from factory import paths
from factory.errors import FactoryError
from factory.fsutil import atomic_dir, atomic_path, file_lock

KEY_RE = re.compile(r"^[0-9a-f]{64}$")
META = "entry.json"


@dataclass(frozen=True)
class Entry:
    """One stored file and what the store knows about it."""

    key: str
    kind: str          # iso, remaster, seed, checkpoint ...
    name: str
    size: int
    created: float
    last_used: float
    stamp: tuple[int, int] = (0, 0)  # (size, mtime_ns) of the file when stored

    @property
    def age(self) -> float:
        """Seconds since the entry was last used."""
        return max(0.0, time.time() - self.last_used)

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data.pop("stamp")
        return data


class Store:
    """The store at root (default: the `store` folder of factory's cache dir, so FACTORY_CACHE_DIR moves it)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or paths.cache_dir("store")

    # --- paths -----------------------------------------------------------------------------------------------------

    def folder(self, key: str) -> Path:
        if not KEY_RE.match(key):
            raise ValueError(f"store keys are sha256 hex digests, not {key!r}")
        return self.root / "entries" / key

    def lock_path(self, key: str) -> Path:
        return self.root / "locks" / f"{key}.lock"

    def partial(self, name: str) -> Path:
        """A place for an unfinished write that survives the process (a resumable download)."""
        folder = self.root / "partial"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / name

    # --- reading ---------------------------------------------------------------------------------------------------

    def entry(self, key: str) -> Entry | None:
        """The entry stored under key, or None (also when its file was removed or edited in place)."""
        folder = self.folder(key)
        try:
            data = json.loads((folder / META).read_text())
            entry = Entry(key=key, kind=data["kind"], name=data["name"], size=int(data["size"]),
                          created=float(data["created"]), last_used=float(data["last_used"]),
                          stamp=(int(data["stamp"][0]), int(data["stamp"][1])))
            st = (folder / entry.name).stat()
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            return None
        return entry if (st.st_size, st.st_mtime_ns) == entry.stamp else None

    def get(self, key: str) -> Path | None:
        """The stored file for key (its last-use time updated), or None."""
        entry = self.entry(key)
        if entry is None:
            return None
        self._touch(entry)
        return self.folder(key) / entry.name

    def entries(self, kind: str | None = None) -> list[Entry]:
        """Every intact entry (of one kind), least recently used first."""
        found = []
        with contextlib.suppress(FileNotFoundError):
            for folder in (self.root / "entries").iterdir():
                entry = self.entry(folder.name) if KEY_RE.match(folder.name) else None
                if entry is not None and kind in (None, entry.kind):
                    found.append(entry)
        return sorted(found, key=lambda e: (e.last_used, e.key))

    def key_of(self, path: Path) -> str | None:
        """The key of a path inside the store, or None for any other path."""
        try:
            rel = path.resolve().relative_to((self.root / "entries").resolve())
        except ValueError:
            return None
        return rel.parts[0] if rel.parts and KEY_RE.match(rel.parts[0]) else None

    # --- writing ---------------------------------------------------------------------------------------------------

    def adopt(self, key: str, kind: str, file: Path, name: str | None = None) -> Path:
        """Move a finished file (same filesystem) into the store under key; return its stored path."""
        name = name or file.name
        with file_lock(self.lock_path(key)), atomic_dir(self.folder(key)) as tmp:
            os.replace(file, tmp / name)
            self._write_meta(tmp, key, kind, name)
        return self.folder(key) / name

    @contextlib.contextmanager
    def put(self, key: str, kind: str, name: str) -> Iterator[Path]:
        """Yield a path to write the entry's file at; the entry appears, complete, when the block succeeds."""
        with file_lock(self.lock_path(key)), atomic_dir(self.folder(key)) as tmp:
            yield tmp / name
            self._write_meta(tmp, key, kind, name)

    @contextlib.contextmanager
    def new_entry(self, key: str, kind: str, name: str) -> Iterator[tuple[Path, Path]]:
        """A new entry of several files: yields (a temporary folder to fill, the entry's final folder), the key
        locked exclusively; the entry (its main file: name) appears whole when the block succeeds. Never replaces
        an entry: FileExistsError if key is taken."""
        with file_lock(self.lock_path(key)):
            if self.entry(key) is not None:
                raise FileExistsError(key)
            with atomic_dir(self.folder(key)) as tmp:
                yield tmp, self.folder(key)
                self._write_meta(tmp, key, kind, name)

    def cached(self, key: str, kind: str, out: Path, make: Callable[[Path], object]) -> bool:
        """Place the entry for key at out (hard link, else copy); on a miss make(out) first and store the result.

        Returns True on a hit. Concurrent callers with the same key make it once.
        """
        with file_lock(self.lock_path(key)):
            stored = self.get(key)
            if stored is not None:
                place(stored, out)
                return True
            make(out)
            with contextlib.suppress(OSError), atomic_dir(self.folder(key)) as tmp:
                link_or_copy(out, tmp / out.name)
                self._write_meta(tmp, key, kind, out.name)
        return False

    def remove(self, key: str) -> bool:
        """Remove an entry unless someone holds its lock; True when it is gone."""
        fd = os.open(self.lock_path(key), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        try:
            shutil.rmtree(self.folder(key), ignore_errors=True)
            return not self.folder(key).exists()
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def hold(self, key: str) -> Iterator[None]:
        """Keep the entry from being collected for the block (a shared lock: many builds can hold it)."""
        with file_lock(self.lock_path(key), shared=True):
            yield

    def gc(self, max_size: int, kind: str | None = None) -> tuple[list[Entry], list[Entry]]:
        """Remove least recently used entries until the total is at most max_size bytes.

        Returns (removed, skipped because in use). Entries in use are never removed.
        """
        entries = self.entries(kind)
        total = sum(e.size for e in entries)
        removed: list[Entry] = []
        busy: list[Entry] = []
        for entry in entries:
            if total <= max_size:
                break
            if self.remove(entry.key):
                removed.append(entry)
                total -= entry.size
            else:
                busy.append(entry)
        return removed, busy

    def _write_meta(self, folder: Path, key: str, kind: str, name: str) -> None:
        st = (folder / name).stat()
        now = time.time()
        # Every file of the entry counts (a checkpoint: its layer, the VM state, the UEFI variables).
        size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file() and p.name != META)
        data = {"kind": kind, "name": name, "size": size, "created": now, "last_used": now,
                "stamp": [st.st_size, st.st_mtime_ns]}
        (folder / META).write_text(json.dumps(data, sort_keys=True))

    def _touch(self, entry: Entry) -> None:
        data = entry.as_dict() | {"last_used": time.time(), "stamp": list(entry.stamp)}
        data.pop("key")
        with contextlib.suppress(OSError, FactoryError), atomic_path(self.folder(entry.key) / META) as tmp:
            tmp.write_text(json.dumps(data, sort_keys=True))


def link_or_copy(src: Path, dest: Path) -> None:
    """A hard link where the filesystem allows it (free while both exist), else a copy (a reflink where it can)."""
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


def place(stored: Path, out: Path) -> None:
    """Put a stored file at out atomically."""
    with atomic_path(out) as tmp:
        tmp.unlink()
        link_or_copy(stored, tmp)


SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Bytes in `500M`, `20G`, `1.5T`, `0` (binary multiples, like qemu-img)."""
    match = SIZE_RE.match(text)
    if match is None:
        raise FactoryError(f"invalid size {text!r}", hint="a number of bytes or one with a unit: 500M, 20G, 1T")
    return int(float(match.group(1)) * 1024 ** " kmgt".index(match.group(2).lower() or " "))


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def human_age(seconds: float) -> str:
    for unit, span in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= span:
            return f"{seconds / span:.0f}{unit}"
    return f"{seconds:.0f}s"
