"""Value syntaxes shared by option declarations: Go durations, disk sizes, enumerated choices.

Declare `boot_wait: Duration = opt("10s", ...)` and the config holds seconds (a float) that still prints as the
user wrote it (`config.boot_wait.text == "10s"`), so messages can quote the text and the code reads a number.
`SizeMiB` does the same for disk sizes (whole MiB). `check(config)` lets the template layer reject a malformed
value at validate time, before a VM is started: it applies each option's `choices=`, `minimum=`, `maximum=` and
`check=` (factory.options.opt) and the class-level rules below.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

from factory.errors import FactoryError
from factory.options import OptionInfo, OptionValue, options_of, suggest

# Go's time.ParseDuration units, in seconds. "µs" is U+00B5, "μs" U+03BC; Go accepts both.
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_HINT = "use Go duration syntax: a number with a unit, e.g. 300ms, 10s, 5m, 1h30m (units ns us ms s m h)"


def parse_duration(text: str, *, what: str = "duration") -> float:
    """Seconds in a Go duration string ("5m", "1h30m", "100ms", "-1s", "0"); FactoryError if malformed."""
    if isinstance(text, bool) or not isinstance(text, str):
        raise FactoryError(f"invalid {what} {text!r}: expected a string such as \"5m\"", hint=_DURATION_HINT)
    raw = text.strip()
    body = raw.lstrip("+-")
    sign = -1.0 if raw.startswith("-") else 1.0
    if len(raw) - len(body) > 1:
        raise FactoryError(f"invalid {what} {text!r}: more than one sign", hint=_DURATION_HINT)
    if body == "0":  # Go's one unitless exception
        return 0.0
    if not body:
        raise FactoryError(f"invalid {what} {text!r}: empty", hint=_DURATION_HINT)
    total, pos = 0.0, 0
    for match in _DURATION_PART.finditer(body):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(body):
        hint = _DURATION_HINT
        if re.fullmatch(r"\d+(\.\d*)?", body):
            hint = f"a duration needs a unit: write \"{body}s\" for seconds or \"{body}m\" for minutes"
        raise FactoryError(f"invalid {what} {text!r}", hint=hint)
    return sign * total


# qemu-img's size suffixes (binary multiples); Packer passes disk_size to qemu-img, so we read it the same way.
_SIZE_UNITS_MIB = {"": 1.0, "b": 1 / 1024 / 1024, "k": 1 / 1024, "m": 1.0, "g": 1024.0, "t": 1024.0**2,
                   "p": 1024.0**3, "e": 1024.0**4}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(?:([kmgtpe])(?:i?b)?|(b)?)", re.IGNORECASE)
_MAX_SIZE_MIB = 8 * 1024.0**4   # 8 EiB: qemu-img's limit (sizes are signed 64-bit byte counts)
_SIZE_HINT = "a number of MiB (2048) or a number with a unit: 512M, 40G, 1T (K M G T are binary multiples)"


def parse_size_mib(text: str | int, *, what: str = "size") -> int:
    """Whole MiB in a disk size ("40960M", "40G", "2048" = MiB, "1.5G"); rounded up; FactoryError if malformed."""
    if isinstance(text, bool):
        raise FactoryError(f"invalid {what} {text!r}", hint=_SIZE_HINT)
    if isinstance(text, int):
        mib = float(text)
    elif isinstance(text, str) and (match := _SIZE.fullmatch(text.strip())):
        number, unit, byte = match.groups()
        mib = float(number) * _SIZE_UNITS_MIB[(unit or byte or "").lower()]
    else:
        raise FactoryError(f"invalid {what} {text!r}", hint=_SIZE_HINT)
    if mib <= 0:
        raise FactoryError(f"invalid {what} {text!r}: must be larger than zero", hint=_SIZE_HINT)
    if not mib <= _MAX_SIZE_MIB:   # also catches inf, from a number with hundreds of digits
        raise FactoryError(f"invalid {what} {str(text)[:40]!r}: larger than 8 EiB, the most a disk image holds",
                           hint=_SIZE_HINT)
    return math.ceil(mib)


class _Written(OptionValue):
    """A parsed number that remembers the text it was parsed from (`.text`, for messages). It formats and prints
    as the number it is, so `f"{size}M"` and `str(seconds)` mean what they always did."""

    text: str

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.text!r})"


_W = TypeVar("_W", bound=_Written)


def _written(value: _W, raw: Any) -> _W:
    value.text = str(raw).strip()
    return value


class Duration(float, _Written):
    """Seconds, written as a Go duration ("10s", "1h30m", "-1s"); `.text` is the text as written."""

    label: ClassVar[str] = "duration"

    @classmethod
    def parse(cls, raw: Any, what: str = "duration") -> Duration:
        return raw if isinstance(raw, Duration) else _written(cls(parse_duration(raw, what=what)), raw)


class SizeMiB(int, _Written):
    """Whole MiB, written as a disk size ("40960M", "40G", or a bare number of MiB); `.text` is the text."""

    label: ClassVar[str] = "size"

    @classmethod
    def parse(cls, raw: Any, what: str = "size") -> SizeMiB:
        return raw if isinstance(raw, SizeMiB) else _written(cls(parse_size_mib(raw, what=what)), raw)


@dataclass(frozen=True)
class OptionProblem:
    """One malformed option value found by `check`; the template layer adds file:line and the block path."""

    option: str
    message: str
    hint: str | None = None
    also: tuple[str, ...] = ()   # other options the problem involves: located at the first one the user set


class Checked:
    """Mixin naming which string options are durations, sizes or closed choices, so `check` can validate them."""

    DURATIONS: ClassVar[frozenset[str]] = frozenset()
    SIZES: ClassVar[frozenset[str]] = frozenset()
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {}
    EXCLUSIVE: ClassVar[tuple[tuple[str, ...], ...]] = ()  # groups of options of which at most one may be set
    # Options with a structure of their own: the parser the engine uses, raising FactoryError on bad input.
    VALIDATORS: ClassVar[dict[str, Callable[[Any], object]]] = {}
    # (option, needs, hint): when option is set, needs must be set too.
    REQUIRES: ClassVar[tuple[tuple[str, str, str], ...]] = ()
    # (low, high) pairs of an inclusive range, e.g. ("http_port_min", "http_port_max"): low may not exceed high.
    ORDERED: ClassVar[tuple[tuple[str, str], ...]] = ()

    def problems(self) -> list[OptionProblem]:
        """Checks that span several options or look at the host (e.g. the file provisioner's sources)."""
        return []


# Values that mean "not set": a converted list option is a tuple, so () counts as well as [].
_UNSET: tuple[object, ...] = (None, [], (), {}, "")


def check(config: Any) -> list[OptionProblem]:
    """Every duration, size and choice option of `config` whose value does not parse (None means unset), every
    group of mutually exclusive options set together, and every option set without one it needs."""
    problems: list[OptionProblem] = []
    cls = type(config)
    for group in getattr(cls, "EXCLUSIVE", ()):
        given = [name for name in group if getattr(config, name) not in _UNSET]
        if len(given) > 1:
            problems.append(OptionProblem(given[1], f"{' and '.join(given)} cannot both be set",
                                          f"keep only one of {', '.join(group)}"))
    if isinstance(config, Checked):
        problems.extend(config.problems())
    for low, high in getattr(cls, "ORDERED", ()):
        lo, hi = getattr(config, low), getattr(config, high)
        if isinstance(lo, int | float) and isinstance(hi, int | float) and lo > hi:
            problems.append(OptionProblem(high, f"{low} {_num(lo)} is above {high} {_num(hi)}",
                                          f"set {low} <= {high} (the range includes both ends)", also=(low,)))
    for name, needs, hint in getattr(cls, "REQUIRES", ()):
        if getattr(config, name) not in (*_UNSET, False) and getattr(config, needs) in _UNSET:
            problems.append(OptionProblem(name, f"{name} needs {needs}", hint))
    for name, validate in sorted(getattr(cls, "VALIDATORS", {}).items()):
        value = getattr(config, name)
        if value not in _UNSET:
            try:
                validate(value)
            except FactoryError as exc:
                problems.append(OptionProblem(name, exc.message, exc.hint))
    for info in options_of(cls):
        problems.extend(_declared(info, getattr(config, info.name)))
    # The class-level name sets below predate typed declarations (Duration, SizeMiB, choices=); values that are
    # already typed were checked when they were converted.
    for name in sorted(getattr(cls, "DURATIONS", ())):
        value = getattr(config, name)
        if value is not None and not isinstance(value, Duration):
            try:
                parse_duration(value, what=name)
            except FactoryError as exc:
                problems.append(OptionProblem(name, exc.message, exc.hint))
    for name in sorted(getattr(cls, "SIZES", ())):
        values = getattr(config, name)
        for value in values if isinstance(values, list | tuple) else [values]:
            if value is not None and not isinstance(value, SizeMiB):
                try:
                    parse_size_mib(value, what=name)
                except FactoryError as exc:
                    problems.append(OptionProblem(name, exc.message, exc.hint))
    for name, allowed in sorted(getattr(cls, "CHOICES", {}).items()):
        value = getattr(config, name)
        if value is not None and value not in allowed:
            near = suggest(str(value), allowed)
            hint = f"did you mean {near!r}?" if near else "allowed: " + ", ".join(allowed)
            problems.append(OptionProblem(name, f"invalid {name} {value!r}; allowed: {', '.join(allowed)}", hint))
    return problems


def _declared(info: OptionInfo, value: Any) -> list[OptionProblem]:
    """The problems of one option's value against its declaration's choices=, minimum=, maximum= and check=."""
    if value is None:
        return []
    name = info.name
    if info.choices is not None and value not in info.choices:
        near = suggest(str(value), info.choices)
        hint = f"did you mean {near!r}?" if near else "allowed: " + ", ".join(info.choices)
        return [OptionProblem(name, f"invalid {name} {value!r}; allowed: {', '.join(info.choices)}", hint)]
    if isinstance(value, int | float) and not isinstance(value, bool):
        low, high = info.minimum, info.maximum
        unit = "s" if isinstance(value, Duration) else " MiB" if isinstance(value, SizeMiB) else ""
        if (low is not None and value < low) or (high is not None and value > high):
            span = (f"from {_num(low)}{unit} to {_num(high)}{unit}" if low is not None and high is not None else
                    f"at least {_num(low)}{unit}" if low is not None else f"at most {_num(high)}{unit}")
            shown = value.text if isinstance(value, _Written) else str(value)
            return [OptionProblem(name, f"invalid {name} {shown!r}: must be {span}", f"set {name} {span}")]
    if info.check is not None and value not in _UNSET:
        try:
            info.check(value)
        except FactoryError as exc:
            return [OptionProblem(name, exc.message, exc.hint)]
    return []


def _num(n: float | None) -> str:
    return str(int(n)) if n is not None and float(n).is_integer() else str(n)
