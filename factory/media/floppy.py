"""Floppy images (floppy_files / floppy_dirs / floppy_content): a FAT12 1.44 MB disk made with mtools.

What goes where follows Packer's StepCreateFloppy: `floppy_files` entries (globs allowed) land flat at the
root, a directory among them contributes every file below it, still flat; `floppy_dirs` entries (globs allowed)
are copied with their own name and structure; `floppy_content` (path -> text) wins over both. A literal path
that does not exist is an error; a glob that matches nothing adds nothing (Packer's behaviour), with a warning.

The image is deterministic: files are written in sorted order, timestamps come from SOURCE_DATE_EPOCH
(default 1980-01-01, FAT's epoch) and the volume serial number is derived from the content.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path, PurePosixPath

from factory.errors import FactoryError
from factory.placeholders import expand
from factory.run import run
from factory.schema.values import DEFAULT_FLOPPY_LABEL as DEFAULT_LABEL
from factory.schema.values import check_floppy_label as check_label

FloppyFiles = dict[str, bytes | Path]

SIZE_KIB = 1440
CLUSTER = 512
DATA_CLUSTERS = 2847                      # a 1.44 MB FAT12 disk as `mformat -f 1440` lays it out
CAPACITY = DATA_CLUSTERS * CLUSTER
FAT_EPOCH = 315532800                     # 1980-01-01T00:00:00Z: the earliest time FAT can store
_LARGE_HINT = ("a floppy holds 1.44 MB: serve large files with http_directory/http_content, put them on the CD "
               "(cd_files/cd_content) or upload them with a file provisioner")


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def _expand(root: Path, pattern: str, option: str, warn: Callable[[str], None]) -> list[Path]:
    """Paths an entry names: a glob's matches (sorted), or the literal path, which must exist."""
    full = root / os.path.expanduser(pattern)
    if _is_glob(pattern):
        matches = sorted(Path(p) for p in glob.glob(str(full)))
        if not matches:
            warn(f"{option}: {pattern!r} matches nothing (relative to {root}); nothing added for it")
        return matches
    if not full.exists():
        raise FactoryError(f"{option}: {pattern!r} does not exist (relative to {root})",
                           hint=f"fix the path in {option}, or use a glob pattern if the file is optional")
    return [full]


def _files_below(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file())


def collect(root: Path, files: tuple[str, ...] | list[str], dirs: tuple[str, ...] | list[str],
            content: Mapping[str, str], values: Mapping[str, str],
            warn: Callable[[str], None] = lambda _m: None) -> FloppyFiles:
    """The floppy's files (floppy path -> source file or bytes), with Packer's rules for each option."""
    out: FloppyFiles = {}
    for pattern in files:
        for match in _expand(root, pattern, "floppy_files", warn):
            for f in _files_below(match) if match.is_dir() else [match]:
                out[f.name] = f                       # flat: Packer's floppy_files has no sub-directories
    for pattern in dirs:
        for match in _expand(root, pattern, "floppy_dirs", warn):
            if not match.is_dir():
                out[match.name] = match
                continue
            for f in _files_below(match):
                out[f.relative_to(match.parent).as_posix()] = f
    for name, text in content.items():
        out[name.strip("/")] = expand(text, values, where=f"floppy_content[{name!r}]").encode()
    _check_names(out)
    return out


_NAME_FORBIDDEN = set('"*:<>?\\|') | {chr(c) for c in range(32)}
_DEVICES = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


def _bad_part(part: str) -> bool:
    # What FAT long names cannot hold; mtools would refuse some and silently rewrite others (`a:b` -> `b`).
    return (part in ("", ".", "..") or bool(_NAME_FORBIDDEN & set(part)) or part[-1] in ". "
            or part.split(".")[0].upper() in _DEVICES)


def _check_names(files: FloppyFiles) -> None:
    seen: dict[str, str] = {}
    for name in files:
        if not name or any(_bad_part(part) for part in name.split("/")):
            raise FactoryError(f"floppy path {name!r} is not a valid FAT file name",
                               hint='use relative paths such as `scripts/setup.ps1`, without "*:<>?\\| or a '
                                    "trailing dot/space, and no device name (CON, NUL, COM1 ...)")
        # FAT compares names case-insensitively: two such names would overwrite each other.
        key = name.lower()
        if key in seen and seen[key] != name:
            raise FactoryError(f"floppy files {seen[key]!r} and {name!r} differ only in case, which FAT "
                               "cannot keep apart", hint="rename one of them (floppy_files/floppy_dirs/"
                               "floppy_content)")
        seen[key] = name


