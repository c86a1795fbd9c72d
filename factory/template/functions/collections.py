"""Collection functions (lists, sets, maps)."""

from __future__ import annotations

import itertools
from typing import Any

from factory.template.functions import FuncError, function
from factory.template.functions.numeric import num
from factory.template.types import ConversionError, distinct_sorted, equals, to_bool, to_string, type_name


def lst(value: Any, arg: int = 0, what: str = "a list") -> list[Any]:
    """The argument as a list, or a FuncError naming it."""
    if not isinstance(value, list):
        raise FuncError(f"{what} is required, got {type_name(value)}", arg)
    return value


def mapping(value: Any, arg: int = 0) -> dict[str, Any]:
    """The argument as a map/object, or a FuncError naming it."""
    if not isinstance(value, dict):
        raise FuncError(f"a map or object is required, got {type_name(value)}", arg)
    return value


def whole(value: Any, arg: int) -> int:
    """The argument as a whole number, or a FuncError naming it."""
    n = num(value, arg)
    if not isinstance(n, int):
        raise FuncError(f"a whole number is required, got {n}", arg)
    return n


@function("chunklist", "collection", "Splits a list into chunks of a given size.")
def chunklist(xs: Any, size: Any) -> list[Any]:
    items, n = lst(xs), whole(size, 1)
    if n < 0:
        raise FuncError("the chunk size must not be negative", 1)
    return [items] if n == 0 else [items[i:i + n] for i in range(0, len(items), n)]


@function("coalesce", "collection", "First argument that is neither null nor an empty string.")
def coalesce(*xs: Any) -> Any:
    for x in xs:
        if x is not None and x != "":
            return x
    raise FuncError("no non-null, non-empty-string arguments")


@function("coalescelist", "collection", "First argument that is a non-empty list.")
def coalescelist(*xs: Any) -> Any:
    for i, x in enumerate(xs):
        if lst(x, i):
            return x
    raise FuncError("no non-empty list arguments")


@function("compact", "collection", "Removes null and empty-string elements from a list of strings.")
def compact(xs: Any) -> list[Any]:
    return [x for x in lst(xs) if x is not None and x != ""]


@function("concat", "collection", "Joins lists into one.")
def concat(*xs: Any) -> list[Any]:
    return [v for i, x in enumerate(xs) for v in lst(x, i)]


@function("contains", "collection", "Whether a list or set contains a value.")
def contains(xs: Any, value: Any) -> bool:
    return any(equals(x, value) for x in lst(xs))


@function("distinct", "collection", "Removes duplicate elements, keeping the first occurrence.")
def distinct(xs: Any) -> list[Any]:
    out: list[Any] = []
    for x in lst(xs):
        if not any(equals(x, o) for o in out):
            out.append(x)
    return out


@function("element", "collection", "Element at an index, wrapping around (modulo the length).")
def element(xs: Any, index: Any) -> Any:
    items, i = lst(xs), whole(index, 1)
    if not items:
        raise FuncError("cannot use element() on an empty list")
    if i < 0:
        raise FuncError("the index must not be negative", 1)
    return items[i % len(items)]


@function("flatten", "collection", "Replaces nested lists with their elements, recursively.")
def flatten(xs: Any) -> list[Any]:
    out: list[Any] = []
    for x in lst(xs):
        out.extend(flatten(x) if isinstance(x, list) else [x])
    return out


@function("index", "collection", "Index of the first element equal to a value.")
def index(xs: Any, value: Any) -> int:
    for i, x in enumerate(lst(xs)):
        if equals(x, value):
            return i
    raise FuncError("the value is not in the list")


@function("keys", "collection", "Keys of a map or object, sorted.")
def keys(m: Any) -> list[str]:
    return sorted(mapping(m))


@function("values", "collection", "Values of a map or object, in key order.")
def values(m: Any) -> list[Any]:
    d = mapping(m)
    return [d[k] for k in sorted(d)]


@function("length", "collection", "Number of elements of a list, set or map, or characters of a string.")
def length(x: Any) -> int:
    if isinstance(x, str | list | dict):
        return len(x)
    raise FuncError(f"length needs a collection or string, got {type_name(x)}")


