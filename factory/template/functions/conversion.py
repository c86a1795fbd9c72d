"""Type conversion functions, plus the special forms (try, can, convert, env) the evaluator handles itself."""

from __future__ import annotations

from typing import Any

from factory.template.functions import FuncError, function
from factory.template.types import ANY, BOOL, NUMBER, STRING, ConversionError, HType, convert


def _to(value: Any, t: HType) -> Any:
    try:
        return convert(value, t)
    except ConversionError as exc:
        raise FuncError(str(exc)) from None


@function("tobool", "conversion", "Converts to bool (\"true\"/\"false\" strings too).")
def tobool(x: Any) -> Any:
    return _to(x, BOOL)


@function("tonumber", "conversion", "Converts to number (numeric strings too).")
def tonumber(x: Any) -> Any:
    return _to(x, NUMBER)


@function("tostring", "conversion", "Converts a primitive to string.")
def tostring(x: Any) -> Any:
    return _to(x, STRING)


@function("tolist", "conversion", "Converts a tuple or set to a list (elements unified to one type).")
def tolist(x: Any) -> Any:
    return _to(x, HType("list", ANY))


@function("toset", "conversion", "Converts to a set: duplicates removed, sorted.")
def toset(x: Any) -> Any:
    return _to(x, HType("set", ANY))


@function("tomap", "conversion", "Converts an object to a map (values unified to one type).")
def tomap(x: Any) -> Any:
    return _to(x, HType("map", ANY))


def _special(name: str) -> Any:
    def impl(*_: Any) -> Any:
        raise FuncError(f"{name} is evaluated by the template engine")
    return impl


function("try", "conversion", "First argument that evaluates without error to a known value.")(_special("try"))
function("can", "conversion", "True if the argument evaluates without error to a known value.")(_special("can"))
function("convert", "conversion", "Converts a value to a type: convert(value, list(string)).")(_special("convert"))
function("env", "conversion", "An environment variable's value (only in variable defaults, as in Packer).")(
    _special("env"))
