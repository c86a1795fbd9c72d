"""Where factory finds its shipped data (isos/, preseeds/) and keeps its caches."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

_PKG = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """A shipped data folder: inside the wheel (factory/_data/NAME) or, from a checkout, the top-level NAME/."""
    for candidate in (_PKG / "_data" / name, _PKG.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"factory data folder {name!r} is missing from the installation")


def cache_dir(*parts: str) -> Path:
    """A folder under the XDG cache dir (FACTORY_CACHE_DIR overrides), created on demand."""
    if os.environ.get("FACTORY_CACHE_DIR"):
        setting = f"FACTORY_CACHE_DIR={os.environ['FACTORY_CACHE_DIR']}"
        base = os.environ["FACTORY_CACHE_DIR"]
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        setting = f"XDG_CACHE_HOME={xdg}" if xdg else "the cache folder"
        base = os.path.join(xdg or os.path.expanduser("~/.cache"), "factory")
    path = Path(base, *parts)
    _make(path, setting, "FACTORY_CACHE_DIR")
    return path


def _make(path: Path, setting: str, variable: str) -> None:
    """mkdir -p, or one user error naming the setting that chose the place (a file, a place that cannot be made)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from factory.errors import FactoryError

        raise FactoryError(f"{setting}: cannot create the folder {path}: {exc.strerror or exc}",
                           hint=f"point {variable} at a folder you can write to") from None


# Folders every user of the host can write and no cleaner ages (/run/lock), else /tmp: the first that is one.
_HOST_SHARED = ("/run/lock", "/tmp")


def host_lock_dir(name: str) -> Path:
    """A lock folder shared by every factory on this host, whatever its user, cache or runtime dir: for locks on
    what the host has once (a TCP port). Sticky and world-writable like its parent, so each user owns the lock
    files they made and the others can still take those locks (fsutil.try_lock opens them read-only)."""
    from factory.errors import FactoryError

    base = next((b for b in _HOST_SHARED if _shared_sticky(Path(b))), _HOST_SHARED[-1])
    path = Path(base, f"factory-{name}")
    try:
        path.mkdir(mode=0o1777)
        os.chmod(path, 0o1777)  # mkdir's mode is cut by the umask
    except FileExistsError:
        pass
    except OSError as exc:
        raise FactoryError(f"cannot create the host-wide lock folder {path}: {exc.strerror or exc}",
                           hint=f"{base} must be a folder every user can write (mode 1777)") from None
    if not _usable(path):
        time.sleep(0.2)  # another user's factory may be between its mkdir and its chmod
    if not _usable(path):
        raise FactoryError(f"the host-wide lock folder {path} is not a folder every factory can use "
                           "(a symlink, a file, or another user's private folder)",
                           hint="remove it; factory makes it again as a sticky, world-writable folder")
    return path


def _usable(path: Path) -> bool:
    """A real folder (not a symlink) that is sticky and world-writable, or this user's own."""
    return _shared_sticky(path, or_owned=True)


def _shared_sticky(path: Path, *, or_owned: bool = False) -> bool:
    try:
        st = path.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and (st.st_mode & 0o1777 == 0o1777 or (or_owned and st.st_uid == os.getuid()))
