"""The text of `factory inspect`, laid out exactly as `packer inspect` prints an HCL2 template.

Packer renders each value with its console formatter (hcl2template/repl) and then Go-quotes it (`%q`), so a list
shows as "[\\n  \\"a\\",\\n]". Sensitive variables print as "<sensitive>", unknown values as "<unknown>".
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from factory import secrets
from factory.template.model import Build, Listed, Project
from factory.template.types import Unknown, is_known


def render_inspect(project: Project, sensitive_locals: frozenset[str] = frozenset()) -> str:
    """Packer's inspect output for a loaded project (sensitive values masked)."""
    out = ["Packer Inspect: HCL2 mode\n\n", "> input-variables:\n\n"]
    # Values are masked (a password in a plain variable too); names of components are not, so a password
    # equal to a type name (vagrant) cannot garble the builds section.
    for name, var in sorted(project.variables.items()):
        out.append(f"var.{name}: {go_quote(secrets.mask(_printable(var.value, var.sensitive)))}\n")
    out.append("\n> local-variables:\n\n")
    for name, value in sorted(project.locals.items()):
        out.append(f"local.{name}: {go_quote(secrets.mask(_printable(value, name in sensitive_locals)))}\n")
    out.append("\n> builds:\n")
    for i, build in enumerate(project.builds):
        out.append(_build(build, i))
    return "".join(out) + "\n"


def _build(build: Build, index: int) -> str:
    out = [f"\n  > {build.name or f'<unnamed build {index}>'}:\n"]
    if build.description:
        out.append(f"\n  > Description: {build.description}\n")
    # As written (Packer lists every block, including sources and steps factory skips), else as loaded.
    listed = build.listed or Listed(tuple(s.full_name for s in build.sources),
                                    tuple(_named(p.type, p.name) for p in build.provisioners),
                                    tuple(tuple(_named(p.type, p.name) for p in c) for c in build.post_processors))
    out.append("\n    sources:\n")
    out += [f"\n      {s}\n" for s in listed.sources] or ["\n      <no source>\n"]
    out.append("\n    provisioners:\n\n")
    out += [f"      {p}\n" for p in listed.provisioners] or ["      <no provisioner>\n"]
    out.append("\n    post-processors:\n")
    if not listed.post_processors:
        out.append("\n      <no post-processor>\n")
    for i, chain in enumerate(listed.post_processors):
        out.append(f"\n      {i}:\n")
        out += [f"        {p}\n" for p in chain]
    return "".join(out)


def _named(type_: str, name: str) -> str:
    return f"{type_}.{name}" if name else type_


def _printable(value: Any, sensitive: bool) -> str:
    if sensitive:
        return secrets.MASK
    if isinstance(value, Unknown) or not is_known(value):
        return "<unknown>"
    return format_result(value)


def format_result(value: Any, nested: bool = False) -> str:
    """Packer's console formatter (repl.FormatResult): strings bare at the top, lists and maps indented."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_g(value)
    if isinstance(value, str):
        return go_quote(value) if nested else value
    if isinstance(value, list):
        body = "".join(_indent(format_result(v, True)) + ",\n" for v in value)
        return "[" + ("\n" if value else "") + body + "]"
    if isinstance(value, dict):
        body = "".join(_indent(f"{go_quote(k)} = {format_result(value[k], True)}") + "\n" for k in sorted(value))
        return "{" + ("\n" if value else "") + body + "}"
    return "<unknown-type>"


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.split("\n"))


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
               "\\": "\\\\", '"': '\\"'}


def go_quote(text: str) -> str:
    """Go's %q of a string."""
    out = []
    for ch in text:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        elif not ch.isprintable() and ch != " ":
            out.append(f"\\u{ord(ch):04x}" if ord(ch) <= 0xFFFF else f"\\U{ord(ch):08x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def go_g(f: float) -> str:
    """Go's %g (shortest representation; exponent form outside 1e-4 .. 1e6, as strconv does)."""
    sign, digits, exp = Decimal(repr(f)).as_tuple()
    if not isinstance(exp, int):   # inf / nan
        return repr(f).replace("inf", "+Inf").replace("nan", "NaN")
    nd, dp = len(digits), len(digits) + exp
    eprec = nd if 6 > nd >= dp else 6
    x = dp - 1
    prefix = "-" if sign else ""
    if x < -4 or x >= eprec:
        mant = str(digits[0]) + ("." + "".join(map(str, digits[1:])) if nd > 1 else "")
        return f"{prefix}{mant}e{'+' if x >= 0 else '-'}{abs(x):02d}"
    return prefix + format(abs(f), f".{max(nd - dp, 0)}f")
