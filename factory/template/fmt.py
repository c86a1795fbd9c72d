"""Canonical formatting of HCL templates: what `packer fmt` writes, byte for byte.

`packer fmt` is `hclwrite.Format(src)` (HashiCorp hcl, hclwrite/format.go). This is a port of it: the text is
lexed into hclsyntax's tokens (strings and heredocs split into their literal parts and `${ ... }` sequences, so
interpolations are spaced like other expressions), then only the spaces before each token are rewritten:
2-space indentation by net bracket count per line, spaceAfterToken's rules inside a line, and `=` / trailing
comments aligned across consecutive lines that have them. Line breaks, blank lines, comment text and literal
text are kept byte for byte, so formatting cannot change a template's meaning. The parser
(factory.template.parse) is used only to refuse invalid input, as Packer does before formatting.
"""

from __future__ import annotations

import difflib
import os
import re
import unicodedata
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from factory.errors import FactoryError, Location
from factory.fsutil import atomic_path


class Tok(StrEnum):
    """hclsyntax's token types, as far as formatting tells them apart."""
    NEWLINE = "newline"
    COMMENT = "comment"        # `#`/`//` comments carry their newline, as in hclsyntax; `/* */` do not
    NUMBER = "number"
    IDENT = "ident"
    PUNCT = "punct"            # operators and brackets; the text says which
    OQUOTE = "oquote"
    CQUOTE = "cquote"
    QLIT = "qlit"              # literal text inside a quoted string
    OHEREDOC = "oheredoc"      # `<<EOT` / `<<-EOT` and its newline
    SLIT = "slit"              # literal text inside a heredoc (through the end of its line)
    CHEREDOC = "cheredoc"      # the closing marker line, leading spaces included, without its newline
    TINTERP = "tinterp"        # `${` or `${~`
    TCONTROL = "tcontrol"      # `%{` or `%{~`
    TSEQEND = "tseqend"        # `}` or `~}` closing one of the two above


@dataclass(eq=False)
class Token:
    kind: Tok
    text: str
    line: int
    spaces: int = 0            # hclwrite's SpacesBefore: the only thing formatting changes

    @property
    def bracket(self) -> int:
        """hclwrite's tokenBracketChange: +1 opens, -1 closes (template sequences included)."""
        if self.kind in (Tok.TINTERP, Tok.TCONTROL):
            return 1
        if self.kind is Tok.TSEQEND:
            return -1
        if self.kind is not Tok.PUNCT:
            return 0
        return 1 if self.text in ("{", "[", "(") else -1 if self.text in ("}", "]", ")") else 0

    def punct(self, *texts: str) -> bool:
        return self.kind is Tok.PUNCT and self.text in texts

    @property
    def ends_line(self) -> bool:
        """hclwrite's tokenIsNewline: a newline, or a line comment (which consumed its newline)."""
        return self.kind is Tok.NEWLINE or (self.kind is Tok.COMMENT and self.text.endswith("\n"))


_PUNCT = ("...", "==", "!=", "<=", ">=", "&&", "||", "=>", "::", *"=+-*/%<>!?:.,()[]{}")
_IDENT = re.compile(r"[^\W\d][\w-]*")
_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?")
_HEREDOC = re.compile(r"<<(-?)([^\W\d][\w-]*)[ \t]*\r?\n")
_OPEN_TEMPLATE = re.compile(r"[$%]\{~?")


@dataclass
class _Frame:
    """One level of the lexer's mode stack: an expression brace, or a template sequence inside a string."""
    kind: str                  # "brace" | "interp"
    template: str = ""         # for "interp": the string mode to return to, "quoted" | "heredoc"


@dataclass
class _Heredoc:
    marker: str
    start_of_line: bool = True


