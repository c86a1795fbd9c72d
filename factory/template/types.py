"""HCL values and types: how Python values stand for cty values, and HCL's type conversions.

Values are plain Python: str, int/float (number), bool, None (null), list (list, tuple and set), dict (map and
object). A value not known until a plugin factory lacks would compute it is an `Unknown`; every operation on it
yields it again, and only `try`/`can` absorb it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from factory.errors import FactoryError


class EvalError(FactoryError):
    """An expression failed to evaluate (try/can catch exactly these)."""


@dataclass(frozen=True)
class Unknown:
    """A value factory cannot know (e.g. an attribute of a data source from a plugin it does not implement)."""

    reason: str

    def __repr__(self) -> str:
        return f"<unknown: {self.reason}>"


class ConversionError(Exception):
    """A value does not fit a type; the message reads like HCL's ("a number is required")."""


@dataclass(frozen=True)
class HType:
    """An HCL type constraint: primitive, collection (list/set/map of elem), object, tuple or any."""

    kind: str
    elem: HType | None = None
    attrs: tuple[tuple[str, HType, bool], ...] = ()   # object: (name, type, optional)
    elems: tuple[HType, ...] = field(default=())        # tuple element types

    def __str__(self) -> str:
        if self.kind in ("list", "set", "map"):
            return f"{self.kind}({self.elem})"
        if self.kind == "object":
            inner = ", ".join(f"{n} = {'optional(' + str(t) + ')' if o else t}" for n, t, o in self.attrs)
            return f"object({{{inner}}})"
        if self.kind == "tuple":
            return f"tuple([{', '.join(str(e) for e in self.elems)}])"
        return self.kind


STRING = HType("string")
NUMBER = HType("number")
BOOL = HType("bool")
ANY = HType("any")


def is_known(value: Any) -> bool:
    """Whether a value holds no Unknown anywhere inside."""
    if isinstance(value, Unknown):
        return False
    if isinstance(value, list):
        return all(is_known(v) for v in value)
    if isinstance(value, dict):
        return all(is_known(v) for v in value.values())
    return True


def first_unknown(value: Any) -> Unknown | None:
    """The first Unknown inside a value (to explain why it is unknown)."""
    if isinstance(value, Unknown):
        return value
    items = value if isinstance(value, list) else value.values() if isinstance(value, dict) else ()
    for v in items:
        u = first_unknown(v)
        if u is not None:
            return u
    return None


def type_name(value: Any) -> str:
    """HCL's name for the type of a value, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "tuple"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, Unknown):
        return "unknown"
    return type(value).__name__


def norm_number(x: float | int) -> int | float:
    """HCL numbers are decimal: 4/2 is 2, not 2.0."""
    if isinstance(x, float) and x.is_integer() and abs(x) < 2**63:
        return int(x)
    return x


def format_number(x: int | float) -> str:
    """A number as HCL prints it: 2, 2.5, 1e+21 stays readable."""
    x = norm_number(x)
    if isinstance(x, int):
        return str(x)
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    return repr(x)


def to_number(value: Any) -> int | float:
    """HCL's conversion to number ("2" → 2); ConversionError otherwise."""
    if isinstance(value, bool) or value is None:
        raise ConversionError(f"a number is required, got {type_name(value)}")
    if isinstance(value, int | float):
        return norm_number(value)
    if isinstance(value, str):
        try:
            num = float(value.strip()) if any(c in value for c in ".eE") else int(value.strip(), 10)
        except ValueError:
            raise ConversionError(f'a number is required; "{value}" is not a number') from None
        return norm_number(num)
    raise ConversionError(f"a number is required, got {type_name(value)}")


def to_string(value: Any) -> str:
    """HCL's conversion of a primitive to string (true → "true", 2.5 → "2.5")."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return format_number(value)
    if value is None:
        raise ConversionError("a string is required, got null")
    raise ConversionError(f"a string is required, got {type_name(value)}")


def to_bool(value: Any) -> bool:
    """HCL's conversion to bool ("true"/"false" strings too)."""
    if isinstance(value, bool):
        return value
    if value == "true":
        return True
    if value == "false":
        return False
    raise ConversionError(f"a bool is required, got {type_name(value)}"
                          + (f' "{value}"' if isinstance(value, str) else ""))


