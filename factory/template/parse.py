"""Parse HCL files with python-hcl2's Lark grammar into blocks and attributes that keep their positions.

The expression trees stay Lark trees (each node carries line/column); the evaluator walks them. Parse errors
from Lark are translated into a FactoryError at the offending position, never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2.api
from lark import Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from factory.errors import FactoryError, Location
from factory.textfile import check_nesting, read_text

_SOURCES: dict[str, list[str]] = {}


def remember(file: str, text: str) -> None:
    """Keep a file's lines so errors can show the offending one."""
    _SOURCES[file] = text.splitlines()


def source_line(file: str, line: int) -> str:
    """Line `line` (1-based) of a remembered file, for error displays."""
    lines = _SOURCES.get(file, [])
    return lines[line - 1].rstrip() if 0 < line <= len(lines) else ""


def locate(file: str, node: Any, block: str = "") -> Location:
    """The Location of a Lark node or token (0:0 when the node carries no position)."""
    line, col = position(node)
    return Location(file, line, col, block, source_line(file, line))


def position(node: Any) -> tuple[int, int]:
    """(line, column) of a Lark token or tree: its own, or its first positioned descendant's."""
    if isinstance(node, Token):
        return node.line or 0, node.column or 0
    if isinstance(node, Tree):
        meta = node.meta
        if not getattr(meta, "empty", True):
            return meta.line, meta.column
        for child in node.children:
            line, col = position(child)
            if line:
                return line, col
    return 0, 0


@dataclass(frozen=True)
class Attr:
    """`name = expression` with where it was written."""

    name: str
    expr: Any   # lark Tree
    file: str
    line: int
    column: int
    bound: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)  # dynamic block iterator

    def where(self, block: str) -> Location:
        return Location(self.file, self.line, self.column, block, source_line(self.file, self.line))


@dataclass(frozen=True)
class Block:
    """`type "label" ... { body }`."""

    type: str
    labels: tuple[str, ...]
    attrs: dict[str, Attr]
    blocks: tuple[Block, ...]
    file: str
    line: int
    column: int
    label_nodes: tuple[Any, ...] = field(default=(), repr=False)

    def where(self, block: str) -> Location:
        return Location(self.file, self.line, self.column, block, source_line(self.file, self.line))

    def children(self, type_: str) -> list[Block]:
        return [b for b in self.blocks if b.type == type_]


def parse_text(text: str, file: str) -> Block:
    """Parse HCL text into a root Block (type "") or raise a located FactoryError."""
    remember(file, text)
    check_nesting(text, file)
    try:
        tree = hcl2.api.parses_to_tree(text)
        errors: list[FactoryError] = []
        root, _ = _body(tree.children[0], file, "", (), 1, 1, errors)
    except UnexpectedInput as exc:
        raise _parse_error(exc, file, text) from None
    except RecursionError:  # check_nesting's limit is well below the parser's; this is the safety net
        raise FactoryError("template nests too deeply to parse", where=Location(file),
                           hint="flatten the nesting (locals can hold intermediate values)") from None
    if errors:
        _raise(errors)
    return root


def parse_file(path: Path, what: str = "template") -> Block:
    """Parse one HCL file (errors located in it)."""
    return parse_text(read_text(path, what), str(path))


def _raise(errors: list[FactoryError]) -> Block:
    if len(errors) == 1:
        raise errors[0]
    from factory.errors import FactoryErrors

    raise FactoryErrors(errors)


def _body(body: Any, file: str, type_: str, labels: tuple[str, ...], line: int, col: int,
          errors: list[FactoryError]) -> tuple[Block, list[FactoryError]]:
    attrs: dict[str, Attr] = {}
    blocks: list[Block] = []
    for child in body.children:
        if not isinstance(child, Tree):
            continue
        if child.data == "attribute":
            name = name_of(child.children[0])
            ln, cl = position(child)
            if name in attrs:
                errors.append(FactoryError(
                    f'attribute "{name}" is set twice in this block',
                    hint=f"the first one is at line {attrs[name].line}",
                    where=Location(file, ln, cl, "", source_line(file, ln))))
                continue
            attrs[name] = Attr(name, child.children[2], file, ln, cl)
        elif child.data == "block":
            blocks.append(_block(child, file, errors))
    return Block(type_, labels, attrs, tuple(blocks), file, line, col), errors


