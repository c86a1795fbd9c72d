"""Where factory finds its shipped data (isos/, preseeds/) and keeps its caches."""

from __future__ import annotations

import os
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


def runtime_dir(*parts: str) -> Path:
    """A folder for cross-process locks and sockets (XDG_RUNTIME_DIR, else the cache dir)."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    path = Path(base, "factory", *parts) if base else cache_dir("run", *parts)
    if base:
        _make(path, f"XDG_RUNTIME_DIR={base}", "XDG_RUNTIME_DIR")
    return path
