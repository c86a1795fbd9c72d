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
    base = os.environ.get("FACTORY_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "factory")
    path = Path(base, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def runtime_dir(*parts: str) -> Path:
    """A folder for cross-process locks and sockets (XDG_RUNTIME_DIR, else the cache dir)."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    path = Path(base, "factory", *parts) if base else cache_dir("run", *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