class _Lexer:
    """hclsyntax's scanner, reduced to what formatting needs: token boundaries and types."""

    def __init__(self, text: str, file: str) -> None:
        self.text, self.file, self.pos, self.line, self.last_end = text, file, 0, 1, 0
        self.out: list[Token] = []
        self.stack: list[_Frame] = []
        self.heredocs: list[_Heredoc] = []
        self.mode = "expr"     # "expr" | "quoted" | "heredoc"
        self.string_line = 0

    def fail(self, message: str, line: int | None = None) -> FactoryError:
        line = line or self.line
        lines = self.text.splitlines()
        shown = lines[line - 1] if 0 < line <= len(lines) else ""
        return FactoryError(message, hint="fix the syntax, then run fmt again",
                            where=Location(self.file, line, 0, "", shown))

    def emit(self, kind: Tok, end: int) -> None:
        text = self.text[self.pos:end]
        self.out.append(Token(kind, text, self.line))
        self.line += text.count("\n")
        self.pos = self.last_end = end

    def run(self) -> tuple[list[Token], int]:
        """The tokens, and the count of blanks after the last one (hclwrite leaves them before EOF)."""
        steps = {"expr": self._expr, "quoted": self._quoted, "heredoc": self._heredoc}
        while self.pos < len(self.text):
            steps[self.mode]()
        if self.mode == "quoted":
            raise self.fail("unterminated string", self.string_line)
        if self.heredocs:
            marker = self.heredocs[-1].marker
            raise self.fail(f"heredoc <<{marker} is never closed (no line with just {marker})")
        return self.out, len(self.text) - self.last_end

    def _expr(self) -> None:
        text, pos = self.text, self.pos
        ch = text[pos]
        if ch in " \t" or (ch == "\r" and not text.startswith("\r\n", pos)):
            self.pos += 1
        elif ch == "\n" or text.startswith("\r\n", pos):
            self.emit(Tok.NEWLINE, pos + (1 if ch == "\n" else 2))
        elif ch == "#" or text.startswith("//", pos):
            end = text.find("\n", pos)
            self.emit(Tok.COMMENT, len(text) if end < 0 else end + 1)
        elif text.startswith("/*", pos):
            end = text.find("*/", pos + 2)
            if end < 0:
                raise self.fail("unterminated /* comment")
            self.emit(Tok.COMMENT, end + 2)
        elif ch == '"':
            self.string_line = self.line
            self.emit(Tok.OQUOTE, pos + 1)
            self.mode = "quoted"
        elif (heredoc := _HEREDOC.match(text, pos)) is not None:
            self.emit(Tok.OHEREDOC, heredoc.end())
            self.heredocs.append(_Heredoc(heredoc.group(2)))
            self.mode = "heredoc"
        else:
            self._brace_or_simple()

    def _brace_or_simple(self) -> None:
        text, pos = self.text, self.pos
        top = self.stack[-1] if self.stack else None
        if text[pos] == "{":
            self.stack.append(_Frame("brace"))
        elif text[pos] == "}" or text.startswith("~}", pos):
            if top is not None and top.kind == "interp":
                self.stack.pop()
                self.emit(Tok.TSEQEND, pos + (1 if text[pos] == "}" else 2))
                self.mode = top.template
                return
            if text[pos] == "~":
                raise self.fail("unexpected character '~'")
            if top is not None:
                self.stack.pop()
        for kind, pattern in ((Tok.NUMBER, _NUMBER), (Tok.IDENT, _IDENT)):
            if (m := pattern.match(text, pos)) is not None:
                self.emit(kind, m.end())
                return
        for punct in _PUNCT:
            if text.startswith(punct, pos):
                self.emit(Tok.PUNCT, pos + len(punct))
                return
        raise self.fail(f"unexpected character {text[pos]!r}")

    def _open_sequence(self, template: str) -> None:
        opener = _OPEN_TEMPLATE.match(self.text, self.pos)
        assert opener is not None
        self.emit(Tok.TINTERP if opener.group().startswith("$") else Tok.TCONTROL, opener.end())
        self.stack.append(_Frame("interp", template))
        self.mode = "expr"

    def _quoted(self) -> None:
        text, i = self.text, self.pos
        while i < len(text):
            if text[i] == "\\":
                i += 2
            elif text.startswith(("$${", "%%{"), i):
                i += 3
            elif text[i] == '"' or text[i] == "\n" or _OPEN_TEMPLATE.match(text, i):
                break
            else:
                i += 1
        if i > self.pos:
            self.emit(Tok.QLIT, min(i, len(text)))
        if i >= len(text) or text[i] == "\n":
            raise self.fail("unterminated string", self.string_line)
        if text[i] == '"':
            self.emit(Tok.CQUOTE, i + 1)
            self.mode = "expr"
        else:
            self._open_sequence("quoted")

    def _heredoc(self) -> None:
        text, doc = self.text, self.heredocs[-1]
        eol = text.find("\n", self.pos)
        eol = len(text) if eol < 0 else eol
        if doc.start_of_line and text[self.pos:eol].strip() == doc.marker:
            self.emit(Tok.CHEREDOC, eol - 1 if text[eol - 1:eol] == "\r" else eol)
            self.heredocs.pop()
            self.mode = "expr"
            return
        i = self.pos
        while i < eol and not (_OPEN_TEMPLATE.match(text, i) and not text.startswith(("$${", "%%{"), i)):
            i += 3 if text.startswith(("$${", "%%{"), i) else 1
        if i < eol:
            if i > self.pos:
                self.emit(Tok.SLIT, i)
            doc.start_of_line = False
            self._open_sequence("heredoc")
            return
        self.emit(Tok.SLIT, min(eol + 1, len(text)))
        doc.start_of_line = True


