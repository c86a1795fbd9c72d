"""Date and time functions (RFC 3339 timestamps, Go durations)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from factory.template.functions import FuncError, function
from factory.template.functions.text import s


def parse_rfc3339(text: str, arg: int = 0) -> datetime:
    try:
        when = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise FuncError(f'"{text}" is not an RFC 3339 timestamp (like 2024-01-02T15:04:05Z)', arg) from None
    if when.tzinfo is None or "T" not in text.upper():
        raise FuncError(f'"{text}" is not an RFC 3339 timestamp (it needs a time and a zone)', arg)
    return when


def format_rfc3339(when: datetime) -> str:
    text = when.isoformat()
    if when.microsecond == 0:
        text = when.replace(microsecond=0).isoformat()
    return text.replace("+00:00", "Z")


def parse_go_duration(text: str, arg: int = 1) -> float:
    """Seconds in a Go duration ("1h30m", "-10s", "1.5h"), parsed the way option durations are."""
    from factory.errors import FactoryError
    from factory.schema.types import parse_duration

    try:
        return parse_duration(text)
    except FactoryError as exc:
        raise FuncError(f'"{text}" is not a duration (like 1h30m, 10s, 500ms)', arg) from exc


@function("timestamp", "datetime", "The current UTC time in RFC 3339 (a new value on every run).")
def timestamp() -> str:
    return format_rfc3339(datetime.now(UTC).replace(microsecond=0))


@function("timeadd", "datetime", "Adds a Go duration (e.g. \"1h30m\", \"-10s\") to an RFC 3339 timestamp.")
def timeadd(ts: Any, duration: Any) -> str:
    when = parse_rfc3339(s(ts))
    return format_rfc3339(when + timedelta(seconds=parse_go_duration(s(duration, 1))))


_TOKENS = re.compile(r"'(?:[^']|'')*'|YYYY|YY|MMMM|MMM|MM|M|DD|D|EEEE|EEE|hh|h|HH|H|AA|aa|mm|m|ss|s|"
                     r"ZZZZZ|ZZZZ|ZZZ|Z|[A-Za-z]+|[^A-Za-z']+")


def _zone(when: datetime, style: str) -> str:
    off = when.utcoffset() or timedelta(0)
    mins = int(off.total_seconds() // 60)
    sign = "-" if mins < 0 else "+"
    hh, mm = divmod(abs(mins), 60)
    if style == "Z":
        return "Z" if mins == 0 else f"{sign}{hh:02d}:{mm:02d}"
    if style == "ZZZ" and mins == 0:
        return "UTC"
    if style in ("ZZZ", "ZZZZ"):   # a fixed offset has no abbreviation; cty prints it as -0800
        return f"{sign}{hh:02d}{mm:02d}"
    return f"{sign}{hh:02d}:{mm:02d}"


@function("formatdate", "datetime", "Formats an RFC 3339 timestamp with a spec such as \"YYYY-MM-DD hh:mm\".")
def formatdate(spec: Any, ts: Any) -> str:
    when = parse_rfc3339(s(ts, 1), 1)
    out = []
    for tok in _TOKENS.findall(s(spec)):
        hour12 = when.hour % 12 or 12
        table = {
            "YYYY": f"{when.year:04d}", "YY": f"{when.year % 100:02d}", "MMMM": when.strftime("%B"),
            "MMM": when.strftime("%b"), "MM": f"{when.month:02d}", "M": str(when.month),
            "DD": f"{when.day:02d}", "D": str(when.day), "EEEE": when.strftime("%A"), "EEE": when.strftime("%a"),
            "hh": f"{when.hour:02d}", "h": str(when.hour), "HH": f"{hour12:02d}", "H": str(hour12),
            "AA": "AM" if when.hour < 12 else "PM", "aa": "am" if when.hour < 12 else "pm",
            "mm": f"{when.minute:02d}", "m": str(when.minute), "ss": f"{when.second:02d}", "s": str(when.second),
        }
        if tok in table:
            out.append(table[tok])
        elif tok in ("ZZZZZ", "ZZZZ", "ZZZ", "Z"):
            out.append(_zone(when, tok))
        elif tok.startswith("'"):
            out.append(tok[1:-1].replace("''", "'"))
        elif tok[0].isalpha():
            raise FuncError(f'invalid date format token "{tok}" (quote literal letters with \'...\')', 0)
        else:
            out.append(tok)
    return "".join(out)
