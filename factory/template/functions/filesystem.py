"""Filesystem functions; relative paths are relative to the current directory, as in Packer."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from typing import Any

from factory.template.functions import FuncError, function
from factory.template.functions.text import s


def _read(path: str, arg: int = 0) -> bytes:
    try:
        return Path(os.path.expanduser(path)).read_bytes()
    except OSError as exc:
        raise FuncError(f"cannot read {path}: {exc.strerror or exc}", arg) from None


@function("abspath", "filesystem", "Absolute form of a path (not resolving symlinks).")
def abspath(p: Any) -> str:
    return os.path.abspath(s(p))


@function("basename", "filesystem", "Last element of a path.")
def basename(p: Any) -> str:
    text = s(p)
    stripped = text.rstrip("/")
    return "/" if text and not stripped else os.path.basename(stripped) if stripped else "."


@function("dirname", "filesystem", "A path without its last element.")
def dirname(p: Any) -> str:
    return os.path.dirname(s(p).rstrip("/") or "/") or "."


@function("pathexpand", "filesystem", "Expands a leading ~ to the home directory.")
def pathexpand(p: Any) -> str:
    return os.path.expanduser(s(p))


@function("file", "filesystem", "Contents of a file as a UTF-8 string.")
def file(p: Any) -> str:
    try:
        return _read(s(p)).decode("utf-8")
    except UnicodeDecodeError:
        raise FuncError(f"{p} is not UTF-8 text; use filebase64()") from None


@function("filebase64", "filesystem", "Contents of a file, base64-encoded.")
def filebase64(p: Any) -> str:
    return base64.b64encode(_read(s(p))).decode()


@function("fileexists", "filesystem", "Whether a file exists (an error for a directory).")
def fileexists(p: Any) -> bool:
    path = Path(os.path.expanduser(s(p)))
    if path.is_dir():
        raise FuncError(f"{p} is a directory, not a file")
    return path.is_file()


@function("fileset", "filesystem", "Files under a directory matching a glob (with **), relative and sorted.")
def fileset(base: Any, pattern: Any) -> list[str]:
    root = Path(os.path.expanduser(s(base)))
    pat = s(pattern, 1)
    if not root.is_dir():
        return []
    rx = _glob_regex(pat)
    try:
        return sorted(rel for p in root.rglob("*")
                      if p.is_file() and rx.fullmatch(rel := p.relative_to(root).as_posix()))
    except OSError as exc:  # a folder or file under base that cannot be read (permissions, /proc)
        raise FuncError(f"cannot list {s(base)}: {exc.filename or ''}: {exc.strerror or exc}") from None


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """Doublestar globs as Terraform's fileset reads them: ** spans directories, * and ? do not."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.find("]", i)
            out.append(pattern[i:end + 1] if end > i else re.escape("["))
            i = end + 1 if end > i else i + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    try:
        return re.compile("".join(out))
    except re.error as exc:
        raise FuncError(f"invalid pattern {pattern!r}: {exc}", 1) from None


@function("templatefile", "filesystem", "Renders a file as a string template with the given variables.",
          needs_context=True)
def templatefile(ev: Any, p: Any, variables: Any) -> Any:
    from factory.template.parse import remember
    from factory.template.strings import scan_template

    path = s(p)
    if not isinstance(variables, dict):
        raise FuncError("the second argument must be an object of template variables", 1)
    try:
        text = _read(path).decode("utf-8")
    except UnicodeDecodeError:
        raise FuncError(f"{path} is not UTF-8 text") from None
    remember(path, text)
    # A new evaluator of the caller's own classes: the functions sit below the evaluator that calls them.
    scope = type(ev.scope)(path, {}, ev.scope.functions, f"templatefile({path})", False, {}, dict(variables))
    return type(ev)(scope).template(scan_template(text, path), None)