def tokenize(text: str, file: str = "<text>") -> list[Token]:
    """hclsyntax-like tokens of an HCL text; FactoryError (file:line) on an unterminated string/comment/heredoc."""
    return _Lexer(text, file).run()[0]


_NEGATION_BEFORE = {"(", "{", "[", "=", ":", ",", "?", "+", "*", "/", "%", "-", "==", "!=", ">", ">=", "<", "<=",
                    "&&", "||", "!"}
_TEMPLATE_TEXT = (Tok.QLIT, Tok.SLIT, Tok.OQUOTE, Tok.OHEREDOC)
_TEMPLATE_TEXT_AFTER = (Tok.QLIT, Tok.SLIT, Tok.CQUOTE, Tok.CHEREDOC)


def _space_after(subject: Token, before: Token | None, after: Token) -> bool:
    """hclwrite's spaceAfterToken, case for case and in its order."""
    s, a = subject, after
    if a.kind is Tok.NEWLINE:
        return False
    if s.kind is Tok.IDENT and a.punct("("):
        return False
    if (s.kind is Tok.IDENT and a.punct("::")) or (s.punct("::") and a.kind is Tok.IDENT):
        return False
    if s.punct(".") or a.punct("."):
        return False
    if a.punct(",", "..."):
        return False
    if s.punct(","):
        return True
    if s.kind in _TEMPLATE_TEXT or a.kind in _TEMPLATE_TEXT_AFTER:
        return False
    if s.kind is Tok.IDENT and s.text == "in" and before is not None and before.kind is Tok.IDENT:
        return True
    if a.punct("[") and (s.kind in (Tok.IDENT, Tok.NUMBER) or s.bracket < 0):
        return False
    if s.punct("!"):
        return False
    if s.punct("-"):
        return not (before is None or (before.kind is Tok.PUNCT and before.text in _NEGATION_BEFORE))
    if s.punct("{") or a.punct("}"):
        return not (s.punct("{") and a.punct("}"))
    if s.kind in (Tok.TINTERP, Tok.TCONTROL) and a.punct("{"):
        return True
    if s.punct("}") and a.kind is Tok.TSEQEND:
        return True
    if s.kind is Tok.TSEQEND and a.kind in (Tok.TINTERP, Tok.TCONTROL):
        return False
    return not (s.bracket > 0 or a.bracket < 0)


@dataclass
class _Line:
    lead: list[Token]
    assign: list[Token] = field(default_factory=list)
    comment: list[Token] = field(default_factory=list)


def _lines(tokens: list[Token]) -> list[_Line]:
    """hclwrite's linesForFormat: split after each newline, then cut off a trailing comment and `= value`."""
    lines, start = [], 0
    for i, tok in enumerate(tokens):
        if tok.ends_line:
            lines.append(_Line(tokens[start:i + 1]))
            start = i + 1
    lines.append(_Line(tokens[start:]))
    for line in lines:
        lead = line.lead
        if len(lead) > 1 and lead[-1].kind is Tok.COMMENT:
            line.comment, lead = lead[-1:], lead[:-1]
        for i, tok in enumerate(lead):
            if i > 0 and tok.punct("="):
                # a value that opens more brackets than it closes continues below: it does not align
                if sum(t.bracket for t in lead[i:]) == 0:
                    line.assign, lead = lead[i:], lead[:i]
                break
        line.lead = lead
    return lines