def _size(data: bytes | Path) -> int:
    return len(data) if isinstance(data, bytes) else data.stat().st_size


def clusters_needed(files: FloppyFiles) -> int:
    """Data clusters the files and their sub-directories take (a lower bound mtools' own check confirms)."""
    dirs = {str(PurePosixPath(n).parent) for n in files} - {"."}
    parents = {str(p) for d in dirs for p in PurePosixPath(d).parents} - {"."}
    return sum(-(-_size(d) // CLUSTER) for d in files.values()) + len(dirs | parents)


def _check_fits(files: FloppyFiles) -> None:
    needed = clusters_needed(files)
    if needed > DATA_CLUSTERS:
        total = sum(_size(d) for d in files.values())
        biggest = sorted(files, key=lambda n: _size(files[n]), reverse=True)[:3]
        raise FactoryError(f"floppy content too large: {total:,} bytes in {len(files)} file(s) need "
                           f"{needed * CLUSTER:,} bytes, a 1.44 MB floppy holds {CAPACITY:,} "
                           f"(largest: {', '.join(biggest)}; from floppy_files/floppy_dirs/floppy_content)",
                           hint=_LARGE_HINT)


def _serial(files: FloppyFiles, label: str) -> str:
    h = hashlib.sha256(label.encode())
    for name in sorted(files):
        data = files[name]
        h.update(name.encode() + b"\0")
        h.update(data if isinstance(data, bytes) else hashlib.sha256(data.read_bytes()).digest())
    return h.hexdigest()[:8]


def make_floppy(files: FloppyFiles, dest: Path, *, label: str = DEFAULT_LABEL) -> Path:
    """Write a FAT12 1.44 MB image holding files (sorted, deterministic) to dest (atomically) and return it."""
    check_label(label)
    _check_names(files)
    _check_fits(files)
    # mtools converts long names through the locale's charset: a fixed UTF-8 locale keeps non-ASCII names
    # intact and the image the same whatever the user's locale.
    env = {"SOURCE_DATE_EPOCH": os.environ.get("SOURCE_DATE_EPOCH", str(FAT_EPOCH)), "MTOOLS_SKIP_CHECK": "1",
           "MTOOLSRC": os.devnull, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".floppy.", dir=dest.parent))
    try:
        image = staging / "floppy.img"
        with open(image, "wb") as fh:
            fh.truncate(SIZE_KIB * 1024)
        # FAT stores labels in upper case; mformat would upper-case only the root-directory copy (fsck warns).
        run(["mformat", "-i", image, "-f", str(SIZE_KIB), "-v", label.upper(), "-N", _serial(files, label), "::"],
            env=env)
        by_dir: dict[str, list[str]] = {}
        for name in sorted(files):
            by_dir.setdefault(str(PurePosixPath(name).parent), []).append(name)
        subdirs = sorted({str(p) for d in by_dir for p in (PurePosixPath(d), *PurePosixPath(d).parents)} - {"."})
        if subdirs:
            run(["mmd", "-i", image, *(f"::/{d}" for d in subdirs)], env=env)
        for directory, names in sorted(by_dir.items()):
            sources = [_stage(staging / "files", name, files[name]) for name in names]
            target = "::/" if directory == "." else f"::/{directory}/"
            _mcopy(["mcopy", "-i", image, "-D", "o", *sources, target], env)
        os.replace(image, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return dest


def _stage(base: Path, name: str, data: bytes | Path) -> Path:
    """The file under its floppy name (mcopy names the copy after its source)."""
    path = base / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        try:
            os.link(data, path)
        except OSError:
            shutil.copyfile(data, path)
    return path


def _mcopy(argv: list[str | Path], env: dict[str, str]) -> None:
    try:
        run(argv, env=env)
    except FactoryError as exc:
        if any(word in exc.message.lower() for word in ("full", "no free", "slot")):
            raise FactoryError("floppy content too large for a 1.44 MB floppy (directory entries included; "
                               "from floppy_files/floppy_dirs/floppy_content)", hint=_LARGE_HINT) from exc
        raise
