"""Numeric functions."""

from __future__ import annotations

import math
from typing import Any

from factory.template.functions import FuncError, function
from factory.template.types import ConversionError, norm_number, to_number


def num(value: Any, arg: int = 0) -> int | float:
    """The argument as a number (numeric strings convert), or a FuncError naming it."""
    try:
        return to_number(value)
    except ConversionError as exc:
        raise FuncError(str(exc), arg) from None


@function("abs", "numeric", "Absolute value of a number.")
def abs_(x: Any) -> Any:
    return norm_number(abs(num(x)))


@function("ceil", "numeric", "Smallest whole number greater than or equal to the argument.")
def ceil(x: Any) -> Any:
    return math.ceil(num(x))


@function("floor", "numeric", "Largest whole number less than or equal to the argument.")
def floor(x: Any) -> Any:
    return math.floor(num(x))


@function("log", "numeric", "Logarithm of a number in a given base.")
def log(x: Any, base: Any) -> Any:
    n, b = num(x), num(base, 1)
    if n <= 0 or b <= 0 or b == 1:
        raise FuncError("log needs a positive number and a positive base other than 1")
    return norm_number(math.log(n, b))


@function("max", "numeric", "Greatest of the given numbers.")
def max_(*xs: Any) -> Any:
    if not xs:
        raise FuncError("max needs at least one number")
    return max(num(x, i) for i, x in enumerate(xs))


@function("min", "numeric", "Smallest of the given numbers.")
def min_(*xs: Any) -> Any:
    if not xs:
        raise FuncError("min needs at least one number")
    return min(num(x, i) for i, x in enumerate(xs))


@function("parseint", "numeric", "Parses a string as an integer in the given base (2-62).")
def parseint(s: Any, base: Any) -> Any:
    if not isinstance(s, str):
        raise FuncError("parseint needs a string", 0)
    b = num(base, 1)
    if not isinstance(b, int) or not 2 <= b <= 62:
        raise FuncError("base must be a whole number between 2 and 62", 1)
    digits = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    if b <= 36:
        digits = digits[:36]
    text, sign = (s[1:], -1) if s.startswith("-") else (s.lstrip("+"), 1)
    if not text:
        raise FuncError(f'cannot parse "{s}" as a base {b} integer', 0)
    value = 0
    for ch in text:
        d = digits.find(ch.lower() if b <= 36 else ch)
        if d < 0 or d >= b:
            raise FuncError(f'cannot parse "{s}" as a base {b} integer', 0)
        value = value * b + d
    return sign * value


@function("pow", "numeric", "First argument raised to the power of the second.")
def pow_(x: Any, y: Any) -> Any:
    return norm_number(math.pow(num(x), num(y, 1)))


@function("signum", "numeric", "-1, 0 or 1 according to the sign of a number.")
def signum(x: Any) -> Any:
    n = num(x)
    return (n > 0) - (n < 0)


@function("sum", "numeric", "Sum of a list or set of numbers.")
def sum_(xs: Any) -> Any:
    if not isinstance(xs, list):
        raise FuncError("sum needs a list or set of numbers")
    if not xs:
        raise FuncError("cannot sum an empty list")
    return norm_number(sum(num(x) for x in xs))
