"""Function calls: built-ins from the registry, the special forms try/can/convert/env, and type expressions."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from lark import Token, Tree

from factory.options import suggest
from factory.template.functions import FUNCTIONS, FuncError
from factory.template.parse import name_of
from factory.template.types import (
    ANY,
    BOOL,
    NUMBER,
    STRING,
    ConversionError,
    EvalError,
    HType,
    Unknown,
    convert,
    first_unknown,
)

if TYPE_CHECKING:
    from factory.template.expr import Evaluator


def call_function(ev: Evaluator, node: Any) -> Any:
    """Evaluate `name(args...)` at node."""
    name = name_of(node.children[0])
    if not ev.scope.functions:   # a variable file: constant values only, as in Packer
        raise ev.error(node, f'function calls are not allowed here ("{name}(...)")',
                       hint="a variable file holds constant values, as in Packer; compute derived values in a "
                            "locals block of the template")
    args_node = next((c for c in node.children if isinstance(c, Tree) and c.data == "arguments"), None)
    arg_nodes = [] if args_node is None else [c for c in args_node.children if isinstance(c, Tree)
                                              and c.data != "new_line_or_comment"]
    expand = args_node is not None and any(isinstance(c, Token) and c.type == "ELLIPSIS"
                                           for c in args_node.children)
    if name == "try":
        return _try(ev, node, arg_nodes)
    if name == "can":
        if len(arg_nodes) != 1:
            raise ev.error(node, "can() takes exactly one argument")
        try:
            value = ev.eval(arg_nodes[0])
        except EvalError:
            return False
        return first_unknown(value) is None
    if name == "convert":
        if len(arg_nodes) != 2:
            raise ev.error(node, "convert() takes a value and a type, e.g. convert(x, list(string))")
        value = ev.eval(arg_nodes[0])
        try:
            return convert(value, parse_type(arg_nodes[1], ev))
        except ConversionError as exc:
            raise ev.error(arg_nodes[0], f"convert: {exc}") from None
    if name == "env":
        return _env(ev, node, arg_nodes)
    fn = FUNCTIONS.get(name)
    if fn is None:
        close = suggest(name, FUNCTIONS)
        raise ev.error(node, f'call to unknown function "{name}"',
                       hint=f'did you mean "{close}"?' if close else "see the function list in docs/reference.md")
    args = [ev.plain(ev.eval(a), a) for a in arg_nodes]
    if expand:
        if not args or not isinstance(args[-1], list | Unknown):
            raise ev.error(arg_nodes[-1] if arg_nodes else node, "the argument before ... must be a list")
        if isinstance(args[-1], Unknown):
            return args[-1]
        args = args[:-1] + args[-1]
    for a in args:
        u = first_unknown(a)
        if u is not None:
            return u
    _check_arity(ev, node, fn.impl, len(args), name, fn.needs_context)
    try:
        return fn.impl(ev, *args) if fn.needs_context else fn.impl(*args)
    except FuncError as exc:
        at = arg_nodes[exc.arg] if exc.arg is not None and exc.arg < len(arg_nodes) else node
        raise ev.error(at, f"{name}(): {exc}") from None
    except ConversionError as exc:
        raise ev.error(node, f"{name}(): {exc}") from None
    except (ArithmeticError, ValueError, MemoryError) as exc:  # pow(10, 400), a 5000-digit number ...
        raise ev.error(node, f"{name}(): the result cannot be computed ({exc})",
                       hint="numbers are limited to what a 64-bit float holds (about 1.8e308)") from None


def _check_arity(ev: Evaluator, node: Any, impl: Any, n: int, name: str, ctx: bool) -> None:
    params = list(inspect.signature(impl).parameters.values())[1 if ctx else 0:]
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        need = len([p for p in params if p.kind is not p.VAR_POSITIONAL and p.default is p.empty])
        if n < need:
            raise ev.error(node, f"{name}() needs at least {need} argument(s), got {n}")
        return
    need = len([p for p in params if p.default is p.empty])
    if not need <= n <= len(params):
        raise ev.error(node, f"{name}() takes {need} argument(s), got {n}")


def _try(ev: Evaluator, node: Any, arg_nodes: list[Any]) -> Any:
    if not arg_nodes:
        raise ev.error(node, "try() needs at least one argument")
    last: EvalError | None = None
    unknown: Unknown | None = None
    for a in arg_nodes:
        try:
            value = ev.eval(a)
        except EvalError as exc:
            last = exc
            continue
        u = first_unknown(value)
        if u is None:
            return value
        unknown = u
    if last is None and unknown is not None:
        return unknown
    assert last is not None
    raise ev.error(node, f"no expression given to try() succeeded; the last one failed: {last.message}",
                   hint=last.hint)


def _env(ev: Evaluator, node: Any, arg_nodes: list[Any]) -> Any:
    if not ev.scope.allow_env:
        raise ev.error(node, "env() can only be used in a variable's default value, as in Packer",
                       hint='declare variable "x" { default = env("NAME") } and use var.x here')
    if len(arg_nodes) != 1:
        raise ev.error(node, "env() takes exactly one argument")
    key = ev.eval(arg_nodes[0])
    if not isinstance(key, str):
        raise ev.error(arg_nodes[0], "env() needs a string")
    return ev.scope.env.get(key, "")


_PRIMITIVES = {"string": STRING, "number": NUMBER, "bool": BOOL, "any": ANY}


def parse_type(node: Any, ev: Evaluator) -> HType:
    """Read a type constraint expression: string, list(string), object({ a = number }), tuple([...]) ..."""
    inner = node
    while isinstance(inner, Tree) and inner.data == "expr_term":
        inner = next(c for c in inner.children if isinstance(c, Tree) and c.data != "new_line_or_comment")
    if inner.data == "identifier":
        word = name_of(inner)
        if word in _PRIMITIVES:
            return _PRIMITIVES[word]
        if word in ("list", "set", "map"):
            return HType(word, ANY)
        raise ev.error(inner, f'unknown type "{word}"',
                       hint="types are string, number, bool, any, list(T), set(T), map(T), object({...}), "
                            "tuple([...])")
    if inner.data == "function_call":
        kind = name_of(inner.children[0])
        args_node = next((c for c in inner.children if isinstance(c, Tree) and c.data == "arguments"), None)
        args = [] if args_node is None else [c for c in args_node.children if isinstance(c, Tree)
                                             and c.data != "new_line_or_comment"]
        if kind in ("list", "set", "map") and len(args) == 1:
            return HType(kind, parse_type(args[0], ev))
        if kind == "object" and len(args) == 1:
            return HType("object", attrs=_object_attrs(args[0], ev))
        if kind == "tuple" and len(args) == 1:
            elems = _unwrap(args[0])
            if elems.data == "tuple":
                return HType("tuple", elems=tuple(parse_type(e, ev) for e in elems.children
                                                  if isinstance(e, Tree) and e.data != "new_line_or_comment"))
        raise ev.error(inner, f"invalid type constraint {kind}(...)")
    raise ev.error(node, "invalid type constraint",
                   hint="types are string, number, bool, any, list(T), set(T), map(T), object({...}), tuple([...])")


def _unwrap(node: Any) -> Any:
    while isinstance(node, Tree) and node.data == "expr_term":
        node = next(c for c in node.children if isinstance(c, Tree) and c.data != "new_line_or_comment")
    return node


def _object_attrs(node: Any, ev: Evaluator) -> tuple[tuple[str, HType, bool], ...]:
    obj = _unwrap(node)
    if obj.data != "object":
        raise ev.error(node, "object() needs an object of attribute types, e.g. object({ name = string })")
    out = []
    for elem in (c for c in obj.children if isinstance(c, Tree) and c.data == "object_elem"):
        key = name_of(_unwrap(elem.children[0].children[0]))
        tnode = _unwrap(elem.children[2])
        optional = tnode.data == "function_call" and name_of(tnode.children[0]) == "optional"
        if optional:
            args_node = next(c for c in tnode.children if isinstance(c, Tree) and c.data == "arguments")
            tnode = next(c for c in args_node.children if isinstance(c, Tree))
        out.append((key, parse_type(tnode, ev), optional))
    return tuple(out)
