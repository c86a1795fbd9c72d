"""Date and time functions (RFC 3339 timestamps, Go durations)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from factory.template.functions import FuncError, function
from factory.template.functions.text import s


def parse_rfc3339(text: str, arg: int = 0) -> datetime:
    """An RFC 3339 timestamp (with a zone) as an aware datetime, or a FuncError."""
    try:
        when = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise FuncError(f'"{text}" is not an RFC 3339 timestamp (like 2024-01-02T15:04:05Z)', arg) from None
    if when.tzinfo is None or "T" not in text.upper():
        raise FuncError(f'"{text}" is not an RFC 3339 timestamp (it needs a time and a zone)', arg)
    return when


def format_rfc3339(when: datetime) -> str:
    """An aware datetime as RFC 3339, "Z" for UTC, fractional seconds only when present."""
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


def _parts(when: datetime) -> dict[str, Any]:
    iso_year, iso_week, _ = when.isocalendar()
    return {"year": when.year, "year_day": when.timetuple().tm_yday, "month": when.month,
            "month_name": when.strftime("%B"), "day": when.day, "weekday": (when.weekday() + 1) % 7,
            "weekday_name": when.strftime("%A"), "hour": when.hour, "minute": when.minute, "second": when.second,
            "iso_year": iso_year, "iso_week": iso_week}


@function("rfc3339_parse", "datetime", "Date and time values (year, month, day, weekday, unix, iso_week ...) of "
          "an RFC 3339 timestamp.")
def rfc3339_parse(ts: Any) -> dict[str, Any]:
    text = s(ts)
    when = parse_rfc3339(text.replace(" ", "T", 1) if "T" not in text.upper() else text)
    return {**_parts(when), "unix": int(when.timestamp())}


@function("unix_timestamp_parse", "datetime", "Date and time values (in UTC, with rfc3339) of a Unix timestamp.")
def unix_timestamp_parse(seconds: Any) -> dict[str, Any]:
    from factory.template.functions.numeric import num

    n = num(seconds)
    if not isinstance(n, int):
        raise FuncError("a whole number of seconds is required", 0)
    when = datetime.fromtimestamp(n, UTC)
    return {**_parts(when), "rfc3339": format_rfc3339(when)}


# Go reference-time layout elements, longest first so "2006" wins over "2" and "January" over "Jan".
_GO_LAYOUT = [("January", "%B"), ("Monday", "%A"), ("2006", "%Y"), ("Z07:00", "Z07:00"), ("-07:00", "-07:00"),
              ("-0700", "%z"), ("Jan", "%b"), ("Mon", "%a"), ("MST", "%Z"), ("002", "%j"), ("06", "%y"),
              ("01", "%m"), ("02", "%d"), ("_2", "_2"), ("15", "%H"), ("03", "%I"), ("04", "%M"), ("05", "%S"),
              ("PM", "%p"), ("pm", "pm"), ("1", "1"), ("2", "2"), ("3", "3"), ("4", "4"), ("5", "5")]


def go_time_format(layout: str, when: datetime) -> str:
    """Format a time with a Go layout (reference time Mon Jan 2 15:04:05 MST 2006)."""
    out, i = [], 0
    while i < len(layout):
        for token, code in _GO_LAYOUT:
            if layout.startswith(token, i):
                out.append(_go_element(code, when))
                i += len(token)
                break
        else:
            out.append(layout[i])
            i += 1
    return "".join(out)


def _go_element(code: str, when: datetime) -> str:
    plain = {"1": str(when.month), "2": str(when.day), "3": str(when.hour % 12 or 12), "4": str(when.minute),
             "5": str(when.second), "_2": f"{when.day:2d}", "pm": when.strftime("%p").lower()}
    if code in plain:
        return plain[code]
    if code in ("Z07:00", "-07:00"):
        zone = _zone(when, "Z" if code == "Z07:00" else "ZZZZZ")
        return zone
    if code == "%Z":
        return when.tzname() or "UTC"
    return when.strftime(code)


@function("legacy_isotime", "datetime", "The current UTC time in a Go layout (Packer's legacy isotime).")
def legacy_isotime(layout: Any) -> str:
    return go_time_format(s(layout), datetime.now(UTC))


@function("legacy_strftime", "datetime", "The current UTC time in a C strftime format (Packer's legacy strftime).")
def legacy_strftime(fmt: Any) -> str:
    return datetime.now(UTC).strftime(s(fmt))
