"""The template argument as it was typed, for Packer's `path.root`.

Packer keeps the folder argument unchanged (hcl2template's Basedir: `./tpl`, `tpl/`) and takes Go's
filepath.Dir of a file argument (cleaned: `tpl/../tpl/t.pkr.hcl` → `tpl`), whereas pathlib has already
normalised `./tpl/` to `tpl` by the time the loader sees it. The CLI parses the template argument with `given`,
which remembers the text; the loader asks `root_as_given`.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

_GIVEN: dict[str, str] = {}


def given(raw: str) -> Path:
    """The template argument as a Path, its text remembered (typer's parser for it)."""
    path = Path(raw)
    _GIVEN[str(path)] = raw
    return path


def root_as_given(path: Path) -> str:
    """Packer's path.root for a template argument: a folder as typed, else the cleaned directory of the file."""
    raw = _GIVEN.get(str(path), str(path))
    if path.is_dir():
        return raw
    root = posixpath.normpath(posixpath.dirname(raw))
    return root[1:] if root.startswith("//") and not root.startswith("///") else root   # Go's Clean: one "/"