@function("lookup", "collection", "Value of a key in a map, or a default when the key is missing.")
def lookup(m: Any, key: Any, *default: Any) -> Any:
    d, k = mapping(m), to_string(key)
    if k in d:
        return d[k]
    if default:
        return default[0]
    raise FuncError(f'the map has no key "{k}" and no default was given', 1)


@function("merge", "collection", "Merges maps or objects; later arguments win.")
def merge(*ms: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, m in enumerate(ms):
        if m is not None:
            out.update(mapping(m, i))
    return out


@function("range", "collection", "List of numbers: range(limit), range(start, limit[, step]).")
def range_(*args: Any) -> list[Any]:
    if not 1 <= len(args) <= 3:
        raise FuncError("range takes 1 to 3 arguments")
    nums = [num(a, i) for i, a in enumerate(args)]
    start, limit, step = (0, nums[0], 1) if len(nums) == 1 else (nums[0], nums[1], nums[2] if len(nums) == 3 else
                                                                   (1 if nums[1] >= nums[0] else -1))
    if step == 0:
        raise FuncError("the step must not be zero")
    if (limit - start) * step < 0:
        raise FuncError("the step goes away from the limit")
    out: list[Any] = []
    v = start
    while (v < limit) if step > 0 else (v > limit):
        out.append(v)
        if len(out) > 1024:
            raise FuncError("more than 1024 values requested")
        v += step
    return out


@function("reverse", "collection", "The list in reverse order.")
def reverse(xs: Any) -> list[Any]:
    return list(reversed(lst(xs)))


@function("setintersection", "collection", "Elements present in every given set.")
def setintersection(first: Any, *rest: Any) -> list[Any]:
    items = distinct_sorted(lst(first, 0, "a set"))
    return [x for x in items if all(any(equals(x, y) for y in lst(r, i + 1, "a set")) for i, r in enumerate(rest))]


@function("setunion", "collection", "Elements present in any of the given sets.")
def setunion(*sets: Any) -> list[Any]:
    return distinct_sorted([x for i, xs in enumerate(sets) for x in lst(xs, i, "a set")])


@function("setproduct", "collection", "Cartesian product of the given sets or lists.")
def setproduct(*sets: Any) -> list[Any]:
    if len(sets) < 2:
        raise FuncError("setproduct needs at least two sets")
    return [list(p) for p in itertools.product(*[lst(s, i) for i, s in enumerate(sets)])]


@function("slice", "collection", "Consecutive elements from start (inclusive) to end (exclusive).")
def slice_(xs: Any, start: Any, end: Any) -> list[Any]:
    items, a, b = lst(xs), whole(start, 1), whole(end, 2)
    if a < 0 or b > len(items) or a > b:
        raise FuncError(f"slice indexes {a}..{b} are out of range for {len(items)} element(s)")
    return items[a:b]


@function("sort", "collection", "Strings sorted lexicographically.")
def sort(xs: Any) -> list[str]:
    items = lst(xs)
    try:
        return sorted(to_string(x) for x in items)
    except ConversionError as exc:
        raise FuncError(f"sort needs a list of strings: {exc}") from None


@function("zipmap", "collection", "Map from a list of keys and a list of values.")
def zipmap(ks: Any, vs: Any) -> dict[str, Any]:
    keys_, values_ = lst(ks), lst(vs, 1)
    if len(keys_) != len(values_):
        raise FuncError(f"{len(keys_)} keys but {len(values_)} values")
    return {to_string(k): v for k, v in zip(keys_, values_, strict=True)}


@function("alltrue", "collection", "Whether every element is true (true for an empty list).")
def alltrue(xs: Any) -> bool:
    try:
        return all(to_bool(x) for x in lst(xs))
    except ConversionError as exc:
        raise FuncError(str(exc)) from None


@function("anytrue", "collection", "Whether any element is true (false for an empty list).")
def anytrue(xs: Any) -> bool:
    try:
        return any(to_bool(x) for x in lst(xs))
    except ConversionError as exc:
        raise FuncError(str(exc)) from None
