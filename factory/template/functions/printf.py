"""The printf-style formatter behind format() and formatlist(), with cty's verbs."""

from __future__ import annotations

import json
import re
from typing import Any

from factory.template.functions import FuncError
from factory.template.types import ConversionError, format_number, to_bool, to_number, to_string

_VERB = re.compile(r"%([-+# 0]*)(?:\[(\d+)\])?(\d+|\*)?(?:\.(\d+))?([a-zA-Z%])")


def format_value(spec: str, args: list[Any]) -> str:
    """Apply a format spec; each verb consumes the next argument (or %[n] picks one)."""
    out: list[str] = []
    pos = 0
    nxt = 0
    for m in _VERB.finditer(spec):
        out.append(spec[pos:m.start()])
        pos = m.end()
        flags, index, width, prec, verb = m.groups()
        if verb == "%":
            out.append("%")
            continue
        if index:
            nxt = int(index) - 1
        if nxt >= len(args):
            raise FuncError(f"not enough arguments for format {spec!r}")
        value = args[nxt]
        nxt += 1
        out.append(_pad(_one(verb, flags, prec, value), flags, width))
    out.append(spec[pos:])
    if nxt < len(args) and not any(m.group(2) for m in _VERB.finditer(spec)):
        raise FuncError(f"too many arguments for format {spec!r}")
    return "".join(out)


def _pad(text: str, flags: str, width: str | None) -> str:
    if not width or width == "*":
        return text
    w = int(width)
    if "-" in flags:
        return text.ljust(w)
    if "0" in flags and text[:1] in "-+" and text[1:].replace(".", "").isdigit():
        return text[0] + text[1:].rjust(w - 1, "0")
    return text.rjust(w, "0" if "0" in flags else " ")


def _one(verb: str, flags: str, prec: str | None, value: Any) -> str:
    try:
        if verb == "v":
            if "#" in flags:
                return json.dumps(value, separators=(",", ":"), sort_keys=True)
            if isinstance(value, list | dict):
                return json.dumps(value, separators=(",", ":"), sort_keys=True)
            return "null" if value is None else to_string(value)
        if value is None:
            raise FuncError("cannot format a null value with %" + verb)
        if verb == "s":
            text = to_string(value)
            return text[:int(prec)] if prec else text
        if verb == "q":
            return json.dumps(to_string(value), ensure_ascii=False)
        if verb == "t":
            return "true" if to_bool(value) else "false"
        return _number(verb, flags, prec, to_number(value))
    except ConversionError as exc:
        raise FuncError(f"%{verb}: {exc}") from None


def _number(verb: str, flags: str, prec: str | None, n: int | float) -> str:
    sign = "+" if "+" in flags else " " if " " in flags else ""
    if verb in "dbo xX".replace(" ", ""):
        if not isinstance(n, int):
            raise FuncError(f"%{verb} needs a whole number, got {format_number(n)}")
        spec = {"d": "d", "b": "b", "o": "o", "x": "x", "X": "X"}[verb]
        return format(n, sign + spec)
    if verb in "eEfFgG":
        p = f".{prec}" if prec else (".6" if verb in "eEfF" else "")
        return format(float(n), sign + p + verb)
    raise FuncError(f"unsupported format verb %{verb}")
