"""Atomic outputs and cross-process locks, shared by every step that writes or reserves something."""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path


def file_sha256(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's content, read in 1 MiB blocks."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def file_blake3(path: str | os.PathLike[str]) -> str:
    """BLAKE3 of a file's content: factory's own digest of the files a build reads (stage IDs), which nobody else
    checks. The file is read mapped, on every core: a 390 MiB image in the page cache in 0.06 s where sha256 took
    0.31 s (SHA-NI, one core). Digests that others verify (checksums, ISO pins, uploads) stay sha256."""
    import blake3

    h = blake3.blake3(max_threads=blake3.blake3.AUTO)
    h.update_mmap(path)  # it reads instead where mapping does not apply (small files, /proc, pipes)
    return h.hexdigest()


def read_part(fd: int, path: Path, offset: int, length: int) -> bytes:
    """length bytes of the open file path at offset (os.pread), all of them: a file that shrank while it was
    being read (something else writes the artifact) is an error naming it, never a short part sent on."""
    data = os.pread(fd, length, offset)
    if len(data) != length:
        from factory.errors import FactoryError

        try:
            now = f"it is {path.stat().st_size} bytes now"
        except OSError:
            now = "it is gone now"
        raise FactoryError(f"{path} changed while it was read: {len(data)} bytes at offset {offset}, {length} "
                           f"expected ({now})", hint="let nothing else write the file until factory is done with it")
    return data


def creation_mode() -> int:
    """0666 minus the process umask: the mode open() gives a new file. Read from /proc, since the only portable
    way (setting the umask and back) would briefly give other threads' new files a umask of 0."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            umask = next(int(line.split()[1], 8) for line in status if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike[str], *, private: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside final; rename it onto final only if the block succeeds.

    The temporary name starts with '.' and ends with '.part' so a half-written artifact is never mistaken
    for a finished one, and it is removed on any failure (including KeyboardInterrupt). The file gets the mode a
    new file gets (0666 minus the umask), or stays 0600 when private (credentials, upload sessions); the block
    may still chmod it.
    """
    final = Path(final)
    if final.exists() and not final.is_file():
        from factory.errors import FactoryError

        # The rename would replace a device (/dev/null as root), FIFO or socket with a regular file, or fail on a
        # folder only after the whole output was written.
        raise FactoryError(f"cannot write {final}: it is not a regular file (a folder, device, FIFO or socket)",
                           hint="name a regular file to write")
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent)
    except OSError as exc:
        from factory.errors import FactoryError

        raise FactoryError(f"cannot write {final}: {exc.strerror or exc} ({exc.filename or final.parent})",
                           hint="choose a path in a folder you can write to") from None
    try:
        if not private:
            os.fchmod(fd, creation_mode())  # mkstemp makes it 0600: an ISO or a document others could not read
    finally:
        os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike[str]) -> Iterator[Path]:
    """Like atomic_path for a directory: filled under a temporary name, renamed into place on success."""
    import shutil

    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".part", dir=final.parent))
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _open_lock(path: str | os.PathLike[str]) -> int:
    """The lock file at path, opened for flock (created 0644 if missing).

    Fit for folders every user shares (paths.host_lock_dir): another user's lock file (0644) is opened read-only,
    since flock needs no write access on a local filesystem (own files are opened read-write: NFS emulates flock
    with byte-range locks, which do); a symlink is never followed; and an existing file is opened without
    O_CREAT, which protected_regular refuses for another user's file in a sticky folder."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(2):
        try:
            return os.open(path, flags | os.O_RDWR)
        except PermissionError:
            return os.open(path, flags | os.O_RDONLY)  # another user's: readable, not writable
        except FileNotFoundError:
            pass
        try:
            fd = os.open(path, flags | os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:  # another process made it just now: open that one
            continue
        os.fchmod(fd, 0o644)  # whatever the umask: other users open it to take the same lock
        return fd
    return os.open(path, flags | os.O_RDONLY)


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str], *, shared: bool = False) -> Iterator[None]:
    """Hold an flock on path (created if needed) for the block; released even if the process dies."""
    fd = _open_lock(path)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def try_lock(path: str | os.PathLike[str]) -> int | None:
    """Take an exclusive flock without waiting; return the open fd (close it to release) or None if held.

    A lock file this user cannot open (another user's, made unreadable, or a symlink planted in its place) counts
    as held; a missing one that cannot be made raises the OSError, for the caller to name the folder."""
    try:
        fd = _open_lock(path)
    except OSError:
        if os.path.lexists(path):
            return None
        raise
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def check_output_file(out: Path, inputs: Mapping[str, Path | None], *, option: str = "-o",
                      example: str = "out.iso") -> None:
    """Refuse an output file that is a folder, a device/FIFO/socket, or one of the command's inputs (same real path
    or inode: a symlink or hard link counts), which the atomic rename would otherwise replace."""
    from factory.errors import die

    if out.is_dir():
        die(f"{option} {out} is a folder", hint=f"name the file to write, e.g. {out / example}")
    if out.exists() and not out.is_file():
        # A device (/dev/null), FIFO or socket: the atomic rename would replace it with a regular file.
        die(f"{option} {out} is not a regular file (a device, FIFO or socket): factory renames its finished "
            "output onto the path, which would replace it", hint=f"name a regular file to write, e.g. {example}")
    for what, src in inputs.items():
        if src is None:
            continue
        same = out.resolve() == src.resolve()
        with contextlib.suppress(OSError):
            same = same or (out.exists() and src.exists() and os.path.samefile(out, src))
        if same:
            die(f"{option} {out} is also the {what} ({src}): writing it would destroy that input",
                hint=f"choose another {option} path")



# Written into every output folder factory creates; `-force` replaces only a folder that has it.
OUTPUT_MARKER = ".factory-output"


def check_output_dir(out: Path, *, force: bool, protected: Mapping[str, Path],
                     option: str = "output_directory") -> None:
    """Refuse an output folder whose replacement could destroy what factory did not make: `/`, the home folder,
    a folder in `protected` (the folder factory runs in, the template's) or one holding them, a file, a
    symbolic link, a non-empty folder without -force, and with -force any folder without OUTPUT_MARKER."""
    from factory.errors import FactoryError

    hint = f"use a folder of its own, e.g. {option} = \"output-debian\""
    if out.is_symlink():
        raise FactoryError(f"{option} {out} is a symbolic link: factory replaces its output folder as a whole",
                           hint=f"name the real folder ({out.resolve()}) or another one")
    real = out.resolve()
    places = {"/": Path("/"), "your home folder": Path.home(), **protected}
    for what, place in places.items():
        held = place.resolve()
        if real == held or real in held.parents:
            raise FactoryError(f"{option} {out} is {what if real == held else 'a parent of ' + what} ({place}): "
                               "factory replaces its output folder as a whole", hint=hint)
    if not out.exists():
        return
    if not out.is_dir():
        raise FactoryError(f"{option} {out} is a file, not a folder", hint=f"remove it or choose another {option}")
    if not any(out.iterdir()):
        return
    if not force:
        raise FactoryError(f"output directory {out} already exists and is not empty",
                           hint=f"remove it, choose another {option}, or pass -force")
    if not (out / OUTPUT_MARKER).is_file():
        raise FactoryError(f"output directory {out} was not created by factory (it has no {OUTPUT_MARKER}): "
                           "-force replaces only factory's own output folders",
                           hint=f"move or remove it yourself if it may go, or choose another {option}")


def mark_output_dir(folder: Path, what: str) -> None:
    """Mark a folder factory is about to publish as its own output (so a later -force may replace it)."""
    (folder / OUTPUT_MARKER).write_text(f"made by factory: {what}\n-force may replace this folder as a whole\n")
