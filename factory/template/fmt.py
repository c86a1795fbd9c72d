"""Canonical formatting of HCL templates, as `packer fmt` / `terraform fmt` do it.

Works on tokens, like HashiCorp's hclwrite: line breaks stay where the author put them; we only rewrite the
whitespace between tokens (2-space indentation by bracket nesting, one space around operators and inside
braces, none inside brackets and parentheses), align `=` across consecutive attribute lines of the same
indentation, align trailing comments, and collapse runs of blank lines. Comments, quoted strings (with their
`${...}` interpolations) and heredocs are kept byte for byte, so formatting cannot change a template's
meaning. python-hcl2's own reconstructor/formatter loses line breaks after comments and crashes on binary
operators (8.1.4), so the parser (factory.template.parse) is used only to check that the input is valid.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from factory.errors import FactoryError, Location
from factory.fsutil import atomic_path


class Tok(StrEnum):
    NEWLINE = "newline"
    COMMENT = "comment"
    STRING = "string"      # a whole quoted template, interpolations included
    HEREDOC = "heredoc"    # opener, body and closing marker line, verbatim
    NUMBER = "number"
    IDENT = "ident"
    PUNCT = "punct"


@dataclass(frozen=True)
class Token:
    kind: Tok
    text: str
    line: int

    @property
    def multiline(self) -> bool:
        return "\n" in self.text

    @property
    def bracket(self) -> int:
        """+1 for an opening bracket, -1 for a closing one, 0 otherwise."""
        if self.kind is not Tok.PUNCT:
            return 0
        return 1 if self.text in "{[(" else -1 if self.text in "}])" else 0


_PUNCT3 = ("...",)
_PUNCT2 = ("==", "!=", "<=", ">=", "&&", "||", "=>", "::")
_PUNCT1 = "=+-*/%<>!?:.,()[]{}"
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_HEREDOC = re.compile(r"<<(-?)([A-Za-z_][A-Za-z0-9_-]*)[ \t]*\r?\n")


class _Lexer:
    def __init__(self, text: str, file: str) -> None:
        self.text, self.file, self.pos, self.line = text, file, 0, 1

    def fail(self, message: str, line: int | None = None) -> FactoryError:
        line = line or self.line
        lines = self.text.splitlines()
        shown = lines[line - 1] if 0 < line <= len(lines) else ""
        return FactoryError(message, hint="fix the syntax, then run fmt again",
                            where=Location(self.file, line, 0, "", shown))

    def tokens(self) -> Iterator[Token]:
        text = self.text
        while self.pos < len(text):
            ch, start, line = text[self.pos], self.pos, self.line
            if ch in " \t\r":
                self.pos += 1
                continue
            if ch == "\n":
                self.pos += 1
                self.line += 1
                yield Token(Tok.NEWLINE, "\n", line)
                continue
            if ch == "#" or text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
                yield Token(Tok.COMMENT, text[start:self.pos].rstrip(" \t\r"), line)
                continue
            if text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    raise self.fail("unterminated /* comment")
                self._advance(end + 2)
                yield Token(Tok.COMMENT, text[start:self.pos], line)
                continue
            if ch == '"':
                self._advance(self._quoted_end(self.pos))
                yield Token(Tok.STRING, text[start:self.pos], line)
                continue
            if (heredoc := _HEREDOC.match(text, self.pos)) is not None:
                self._advance(self._heredoc_end(heredoc))
                yield Token(Tok.HEREDOC, text[start:self.pos].replace("\r\n", "\n"), line)
                continue
            yield self._simple(line)

    def _simple(self, line: int) -> Token:
        text, pos = self.text, self.pos
        for kind, pattern in ((Tok.NUMBER, _NUMBER), (Tok.IDENT, _IDENT)):
            if (m := pattern.match(text, pos)) is not None:
                self.pos = m.end()
                return Token(kind, m.group(), line)
        for width, table in ((3, _PUNCT3), (2, _PUNCT2)):
            if text[pos:pos + width] in table:
                self.pos += width
                return Token(Tok.PUNCT, text[pos:pos + width], line)
        if text[pos] in _PUNCT1:
            self.pos += 1
            return Token(Tok.PUNCT, text[pos], line)
        raise self.fail(f"unexpected character {text[pos]!r}")

    def _advance(self, end: int) -> None:
        self.line += self.text.count("\n", self.pos, end)
        self.pos = end

    def _quoted_end(self, pos: int) -> int:
        """Index just past the quoted template starting at `pos` (nested strings in `${...}` included)."""
        text, i = self.text, pos + 1
        while i < len(text):
            ch = text[i]
            if ch == "\\":
                i += 2
            elif ch == '"':
                return i + 1
            elif text.startswith(("$${", "%%{"), i):
                i += 3
            elif text.startswith(("${", "%{"), i):
                i = self._template_end(i + 2)
            elif ch == "\n":
                break
            else:
                i += 1
        raise self.fail("unterminated string", self.text.count("\n", 0, pos) + 1)

    def _template_end(self, i: int) -> int:
        """Index just past the `}` closing an interpolation or directive whose body starts at `i`."""
        text, depth = self.text, 1
        while i < len(text):
            ch = text[i]
            if ch == '"':
                i = self._quoted_end(i)
                continue
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
                if depth == 0:
                    return i + 1
            i += 1
        raise self.fail("unterminated ${ ... } in a string")

    def _heredoc_end(self, opener: re.Match[str]) -> int:
        """Index of the newline ending the heredoc's closing-marker line (or end of text)."""
        marker, i = opener.group(2), opener.end()
        while i < len(self.text):
            end = self.text.find("\n", i)
            end = len(self.text) if end < 0 else end
            if self.text[i:end].strip() == marker:
                return end
            i = end + 1
        raise self.fail(f"heredoc <<{marker} is never closed (no line with just {marker})")


