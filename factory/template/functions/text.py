"""String functions."""

from __future__ import annotations

import re
from typing import Any

from factory.template.functions import FuncError, function
from factory.template.functions.printf import format_value
from factory.template.types import ConversionError, to_string


def s(value: Any, arg: int = 0) -> str:
    """The argument as a string (numbers and bools convert), or a FuncError naming it."""
    try:
        return to_string(value)
    except ConversionError as exc:
        raise FuncError(str(exc), arg) from None


@function("chomp", "string", "Removes newline characters at the end of a string.")
def chomp(x: Any) -> str:
    return re.sub(r"(\r\n|\n|\r)+\Z", "", s(x))


@function("format", "string", "Formats values with a printf-style spec (%s %d %f %q %v %#v %t %x ...).")
def format_(spec: Any, *args: Any) -> str:
    return format_value(s(spec), list(args))


@function("formatlist", "string", "Like format, over lists: returns one formatted string per element.")
def formatlist(spec: Any, *args: Any) -> list[str]:
    lengths = {len(a) for a in args if isinstance(a, list)}
    if len(lengths) > 1:
        raise FuncError("all list arguments must have the same length")
    n = lengths.pop() if lengths else 1
    return [format_value(s(spec), [a[i] if isinstance(a, list) else a for a in args]) for i in range(n)]


@function("indent", "string", "Adds spaces before every line but the first of a multi-line string.")
def indent(spaces: Any, text: Any) -> str:
    from factory.template.functions.numeric import num

    pad = " " * int(num(spaces))
    return s(text, 1).replace("\n", "\n" + pad)


@function("join", "string", "Concatenates the elements of lists with a separator.")
def join(sep: Any, *lists: Any) -> str:
    if not lists:
        raise FuncError("join needs at least one list")
    items: list[str] = []
    for i, lst in enumerate(lists, 1):
        if not isinstance(lst, list):
            raise FuncError("join needs lists after the separator", i)
        for v in lst:
            if v is None:
                raise FuncError("cannot join a null element", i)
            items.append(s(v, i))
    return s(sep).join(items)


@function("lower", "string", "Converts letters to lower case.")
def lower(x: Any) -> str:
    return s(x).lower()


@function("upper", "string", "Converts letters to upper case.")
def upper(x: Any) -> str:
    return s(x).upper()


@function("title", "string", "Upper-cases the first letter of each word.")
def title(x: Any) -> str:
    return re.sub(r"(?<![\w'])(\w)", lambda m: m.group(1).upper(), s(x))


@function("replace", "string", "Replaces every occurrence of a substring (literally; regex_replace takes a "
          "pattern).")
def replace(x: Any, search: Any, repl: Any) -> str:
    # Packer's replace is cty's stdlib.ReplaceFunc: unlike Terraform's, a "/.../" substring is not a regex.
    return s(x).replace(s(search, 1), s(repl, 2))


def _compile(pattern: str, arg: int) -> re.Pattern[str]:
    # RE2 named groups (?P<n>) are Python's too; \z is \Z.
    try:
        return re.compile(pattern.replace(r"\z", r"\Z"))
    except re.error as exc:
        raise FuncError(f"invalid regular expression: {exc}", arg) from None


def _go_repl(rep: str) -> str:
    """Go's $1 / ${name} replacement syntax as Python's \\g<1> / \\g<name>."""
    rep = rep.replace("\\", "\\\\")
    rep = re.sub(r"\$\{(\w+)\}", r"\\g<\1>", rep)
    return re.sub(r"\$(\d+)", r"\\g<\1>", rep)


@function("regex_replace", "string", "Replaces every match of a regular expression ($1 refers to groups).")
def regex_replace(x: Any, pattern: Any, repl: Any) -> str:
    return _compile(s(pattern, 1), 1).sub(_go_repl(s(repl, 2)), s(x))


def _match_value(m: re.Match[str]) -> Any:
    if m.re.groupindex:
        return {name: m.group(name) for name in m.re.groupindex}
    if m.re.groups:
        return list(m.groups())
    return m.group(0)


@function("regex", "string", "First match of a regex: the string, a list of groups or an object of named groups.")
def regex(pattern: Any, x: Any) -> Any:
    m = _compile(s(pattern), 0).search(s(x, 1))
    if m is None:
        raise FuncError("pattern did not match any part of the given string")
    return _match_value(m)


@function("regexall", "string", "All matches of a regex, as a list (see regex).")
def regexall(pattern: Any, x: Any) -> list[Any]:
    return [_match_value(m) for m in _compile(s(pattern), 0).finditer(s(x, 1))]


@function("split", "string", "Splits a string at every occurrence of a separator.")
def split(sep: Any, x: Any) -> list[str]:
    text = s(x, 1)
    # Go's strings.Split: an empty separator splits into characters (none for "").
    return (text.split(s(sep)) if s(sep) else list(text))


@function("strrev", "string", "Reverses a string (by Unicode character).")
def strrev(x: Any) -> str:
    return s(x)[::-1]


@function("substr", "string", "Substring by offset and length (-1 length means to the end).")
def substr(x: Any, offset: Any, length: Any) -> str:
    from factory.template.functions.numeric import num

    text, off, n = s(x), int(num(offset, 1)), int(num(length, 2))
    if off < 0:
        off = max(len(text) + off, 0)
    if off > len(text):
        raise FuncError("offset is beyond the end of the string", 1)
    return text[off:] if n < 0 else text[off:off + n]


@function("trim", "string", "Removes the given characters from both ends of a string.")
def trim(x: Any, chars: Any) -> str:
    return s(x).strip(s(chars, 1))


@function("trimprefix", "string", "Removes a prefix if present.")
def trimprefix(x: Any, prefix: Any) -> str:
    return s(x).removeprefix(s(prefix, 1))


@function("trimsuffix", "string", "Removes a suffix if present.")
def trimsuffix(x: Any, suffix: Any) -> str:
    return s(x).removesuffix(s(suffix, 1))


@function("trimspace", "string", "Removes whitespace from both ends of a string.")
def trimspace(x: Any) -> str:
    return s(x).strip()


@function("startswith", "string", "Whether a string starts with a prefix.")
def startswith(x: Any, prefix: Any) -> bool:
    return s(x).startswith(s(prefix, 1))


@function("endswith", "string", "Whether a string ends with a suffix.")
def endswith(x: Any, suffix: Any) -> bool:
    return s(x).endswith(s(suffix, 1))


@function("strcontains", "string", "Whether a string contains a substring.")
def strcontains(x: Any, sub: Any) -> bool:
    return s(sub, 1) in s(x)
