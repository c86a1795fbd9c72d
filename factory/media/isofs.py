"""pycdlib helpers shared by the seed-ISO maker and the remaster: a frozen clock and a file writer.

pycdlib stamps every new record (and, for new ISOs, the volume descriptors) with `time.time()` in local time,
so two runs would differ. `frozen_clock` swaps the `time` module seen by pycdlib for one whose clock is fixed
and whose local time is UTC, which makes its output a pure function of its inputs.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import threading
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from time import struct_time
from typing import Any, BinaryIO

import pycdlib

from factory.errors import FactoryError

_PYCDLIB_MODULES = ("pycdlib.pycdlib", "pycdlib.headervd", "pycdlib.dates", "pycdlib.utils",
                    "pycdlib.inplaceeditor", "pycdlib.rockridge", "pycdlib.udf")
_clock_lock = threading.RLock()

# Fixed default for media without a date of their own (the seed ISO): 2020-01-01T00:00:00Z.
DEFAULT_EPOCH = 1577836800.0


class _FrozenTime(types.ModuleType):
    """A stand-in for the `time` module: fixed now, localtime == gmtime; everything else is the real one."""

    def __init__(self, epoch: float) -> None:
        super().__init__("time")
        self._epoch = epoch

    def time(self) -> float:
        return self._epoch

    def localtime(self, secs: float | None = None) -> struct_time:
        return time.gmtime(self._epoch if secs is None else secs)

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@contextlib.contextmanager
def frozen_clock(epoch: float = DEFAULT_EPOCH) -> Iterator[None]:
    """Within the block, pycdlib sees a clock stopped at epoch (UTC), so its output is reproducible."""
    import importlib

    with _clock_lock:
        fake = _FrozenTime(epoch)
        saved: list[tuple[types.ModuleType, Any]] = []
        for name in _PYCDLIB_MODULES:
            mod = importlib.import_module(name)
            if hasattr(mod, "time"):
                saved.append((mod, getattr(mod, "time")))  # noqa: B009 - mypy cannot see pycdlib's attrs
                setattr(mod, "time", fake)  # noqa: B010
        try:
            yield
        finally:
            for mod, real in saved:
                setattr(mod, "time", real)  # noqa: B010


_COPY_CHUNK = 64 << 20


def _kernel_copy_yield(original: Callable[..., Iterator[int]]) -> Callable[..., Iterator[int]]:
    """pycdlib's copy loop, but through copy_file_range(2) when both sides are real files: the data stays in the
    kernel (as with cp), which is what keeps remastering a multi-GiB ISO at copy speed."""

    def copy(data_length: int, blocksize: int, infp: BinaryIO, outfp: BinaryIO) -> Iterator[int]:
        try:
            in_fd, out_fd = infp.fileno(), outfp.fileno()
        except (AttributeError, OSError, io.UnsupportedOperation):
            yield from original(data_length, blocksize, infp, outfp)
            return
        outfp.flush()
        src, dst, left = infp.tell(), outfp.tell(), data_length
        try:
            while left > 0:
                n = os.copy_file_range(in_fd, out_fd, min(left, _COPY_CHUNK), src, dst)
                if n == 0:
                    break  # source shorter than its record says; pycdlib's own loop tolerates this too
                src, dst, left = src + n, dst + n, left - n
                yield n
        except OSError:  # e.g. EXDEV on old kernels: finish in user space
            pass
        infp.seek(src)
        outfp.seek(dst)
        if left > 0:
            yield from original(left, blocksize, infp, outfp)

    return copy


@contextlib.contextmanager
def kernel_copy() -> Iterator[None]:
    """Within the block, pycdlib copies file data with copy_file_range(2)."""
    from pycdlib import utils

    with _clock_lock:
        original = utils.copy_data_yield
        setattr(utils, "copy_data_yield", _kernel_copy_yield(original))  # noqa: B010
        try:
            yield
        finally:
            setattr(utils, "copy_data_yield", original)  # noqa: B010


_NOT_D = re.compile(r"[^A-Z0-9_]")


def _d_chars(text: str) -> str:
    return _NOT_D.sub("_", text.upper())


JOLIET_NAME_MAX = 64   # characters per name in a Joliet directory record (the longest any reader accepts)


def check_media_path(path: str) -> str:
    """A user-given path on the media ('dir/name'), normalised, or a FactoryError saying what is wrong with it."""
    parts = path.strip("/").split("/")
    problem = ("is empty" if parts == [""] else
               "has an empty folder name ('//')" if "" in parts else
               "has a '.' or '..' part (a path on the media cannot leave its root)" if {".", ".."} & set(parts) else
               "holds a NUL byte" if "\0" in path else
               f"has a name longer than {JOLIET_NAME_MAX} characters (the Joliet limit)"
               if any(len(p) > JOLIET_NAME_MAX for p in parts) else "")
    if problem:
        raise FactoryError(f"media path {path!r} {problem}", hint="give a relative path such as docs/notes.txt")
    return "/".join(parts)


class MediaWriter:
    """Adds or replaces files (by their Rock Ridge / Joliet path) on a pycdlib ISO, creating parent folders.

    ISO9660 names are derived from the long names within the volume's interchange level and made unique per
    folder; the sources stay open (pycdlib reads them at write time) until the writer's stack closes.
    """

    def __init__(self, iso: pycdlib.PyCdlib, stack: contextlib.ExitStack) -> None:
        self.iso, self._stack = iso, stack
        self.rock_ridge = iso.has_rock_ridge()
        self.joliet = iso.has_joliet()
        self.level: int = iso.interchange_level

    def put(self, path: str, data: bytes | Path) -> bool:
        """Write data at path ('dir/name'); return True if it replaced an existing file."""
        parts = [p for p in path.strip("/").split("/") if p]
        if not parts:
            raise ValueError(f"empty media path {path!r}")
        parent = self._ensure_dirs(parts[:-1])
        fp, length = self._open(data)
        existing = self._find(parent, parts[-1])
        if existing is not None:
            self.iso.update_file_contents_fp(fp, length, iso_path=_join(parent, existing))
            return True
        iso_name = self._unique(parent, self._file_name(parts[-1]))
        kwargs: dict[str, Any] = {"iso_path": _join(parent, iso_name)}
        if self.rock_ridge:
            kwargs["rr_name"] = parts[-1]
        if self.joliet:
            kwargs["joliet_path"] = "/" + "/".join(parts)
        self.iso.add_fp(fp, length, **kwargs)
        return False

    def read(self, path: str) -> bytes | None:
        """The contents of the file at the long path, or None if there is none."""
        iso_path = self.iso_path(path)
        if iso_path is None:
            return None
        with self.iso.open_file_from_iso(iso_path=iso_path) as fh:
            data: bytes = fh.read()
            return data

    def iso_path(self, path: str) -> str | None:
        """The ISO9660 path (with version) of a long path, or None if missing."""
        parts = [p for p in path.strip("/").split("/") if p]
        current = "/"
        for part in parts:
            found = self._find(current, part)
            if found is None:
                return None
            current = _join(current, found)
        return current

    def list_names(self, folder: str) -> list[str]:
        """Long names of the entries in a folder (empty if it does not exist)."""
        iso_dir = self.iso_path(folder)
        return sorted(self._children(iso_dir)) if iso_dir is not None else []

    def files_at(self, blocks: set[int], suffixes: tuple[str, ...] = (".img", ".bin", ".efi")) -> list[tuple[str, int]]:
        """(long path, block) of the files with these suffixes whose data starts at one of blocks."""
        found: list[tuple[str, int]] = []
        pending = [("", "/")]
        while pending and blocks:
            long_dir, iso_dir = pending.pop()
            for rec in self.iso.list_children(iso_path=iso_dir):
                if rec.is_dot() or rec.is_dotdot():
                    continue
                ident = rec.file_identifier().decode()
                long = self._long_name(rec, ident)
                if rec.is_dir():
                    pending.append((f"{long_dir}{long}/", _join(iso_dir, ident)))
                elif long.lower().endswith(suffixes) and rec.extent_location() in blocks:
                    found.append((long_dir + long, rec.extent_location()))
        return sorted(found)

    def _open(self, data: bytes | Path) -> tuple[BinaryIO, int]:
        import io

        if isinstance(data, bytes):
            return io.BytesIO(data), len(data)
        fh = self._stack.enter_context(data.open("rb"))
        return fh, data.stat().st_size

    def _children(self, iso_dir: str) -> dict[str, str]:
        """Map long name (Rock Ridge, else ISO9660 without version) -> ISO9660 identifier, for one folder."""
        out: dict[str, str] = {}
        for rec in self.iso.list_children(iso_path=iso_dir):
            if rec.is_dot() or rec.is_dotdot():
                continue
            ident = rec.file_identifier().decode()
            out[self._long_name(rec, ident)] = ident
        return out

    @staticmethod
    def _long_name(rec: Any, ident: str) -> str:
        if rec.rock_ridge is not None and rec.rock_ridge.name():
            return str(rec.rock_ridge.name().decode())
        return ident.split(";")[0].rstrip(".") if not rec.is_dir() else ident

    def _find(self, iso_dir: str, name: str) -> str | None:
        children = self._children(iso_dir)
        if name in children:
            return children[name]
        if not self.rock_ridge:  # plain ISO9660: match case-insensitively on the mangled name
            wanted = {self._file_name(name).upper(), _d_chars(name)}
            for ident in children.values():
                if ident.upper() in wanted or ident.split(";")[0].rstrip(".").upper() in wanted:
                    return ident
        return None

    def _ensure_dirs(self, parts: list[str]) -> str:
        current = "/"
        for i, part in enumerate(parts):
            found = self._find(current, part)
            if found is None:
                found = self._unique(current, self._dir_name(part))
                kwargs: dict[str, Any] = {"iso_path": _join(current, found)}
                if self.rock_ridge:
                    kwargs["rr_name"] = part
                if self.joliet:
                    kwargs["joliet_path"] = "/" + "/".join(parts[: i + 1])
                self.iso.add_directory(**kwargs)
            current = _join(current, found)
        return current

    def _file_name(self, name: str) -> str:
        stem, dot, ext = name.rpartition(".")
        if not dot:
            stem, ext = name, ""
        stem, ext = _d_chars(stem) or "_", _d_chars(ext)
        if self.level == 1:
            stem, ext = stem[:8], ext[:3]
        else:
            ext = ext[:8]
            stem = stem[: 30 - len(ext)]
        return f"{stem}.{ext};1"

    def _dir_name(self, name: str) -> str:
        return (_d_chars(name) or "_")[: 8 if self.level == 1 else 31]

    def _unique(self, iso_dir: str, ident: str) -> str:
        taken = {i.upper() for i in self._children(iso_dir).values()}
        if ident.upper() not in taken:
            return ident
        head, semi, version = ident.partition(";")
        stem, dot, ext = head.partition(".")
        for n in range(1, 1000):
            suffix = f"_{n}"
            candidate = f"{stem[: max(1, len(stem) - len(suffix))]}{suffix}{dot}{ext}{semi}{version}"
            if candidate.upper() not in taken:
                return candidate
        raise ValueError(f"cannot find a free ISO9660 name for {ident!r} in {iso_dir}")


def _join(iso_dir: str, ident: str) -> str:
    return iso_dir.rstrip("/") + "/" + ident