def _block(node: Any, file: str, errors: list[FactoryError]) -> Block:
    parts = [c for c in node.children if isinstance(c, Tree) and c.data != "new_line_or_comment"]
    body = parts[-1]
    names = parts[:-1]
    type_ = name_of(names[0])
    labels = tuple(name_of(n) for n in names[1:])
    line, col = position(node)
    blk, _ = _body(body, file, type_, labels, line, col, errors)
    return Block(blk.type, blk.labels, blk.attrs, blk.blocks, file, line, col, tuple(names[1:]))


def name_of(node: Any) -> str:
    """The text of an identifier, keyword, literal or plain quoted string used as a name or label."""
    if isinstance(node, Token):
        return str(node)
    if node.data == "string":
        return "".join(str(p.children[0]) for p in node.children if isinstance(p, Tree))
    return "".join(str(c) for c in node.children if isinstance(c, Token))


_EXPECTED = {
    "RBRACE": '"}"', "LBRACE": '"{"', "RSQB": '"]"', "LSQB": '"["', "RPAR": '")"', "LPAR": '"("', "EQ": '"="',
    "COLON": '":"', "COMMA": '","', "DBLQUOTE": "'\"'", "NAME": "a name", "NL_OR_COMMENT": "a newline",
    "QMARK": '"?"', "DOT": '"."',
}


_VALUE_START = {"INT_LITERAL", "FLOAT_LITERAL", "DBLQUOTE", "LSQB", "NAME", "LPAR"}


def _expected(terminals: set[str]) -> str:
    """What the parser wanted, in words: "a value", '"="', "end of file" ... (keywords and internals left out)."""
    words = set()
    if len(terminals & _VALUE_START) >= 3:
        words.add("a value")
        terminals -= _VALUE_START | {"MINUS", "NOT", "LBRACE", "TEMPLATE_STRING", "HEREDOC_TEMPLATE",
                                     "HEREDOC_TEMPLATE_TRIM"}
    for t in terminals:
        if t == "$END":
            words.add("end of file")
        elif t in _EXPECTED:
            words.add(_EXPECTED[t])
    return " or ".join(sorted(words)[:6])


def _parse_error(exc: UnexpectedInput, file: str, text: str) -> FactoryError:
    line, col = getattr(exc, "line", 0) or 0, getattr(exc, "column", 0) or 0
    if isinstance(exc, UnexpectedEOF) or line <= 0:
        lines = text.rstrip("\n").splitlines() or [""]
        line, col = len(lines), len(lines[-1]) + 1
        message = "unexpected end of file (an unclosed block, bracket or string?)"
    elif isinstance(exc, UnexpectedToken):
        tok = exc.token
        value = str(tok)
        if tok.type == "NL_OR_COMMENT" or value.startswith(("\n", "\r")):
            shown = "end of line"
        else:
            first = value.splitlines()[0] if value else tok.type
            shown = f'"{first[:24]}"'
        message = f"syntax error: unexpected {shown}"
        expected = _expected(set(exc.expected))
        if expected:
            message += f"; expected {expected}"
        if tok.type == "$END":
            message = "unexpected end of file (an unclosed block, bracket or string?)"
    elif isinstance(exc, UnexpectedCharacters):
        ch = text.splitlines()[line - 1][col - 1:col] if line <= len(text.splitlines()) else ""
        message = f"syntax error: unexpected character {ch!r}" if ch else "syntax error"
    else:
        message = "syntax error"
    remember(file, text)
    return FactoryError(message, hint="check the HCL syntax near the marked column",
                        where=Location(file, line, col, "", source_line(file, line)))
