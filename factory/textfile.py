"""Reading the text files users hand to factory (templates, var files, catalog entries): UTF-8 or a located error.

A file that is not UTF-8, holds a NUL byte or nests brackets deeper than any real template is refused here with
its file:line:column and a hint, before a parser can crash on it (RecursionError, UnicodeDecodeError).
"""

from __future__ import annotations

import re
from pathlib import Path

from factory.errors import FactoryError, Location

# Larger than any real template or var file by two orders of magnitude; a bigger file is a mistake (an ISO or a
# log passed by accident) and would only make the parser crawl.
MAX_TEXT_BYTES = 16 * 2**20
# Deepest bracket nesting accepted: real templates stay under ~10; Python's recursion limit is reached near 300.
MAX_NESTING = 100
_BRACKETS = re.compile(r"[{}\[\]()]")


def read_text(path: Path, what: str) -> str:
    """The UTF-8 text of a user's file, or a FactoryError naming where it went wrong."""
    try:
        size = path.stat().st_size
        if size > MAX_TEXT_BYTES:
            raise FactoryError(f"{what} {path} is {size // 2**20} MiB, too large for a {what}",
                               hint=f"a {what} is text of at most {MAX_TEXT_BYTES // 2**20} MiB; check the path")
        data = path.read_bytes()
    except OSError as exc:
        raise FactoryError(f"cannot read {what} {path}: {exc.strerror or exc}",
                           hint=f"check the {what} path") from None
    return decode_text(data, str(path), what)


def decode_text(data: bytes, file: str, what: str) -> str:
    """bytes -> str, refusing invalid UTF-8 and NUL bytes at their line:column."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _line_col(data, exc.start)
        shown = data.split(b"\n")[line - 1].decode("utf-8", "replace")[:200]
        raise FactoryError(f"{what} is not valid UTF-8: byte 0x{data[exc.start]:02x} cannot be decoded",
                           hint="save the file as UTF-8 (a Latin-1 file converts with `iconv -f latin1 -t utf-8`)",
                           where=Location(file, line, col, "", shown.rstrip())) from None
    nul = text.find("\0")
    if nul >= 0:
        line, col = _line_col(text, nul)
        raise FactoryError(f"{what} holds a NUL byte (a binary file?)", hint="a text file never holds NUL bytes",
                           where=Location(file, line, col, "", text.split("\n")[line - 1][:200].replace("\0", "\\0")))
    return text


def check_nesting(text: str, file: str, what: str = "template") -> None:
    """Refuse brackets nested deeper than MAX_NESTING, at the first one too deep (parsers recurse per level).

    Brackets inside strings count too: a string holding 100 unclosed brackets is as unlikely as real nesting."""
    if sum(text.count(c) for c in "{[(") <= MAX_NESTING:
        return
    depth = 0
    for m in _BRACKETS.finditer(text):
        depth = depth + 1 if m.group() in "{[(" else max(depth - 1, 0)
        if depth > MAX_NESTING:
            line, col = _line_col(text, m.start())
            shown = text.split("\n")[line - 1]
            raise FactoryError(f"{what} nests blocks or brackets more than {MAX_NESTING} levels deep",
                               hint="flatten the expression (locals can hold intermediate values)",
                               where=Location(file, line, col, "", shown[:200]))


def _line_col(data: str | bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of offset."""
    if isinstance(data, bytes):
        start = data.rfind(b"\n", 0, offset) + 1
        return data.count(b"\n", 0, offset) + 1, len(data[start:offset].decode("utf-8", "replace")) + 1
    return data.count("\n", 0, offset) + 1, offset - (data.rfind("\n", 0, offset) + 1) + 1
