"""String templates: quoted strings and heredocs as literal text, `${...}` interpolations and `%{...}` directives.

Quoted strings come pre-split by the grammar; heredoc bodies arrive as one token, so they are scanned here and
each embedded expression is parsed with the same grammar. Both end up as the same part list, which `assemble`
turns into a small tree (if/for nest) after applying `~` strip markers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import hcl2.api
from lark import Token, Tree
from lark.exceptions import UnexpectedInput

from factory.errors import FactoryError, Location
from factory.template.parse import position, source_line
from factory.textfile import check_nesting


@dataclass
class Lit:
    text: str


@dataclass
class Interp:
    expr: Any
    strip_left: bool = False
    strip_right: bool = False


@dataclass
class Directive:
    keyword: str                 # if, else, endif, for, endfor
    node: Any                    # for positions
    expr: Any = None
    names: tuple[str, ...] = ()
    strip_left: bool = False
    strip_right: bool = False


@dataclass
class If:
    cond: Any
    then: list[Any] = field(default_factory=list)
    else_: list[Any] = field(default_factory=list)


@dataclass
class For:
    names: tuple[str, ...]
    coll: Any
    body: list[Any] = field(default_factory=list)


_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|.)", re.S)
_SIMPLE = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\"}


class EscapeError(ValueError):
    """A \\u or \\U escape that names no Unicode character (the caller adds where it is)."""


def unescape(text: str) -> str:
    """Process a quoted string's backslash escapes (\\n \\t \\" \\\\ \\uNNNN \\UNNNNNNNN).

    A UTF-16 surrogate pair written as two \\u escapes (as JSON writes U+10000 and above) is one character; a lone
    surrogate or a value past U+10FFFF is an EscapeError, not a string that cannot be encoded later."""
    def sub(m: re.Match[str]) -> str:
        esc = m.group(1)
        if esc[0] in "uU" and len(esc) > 1:
            code = int(esc[1:], 16)
            if code > 0x10FFFF:
                raise EscapeError(f"invalid escape \\{esc}: past U+10FFFF, the last Unicode character")
            return chr(code)
        return _SIMPLE.get(esc, "\\" + esc)
    out = _ESCAPE.sub(sub, text)
    if not any(0xD800 <= ord(ch) <= 0xDFFF for ch in out):
        return out
    out = out.encode("utf-16", "surrogatepass").decode("utf-16", "surrogatepass")  # pairs become one character
    lone = next((ch for ch in out if 0xD800 <= ord(ch) <= 0xDFFF), None)
    if lone is not None:
        raise EscapeError(f"invalid escape \\u{ord(lone):04x}: a lone UTF-16 surrogate is not a Unicode character")
    return out


def quoted_parts(node: Any) -> list[Any]:
    """The parts of a `string` tree from the grammar."""
    parts: list[Any] = []
    for sp in node.children:
        if not isinstance(sp, Tree):
            continue
        inner = sp.children[0]
        if isinstance(inner, Token):
            text = str(inner)
            if inner.type in ("ESCAPED_INTERPOLATION", "ESCAPED_DIRECTIVE"):
                parts.append(Lit(text[1:]))
            else:
                parts.append(Lit(unescape(text)))
        elif inner.data == "interpolation":
            parts.append(Interp(_expr_child(inner)))
        else:
            parts.append(_directive(inner))
    return parts


def _expr_child(node: Any) -> Any:
    trees = [c for c in node.children if isinstance(c, Tree) and c.data not in ("new_line_or_comment",)]
    return trees[-1]


def _directive(node: Any) -> Directive:
    toks = [c for c in node.children if isinstance(c, Token)]
    keyword = node.data.replace("template_", "").replace("_start", "")
    strip_left = len(toks) > 1 and toks[1].type == "STRIP_MARKER"
    strip_right = len(toks) > 1 and toks[-2].type == "STRIP_MARKER"
    trees = [c for c in node.children if isinstance(c, Tree)]
    if keyword == "for":
        names = tuple(str(t.children[0]) for t in trees if t.data == "identifier")
        return Directive("for", node, trees[-1], names, strip_left, strip_right)
    if keyword == "if":
        return Directive("if", node, trees[-1], (), strip_left, strip_right)
    return Directive(keyword, node, None, (), strip_left, strip_right)


def heredoc_parts(token: Any, file: str) -> list[Any]:
    """Split a heredoc token into parts: body text (indent-trimmed for <<-), interpolations, directives."""
    raw = str(token)
    trim = raw.startswith("<<-")
    first_nl = raw.index("\n")
    body = raw[first_nl + 1:]
    body = body[:body.rstrip("\r\n").rfind("\n") + 1] if "\n" in body.rstrip("\r\n") else ""
    if trim:
        body = _dedent(body)
    return scan_template(body, file, token.line + 1, 1)


def _dedent(body: str) -> str:
    lines = body.split("\n")
    indents = [len(ln) - len(ln.lstrip(" \t")) for ln in lines if ln.strip()]
    cut = min(indents) if indents else 0
    return "\n".join(ln[cut:] for ln in lines)


def scan_template(text: str, file: str, line: int = 1, col: int = 1) -> list[Any]:
    """Split raw template text (a heredoc body or a templatefile) into parts; no backslash escapes apply."""
    parts: list[Any] = []
    lit: list[str] = []
    i = 0
    while i < len(text):
        two = text[i:i + 2]
        if text[i:i + 3] in ("$${", "%%{"):
            lit.append(text[i + 1:i + 3])
            i += 3
            continue
        if two in ("${", "%{"):
            end, part = _embedded(text, i, file, *_pos(text, i, line, col))
            if lit:
                parts.append(Lit("".join(lit)))
                lit = []
            parts.append(part)
            i = end
            continue
        lit.append(text[i])
        i += 1
    if lit:
        parts.append(Lit("".join(lit)))
    return parts


def _pos(text: str, i: int, line: int, col: int) -> tuple[int, int]:
    before = text[:i]
    nl = before.count("\n")
    return (line + nl, (col + len(before)) if nl == 0 else len(before) - before.rfind("\n"))


def _embedded(text: str, start: int, file: str, line: int, col: int) -> tuple[int, Any]:
    """Find the `}` closing the `${`/`%{` at start: the first one whose inner text parses."""
    is_directive = text[start] == "%"
    j = text.find("}", start + 2)
    last_error: FactoryError | None = None
    while j != -1:
        inner = text[start + 2:j]
        strip_left = inner.startswith("~")
        strip_right = inner.endswith("~")
        core = inner[1 if strip_left else 0:len(inner) - (1 if strip_right else 0)]
        try:
            part = _directive_text(core, file, line, col) if is_directive else Interp(
                parse_expression(core, file, line, col + 2 + int(strip_left)))
        except FactoryError as exc:
            last_error = exc
            j = text.find("}", j + 1)
            continue
        part.strip_left, part.strip_right = strip_left, strip_right
        return j + 1, part
    raise last_error or FactoryError("unclosed template sequence (missing \"}\")",
                                     where=Location(file, line, col, "", source_line(file, line)))


_DIRECTIVE = re.compile(r"\s*(if|else|endif|for|endfor)\b(.*)", re.S)
_FOR = re.compile(r"\s*([A-Za-z_][\w-]*)\s*(?:,\s*([A-Za-z_][\w-]*)\s*)?in\b(.*)", re.S)


def _directive_text(core: str, file: str, line: int, col: int) -> Directive:
    m = _DIRECTIVE.match(core)
    where = Location(file, line, col, "", source_line(file, line))
    if not m:
        raise FactoryError(f"invalid template directive %{{{core}}}", where=where,
                           hint="directives are %{ if COND }, %{ else }, %{ endif }, %{ for X in LIST }, %{ endfor }")
    keyword, rest = m.group(1), m.group(2)
    node = Token("DIRECTIVE_START", "%{", line=line, column=col)
    if keyword == "if":
        return Directive("if", node, parse_expression(rest, file, line, col + 2 + core.index(rest)))
    if keyword == "for":
        fm = _FOR.match(rest)
        if not fm:
            raise FactoryError("invalid %{ for } directive", where=where, hint="write %{ for item in LIST }")
        names = tuple(n for n in (fm.group(1), fm.group(2)) if n)
        return Directive("for", node, parse_expression(fm.group(3), file, line, col), names)
    if rest.strip():
        raise FactoryError(f"unexpected text after %{{ {keyword} }}", where=where)
    return Directive(keyword, node)


def parse_expression(text: str, file: str, line: int = 1, col: int = 1) -> Any:
    """Parse one HCL expression (e.g. from a -var value or a heredoc); positions are shifted to (line, col)."""
    prefix = "__x = (\n"
    check_nesting(text, file, "expression")
    try:
        tree = hcl2.api.parses_to_tree(prefix + text + "\n)")
    except RecursionError:
        raise FactoryError("expression nests too deeply to parse", where=Location(file, line, col)) from None
    except UnexpectedInput as exc:
        el, ec = max((getattr(exc, "line", 2) or 2) - 1, 1), getattr(exc, "column", 1) or 1
        at_line = line + el - 1
        raise FactoryError("invalid expression: " + (text.strip() or "(empty)"),
                           where=Location(file, at_line, (col + ec - 1) if el == 1 else ec,
                                          "", source_line(file, at_line))) from None
    attr = tree.children[0].children[0]
    expr = attr.children[2]
    _shift(expr, line, col)
    return expr


def _shift(node: Any, line: int, col: int) -> None:
    """Move positions from the synthetic wrapper (expression starts on its line 2) to the real place."""
    def fix(ln: int, cl: int) -> tuple[int, int]:
        return (line, col + cl - 1) if ln == 2 else (line + ln - 2, cl)

    if isinstance(node, Token):
        if node.line:
            node.line, node.column = fix(node.line, node.column or 1)
        return
    meta = node.meta
    if not getattr(meta, "empty", True):
        meta.line, meta.column = fix(meta.line, meta.column)
    for child in node.children:
        _shift(child, line, col)


def apply_strip(parts: list[Any]) -> list[Any]:
    """Honour `~`: trim the whitespace of the neighbouring literal text on that side."""
    out = [Lit(p.text) if isinstance(p, Lit) else p for p in parts]
    for i, p in enumerate(out):
        if isinstance(p, Lit):
            continue
        if getattr(p, "strip_left", False) and i > 0 and isinstance(out[i - 1], Lit):
            out[i - 1].text = out[i - 1].text.rstrip()
        if getattr(p, "strip_right", False) and i + 1 < len(out) and isinstance(out[i + 1], Lit):
            out[i + 1].text = out[i + 1].text.lstrip()
    return out


def assemble(parts: list[Any], file: str) -> list[Any]:
    """Nest if/else/endif and for/endfor directives; unbalanced ones are errors at their position."""
    root: list[Any] = []
    stack: list[tuple[Any, list[Any]]] = []   # (If/For node, the list being filled)
    current = root
    for p in apply_strip(parts):
        if not isinstance(p, Directive):
            current.append(p)
            continue
        if p.keyword == "if":
            node: Any = If(p.expr)
            current.append(node)
            stack.append((node, current))
            current = node.then
        elif p.keyword == "for":
            node = For(p.names, p.expr)
            current.append(node)
            stack.append((node, current))
            current = node.body
        elif p.keyword == "else" and stack and isinstance(stack[-1][0], If) and current is stack[-1][0].then:
            current = stack[-1][0].else_
        elif stack and p.keyword == ("endif" if isinstance(stack[-1][0], If) else "endfor"):
            current = stack.pop()[1]
        else:
            raise _unbalanced(f"unexpected %{{ {p.keyword} }}", p.node, file)
    if stack:
        opened = stack[-1][0]
        kind = "if" if isinstance(opened, If) else "for"
        raise _unbalanced(f"%{{ {kind} }} without a matching %{{ end{kind} }}",
                          opened.cond if isinstance(opened, If) else opened.coll, file)
    return root


def _unbalanced(message: str, node: Any, file: str) -> FactoryError:
    line, col = position(node)
    return FactoryError(message, where=Location(file, line, col, "", source_line(file, line)))