def tokenize(text: str, file: str = "<text>") -> list[Token]:
    """The tokens of an HCL text; FactoryError (with file:line) on an unterminated string/comment/heredoc."""
    return list(_Lexer(text, file).tokens())


_UNARY_CONTEXT = {"(", "{", "[", "=", ":", ",", "?", "+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=",
                  "&&", "||", "!", "=>"}


def _space_between(before: Token | None, subject: Token, after: Token) -> bool:
    """hclwrite's spacing rules (format.go spaceAfterToken), for whole-string tokens."""
    s, a = subject.text, after.text
    sp, ap = subject.kind is Tok.PUNCT, after.kind is Tok.PUNCT
    if (subject.kind is Tok.IDENT and a == "(") or "::" in (s, a):
        return False
    if (sp and s == ".") or (ap and a in (".", ",", "...")):
        return False
    if sp and s == ",":
        return True
    if subject.kind is Tok.IDENT and s == "in" and before is not None and before.kind is Tok.IDENT:
        return True  # `for x in [a]`: keep `in` apart from a tuple constructor
    if ap and a == "[" and (subject.kind in (Tok.IDENT, Tok.NUMBER) or subject.bracket < 0):
        return False  # index: foo[0], f()[0], x[1][2]
    if sp and s == "-":
        return not (before is None or (before.kind is Tok.PUNCT and before.text in _UNARY_CONTEXT))
    if (sp and s == "{") or (ap and a == "}"):
        return not (s == "{" and a == "}")
    if subject.bracket > 0 or after.bracket < 0:
        return False
    return not (sp and s == "!")


def _render(tokens: list[Token], before: Token | None = None) -> str:
    """Tokens of one line joined with canonical spacing; `before` is the token preceding the first one."""
    out = tokens[0].text if tokens else ""
    for i in range(1, len(tokens)):
        prev = tokens[i - 2] if i >= 2 else before
        out += (" " if _space_between(prev, tokens[i - 1], tokens[i]) else "") + tokens[i].text
    return out


@dataclass
class _Line:
    lead: list[Token]          # everything before the first `=` (or the whole line)
    assign: list[Token]        # `= value...`, empty when the line assigns nothing
    comment: Token | None      # trailing comment after code
    indent: int = 0

    @property
    def multiline(self) -> bool:
        return any(t.multiline for t in (*self.lead, *self.assign, *([self.comment] if self.comment else [])))