def convert(value: Any, t: HType) -> Any:
    """Convert a value to a type constraint with HCL's rules, or raise ConversionError."""
    if value is None or isinstance(value, Unknown) or t.kind == "any":
        return value
    if t.kind == "string":
        return to_string(value)
    if t.kind == "number":
        return to_number(value)
    if t.kind == "bool":
        return to_bool(value)
    if t.kind in ("list", "set"):
        if not isinstance(value, list):
            raise ConversionError(f"{t} required, got {type_name(value)}")
        assert t.elem is not None
        items = [_convert_at(v, t.elem, f"[{i}]") for i, v in enumerate(value)]
        if t.elem.kind == "any":
            items = unify(items)
        return distinct_sorted(items) if t.kind == "set" else items
    if t.kind == "map":
        if not isinstance(value, dict):
            raise ConversionError(f"{t} required, got {type_name(value)}")
        assert t.elem is not None
        out = {k: _convert_at(v, t.elem, f"[{json.dumps(k)}]") for k, v in value.items()}
        if t.elem.kind == "any":
            out = dict(zip(out, unify(list(out.values())), strict=True))
        return out
    if t.kind == "object":
        return _convert_object(value, t)
    if t.kind == "tuple":
        if not isinstance(value, list) or len(value) != len(t.elems):
            raise ConversionError(f"a tuple of {len(t.elems)} elements is required, got {type_name(value)}")
        return [_convert_at(v, e, f"[{i}]") for i, (v, e) in enumerate(zip(value, t.elems, strict=True))]
    raise ConversionError(f"unsupported type {t}")


def _convert_object(value: Any, t: HType) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ConversionError(f"an object is required, got {type_name(value)}")
    out: dict[str, Any] = {}
    for name, at, optional in t.attrs:
        if name in value:
            out[name] = _convert_at(value[name], at, f".{name}")
        elif optional:
            out[name] = None
        else:
            raise ConversionError(f'attribute "{name}" is required')
    return out


def _convert_at(value: Any, t: HType, step: str) -> Any:
    try:
        return convert(value, t)
    except ConversionError as exc:
        msg = str(exc)
        raise ConversionError(f"element {step}: {msg}" if not msg.startswith("element ") else
                              f"element {step}{msg[len('element '):]}") from None


def unify(items: list[Any]) -> list[Any]:
    """Elements of a list(any) or map(any) share one type: mixed primitives become strings, as in cty."""
    kinds = {type_name(v) for v in items if v is not None and not isinstance(v, Unknown)}
    if len(kinds) <= 1:
        return items
    if kinds <= {"string", "number", "bool"}:
        return [None if v is None or isinstance(v, Unknown) else to_string(v) for v in items]
    raise ConversionError("all elements must have the same type")


def distinct_sorted(items: list[Any]) -> list[Any]:
    """A set's elements: duplicates dropped; strings and numbers in cty's order (sorted)."""
    out: list[Any] = []
    for v in items:
        if not any(equals(v, o) for o in out):
            out.append(v)
    if all(isinstance(v, str) for v in out) or all(isinstance(v, int | float) and not isinstance(v, bool)
                                                   for v in out):
        out.sort()
    return out


def equals(a: Any, b: Any) -> bool:
    """HCL equality: values of different types are never equal (1 != "1", true != 1)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return bool(a == b)
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(equals(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(equals(a[k], b[k]) for k in a)
    return bool(a == b)


def render(value: Any) -> str:
    """A value in HCL syntax (inspect output, error messages)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return format_number(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(render(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{_key(k)} = {render(v)}" for k, v in value.items()) + " }"
    if isinstance(value, Unknown):
        return "(unknown)"
    return str(value)


def _key(k: str) -> str:
    return k if k.replace("_", "a").replace("-", "a").isalnum() and not k[:1].isdigit() else json.dumps(k)