def _indent(lines: list[_Line]) -> None:
    """hclwrite's formatIndent: a line opening brackets indents what follows by one level, however many."""
    indents: list[int] = []
    for line in lines:
        if not line.lead:
            continue
        if line.lead[0].kind is Tok.NEWLINE:
            line.lead[0].spaces = 0
            continue
        net = 0
        for tok in line.lead:
            net += tok.bracket
            if tok.kind is Tok.OHEREDOC:
                break
        net += sum(t.bracket for t in line.assign)
        closed = -net
        while closed > 0 and indents:
            if closed < indents[-1]:
                indents[-1] -= closed
                closed = 0
            else:
                closed -= indents.pop()
        line.lead[0].spaces = 2 * len(indents)
        if net > 0:
            indents.append(net)


def _spaces(lines: list[_Line]) -> None:
    """hclwrite's formatSpaces: the space between neighbouring tokens of one cell."""
    for line in lines:
        if line.assign:
            line.assign[0].spaces = 1
        for cell in (line.lead, line.assign):
            for i in range(len(cell) - 1):
                cell[i + 1].spaces = int(_space_after(cell[i], cell[i - 1] if i else None, cell[i + 1]))


def _graphemes(text: str) -> int:
    """Columns a text takes, counted as grapheme clusters (combining marks, ZWJ sequences, flags), as hclwrite."""
    count = 0
    for i, ch in enumerate(text):
        if (i > 0 and text[i - 1] == "\u200d") or unicodedata.combining(ch) or ch in "\u200d\ufe0e\ufe0f":
            continue
        if 0x1F3FB <= ord(ch) <= 0x1F3FF or (ch == "\n" and text[i - 1:i] == "\r"):
            continue  # skin-tone modifiers; CRLF is one cluster
        if _regional(ch) and _flag_second(text, i):
            continue
        count += 1
    return count


def _regional(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF


def _flag_second(text: str, i: int) -> bool:
    """Whether the regional indicator at i closes a flag (an odd number of indicators precede it in a run)."""
    run = 0
    while i - run - 1 >= 0 and _regional(text[i - run - 1]):
        run += 1
    return run % 2 == 1


def _columns(tokens: list[Token]) -> int:
    return sum(t.spaces + _graphemes(t.text) for t in tokens)


def _align(lines: list[_Line], cell: str) -> None:
    """hclwrite's formatCells: pad the `=` (or the trailing comment) of consecutive lines into one column."""
    chain: list[_Line] = []
    for line in [*lines, _Line([])]:
        if getattr(line, cell):
            chain.append(line)
            continue
        width = max((_width(c, cell) for c in chain), default=0)
        for c in chain:
            getattr(c, cell)[0].spaces = width - _width(c, cell) + 1
        chain = []


def _width(line: _Line, cell: str) -> int:
    return _columns(line.lead) + (_columns(line.assign) if cell == "comment" else 0)


def format_text(text: str, file: str = "<text>") -> str:
    """What `packer fmt` makes of an HCL text; idempotent; FactoryError if the text does not parse."""
    tokens, trailing = _Lexer(text, file).run()  # first: its messages are more precise than Lark's
    check_syntax(text, file)
    lines = _lines(tokens)
    _indent(lines)
    _spaces(lines)
    _align(lines, "assign")
    _align(lines, "comment")
    return "".join(" " * t.spaces + t.text for t in tokens) + " " * trailing


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
            what = "neither a file nor a folder (a device or FIFO?)" if path.exists() else "no such file or directory"
            raise FactoryError(f"{path}: {what}", hint="give a template file or a folder")
    return found


def write_formatted(path: Path, text: str) -> None:
    """Replace path's content atomically, keeping its permissions (through a symlink: the link stays a link)."""
    path = path.resolve()
    mode = path.stat().st_mode & 0o7777
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
        os.chmod(tmp, mode)


def unified_diff(path: str, old: str, new: str) -> str:
    """The change fmt would make, as a unified diff (`-diff`)."""
    return "".join(difflib.unified_diff(old.splitlines(keepends=True), new.splitlines(keepends=True),
                                        fromfile=f"old/{path}", tofile=f"new/{path}"))