def _lines(tokens: list[Token]) -> list[_Line | None]:
    """Split tokens into lines (None for a blank line) and cut each into lead / `= ...` / trailing comment."""
    out: list[_Line | None] = []
    current: list[Token] = []
    for tok in [*tokens, Token(Tok.NEWLINE, "\n", 0)]:
        if tok.kind is not Tok.NEWLINE:
            current.append(tok)
            continue
        if not current:
            out.append(None)
            continue
        comment = current.pop() if len(current) > 1 and current[-1].kind is Tok.COMMENT else None
        eq = next((i for i, t in enumerate(current) if t.kind is Tok.PUNCT and t.text == "=" and i > 0), None)
        # As hclwrite: only a value complete on its line is aligned; one that opens a bracket or a heredoc
        # (`x = [`, `y = <<EOT`) continues below, so the line stands apart from its neighbours.
        rest = current[eq:] if eq is not None else []
        if any(t.kind is Tok.HEREDOC for t in rest) or sum(t.bracket for t in rest) != 0:
            eq = None
        lead, assign = (current, []) if eq is None else (current[:eq], current[eq:])
        out.append(_Line(lead, assign, comment))
        current = []
    return out


def _indent(lines: list[_Line | None]) -> None:
    """Indent by bracket nesting; a line opening several brackets adds one level (hclwrite's formatIndent)."""
    stack: list[int] = []
    for line in lines:
        if line is None:
            continue
        net = sum(t.bracket for t in (*line.lead, *line.assign))
        closed = -net
        while closed > 0 and stack:
            top = stack.pop()
            if closed < top:
                stack.append(top - closed)
            closed -= min(closed, top)
        line.indent = 2 * len(stack)
        if net > 0:
            stack.append(net)


def _runs(lines: list[_Line | None], member: list[bool]) -> Iterator[list[int]]:
    """Maximal runs of consecutive member lines at one indentation; a multi-line token (heredoc, block
    comment) ends the run after its line, as heredoc bodies do in hclwrite."""
    run: list[int] = []
    for i, line in enumerate(lines):
        if line is None or not member[i] or (run and line.indent != lines[run[0]].indent):  # type: ignore[union-attr]
            if run:
                yield run
            run = []
        if line is not None and member[i]:
            run.append(i)
            if line.multiline:
                yield run
                run = []
    if run:
        yield run


def format_text(text: str, file: str = "<text>") -> str:
    """The canonical form of an HCL template; idempotent; FactoryError if the text does not parse."""
    tokens = tokenize(text.replace("\r\n", "\n"), file)  # first: its messages are more precise than Lark's
    check_syntax(text, file)
    lines = _lines(tokens)
    _indent(lines)
    heads = [" " * ln.indent + _render(ln.lead) if ln else "" for ln in lines]
    for run in _runs(lines, [bool(ln and ln.assign) for ln in lines]):
        width = max(len(heads[i]) for i in run)
        for i in run:
            line = lines[i]
            assert line is not None
            heads[i] = heads[i].ljust(width) + " " + _render(line.assign, line.lead[-1])
    for run in _runs(lines, [bool(ln and ln.comment) for ln in lines]):
        width = max(len(heads[i]) for i in run)
        for i in run:
            comment = lines[i].comment  # type: ignore[union-attr]
            assert comment is not None
            heads[i] = heads[i].ljust(width) + " " + comment.text
    out: list[str] = []
    for line, head in zip(lines, heads, strict=True):
        if line is None:
            if out and out[-1] != "":
                out.append("")  # runs of blank lines collapse to one; none at the top
            continue
        out.append(head.rstrip(" "))
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out) + "\n" if out else ""


def check_syntax(text: str, file: str) -> None:
    """Refuse text the template parser rejects (with its located message), so fmt never rewrites a broken file."""
    from factory.template.parse import parse_text

    parse_text(text, file)


TEMPLATE_SUFFIXES = (".pkr.hcl", ".pkrvars.hcl")


def template_files(paths: list[Path], *, recursive: bool = False) -> list[Path]:
    """Files fmt works on: files named explicitly, and *.pkr.hcl / *.pkrvars.hcl inside named directories."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            pattern = "**/*" if recursive else "*"
            found += sorted(p for p in path.glob(pattern) if p.is_file() and p.name.endswith(TEMPLATE_SUFFIXES))
        elif path.is_file():
            found.append(path)
        else:
            raise FactoryError(f"{path}: no such file or directory", hint="give a template file or a folder")
    return found


def write_formatted(path: Path, text: str) -> None:
    """Replace path's content atomically, keeping its permissions."""
    mode = path.stat().st_mode & 0o7777
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
        os.chmod(tmp, mode)


def unified_diff(path: str, old: str, new: str) -> str:
    """The change fmt would make, as a unified diff (`-diff`)."""
    return "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        fromfile=f"old/{path}", tofile=f"new/{path}"))
