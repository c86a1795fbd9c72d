"""The HCL expression evaluator: walks python-hcl2's Lark trees with a Scope of names and functions.

Every error carries the file:line:column of the node that failed and the block path the caller is evaluating.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from lark import Token, Tree

from factory.errors import FactoryError
from factory.options import suggest
from factory.template import strings
from factory.template.parse import locate, name_of
from factory.template.types import (
    ConversionError,
    Unknown,
    equals,
    is_known,
    norm_number,
    to_bool,
    to_number,
    to_string,
    type_name,
)
from factory.template.types import EvalError as EvalError  # defined below calls and expr; imported from here too


class Namespace:
    """A root name whose attributes resolve by name: `var`, `local` (lazily, in dependency order), `data` ..."""

    def __init__(self, label: str, entries: dict[str, Any] | None = None,
                 resolve: Callable[[str, Any], Any] | None = None, names: Iterable[str] = (),
                 what: str = "attribute") -> None:
        self.label = label
        self.entries = entries if entries is not None else {}
        self.resolve = resolve
        self.known = list(names) if resolve else list(self.entries)
        self.what = what

    def get(self, name: str, node: Any, ev: Evaluator) -> Any:
        if name in self.entries:
            return self.entries[name]
        if self.resolve is not None and name in self.known:
            return self.resolve(name, node)
        close = suggest(name, self.known)
        raise ev.error(node, f'reference to undeclared {self.what} "{self.label}.{name}"',
                       hint=f'did you mean "{self.label}.{close}"?' if close else
                       (f"declared: {', '.join(sorted(self.known))}" if self.known else None))


@dataclass
class Scope:
    """What names and functions an expression sees; `block` is the block path shown in errors."""

    file: str
    names: dict[str, Any]
    functions: dict[str, Any]
    block: str = ""
    allow_env: bool = False
    env: dict[str, str] = field(default_factory=dict)
    bound: dict[str, Any] = field(default_factory=dict)   # for-expression variables

    def with_block(self, block: str, file: str | None = None) -> Scope:
        return Scope(file or self.file, self.names, self.functions, block, self.allow_env, self.env, self.bound)

    def bind(self, extra: dict[str, Any]) -> Scope:
        return Scope(self.file, self.names, self.functions, self.block, self.allow_env, self.env,
                     {**self.bound, **extra})


def evaluate(node: Any, scope: Scope) -> Any:
    """Evaluate one expression tree."""
    ev = Evaluator(scope)
    try:
        return ev.plain(ev.eval(node), node)
    except RecursionError:  # the parser's nesting limit keeps this away; a safety net, not a path
        raise ev.error(node, "expression nests too deeply to evaluate",
                       hint="flatten it (locals can hold intermediate values)") from None


class Evaluator:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    def plain(self, value: Any, node: Any) -> Any:
        """A value as data: a bare `var` or `local` (a Namespace) becomes the object of its entries."""
        if isinstance(value, Namespace):
            return {name: self.plain(value.get(name, node, self), node) for name in value.known}
        return value

    def error(self, node: Any, message: str, hint: str | None = None) -> EvalError:
        return EvalError(message, hint=hint, where=locate(self.scope.file, node, self.scope.block))

    def eval(self, node: Any) -> Any:
        if isinstance(node, Token):
            raise self.error(node, f"unexpected token {node!s}")
        handler = getattr(self, "_" + node.data, None)
        if handler is None:
            raise self.error(node, f"unsupported expression ({node.data})")
        return handler(node)

    # -- terms -------------------------------------------------------------------------------------------------
    def _expr_term(self, node: Any) -> Any:
        trees = [c for c in node.children if isinstance(c, Tree) and c.data != "new_line_or_comment"]
        return self.eval(trees[0])

    def _int_lit(self, node: Any) -> Any:
        text = str(node.children[0])
        if len(text) > 400:  # beyond any float; Python refuses int() of >4300 digits anyway
            raise self.error(node, f"number literal of {len(text)} digits is too large",
                             hint="numbers are limited to what a 64-bit float holds (about 1.8e308)")
        return int(text)

    def _float_lit(self, node: Any) -> Any:
        return norm_number(float(str(node.children[0])))

    def _literal_value(self, node: Any) -> Any:
        return {"true": True, "false": False, "null": None}[str(node.children[0])]

    def _identifier(self, node: Any) -> Any:
        name = str(node.children[0])
        if name in self.scope.bound:
            return self.scope.bound[name]
        if name in self.scope.names:
            return self.scope.names[name]
        if name in ("source", "build") and "var" in self.scope.names:
            raise self.error(node, f"{name}.* is not available here",
                             hint=f"{name}.name and friends exist inside source, provisioner and post-processor "
                                  "blocks of a build, not in locals or variables")
        if name in _ROOTS:
            raise self.error(node, f'references to {name}. are not allowed here',
                             hint="variable defaults and var files take constant values (functions are fine), "
                                  "as in Packer; compute derived values in a locals block")
        candidates = [*self.scope.bound, *self.scope.names]
        close = suggest(name, candidates)
        raise self.error(node, f'unknown variable "{name}"',
                         hint=f'did you mean "{close}"?' if close else
                         'references start with var., local., source., build., path. or data.')

    def _tuple(self, node: Any) -> Any:
        return [self.eval(c) for c in _exprs(node)]

    def _object(self, node: Any) -> Any:
        out: dict[str, Any] = {}
        for elem in (c for c in node.children if isinstance(c, Tree) and c.data == "object_elem"):
            key_node = elem.children[0].children[0]
            key = self._object_key(key_node)
            if isinstance(key, Unknown):
                return key
            out[key] = self.eval(elem.children[2])
        return out

    def _object_key(self, key_node: Any) -> Any:
        # A bare name is a literal key ({ a = 1 }); anything else ("${x}", (var.k)) is evaluated.
        if isinstance(key_node, Tree) and key_node.data == "keyword":
            return name_of(key_node)
        if isinstance(key_node, Tree) and key_node.data == "expr_term":
            inner = key_node.children[0]
            if isinstance(inner, Tree) and inner.data in ("identifier", "keyword"):
                return name_of(inner)
        value = self.eval(key_node)
        if isinstance(value, Unknown):
            return value
        try:
            return to_string(value)
        except ConversionError as exc:
            raise self.error(key_node, f"invalid object key: {exc}") from None

    # -- strings -----------------------------------------------------------------------------------------------
    def _string(self, node: Any) -> Any:
        try:
            parts = strings.quoted_parts(node)
        except strings.EscapeError as exc:
            raise self.error(node, str(exc), hint="write the character itself, or \\UNNNNNNNN for U+10000 and "
                             "above") from None
        return self.template(parts, node)

    def _template_string(self, node: Any) -> Any:
        raw = str(node.children[0])
        try:
            return strings.unescape(raw[2:-2])
        except strings.EscapeError as exc:
            raise self.error(node, str(exc)) from None

    def _heredoc_template(self, node: Any) -> Any:
        return self.template(strings.heredoc_parts(node.children[0], self.scope.file), node)

    _heredoc_template_trim = _heredoc_template

    def template(self, parts: list[Any], node: Any) -> Any:
        """Render template parts; a lone `"${x}"` keeps x's type, as in HCL."""
        if len(parts) == 1 and isinstance(parts[0], strings.Interp):
            return self.eval(parts[0].expr)
        try:
            tree = strings.assemble(parts, self.scope.file)
        except FactoryError as exc:
            if isinstance(exc, EvalError):
                raise
            raise EvalError(exc.message, hint=exc.hint, where=exc.where and
                            dataclasses.replace(exc.where, block=self.scope.block)) from None
        out: list[str] = []
        unknown = self._render(tree, out)
        return unknown if unknown is not None else "".join(out)

    def _render(self, items: list[Any], out: list[str]) -> Unknown | None:
        for item in items:
            if isinstance(item, strings.Lit):
                out.append(item.text)
            elif isinstance(item, strings.Interp):
                value = self.eval(item.expr)
                if isinstance(value, Unknown):
                    return value
                out.append(self._stringify(value, item.expr))
            elif isinstance(item, strings.If):
                cond = self._as(to_bool, self.eval(item.cond), item.cond, "condition")
                if isinstance(cond, Unknown):
                    return cond
                unknown = self._render(item.then if cond else item.else_, out)
                if unknown is not None:
                    return unknown
            else:
                unknown = self._render_for(item, out)
                if unknown is not None:
                    return unknown
        return None

    def _render_for(self, item: strings.For, out: list[str]) -> Unknown | None:
        coll = self.eval(item.coll)
        if isinstance(coll, Unknown):
            return coll
        outer = self.scope
        try:
            for k, v in self._pairs(coll, item.coll):
                names = {item.names[0]: k, item.names[1]: v} if len(item.names) == 2 else {item.names[0]: v}
                self.scope = outer.bind(names)
                unknown = self._render(item.body, out)
                if unknown is not None:
                    return unknown
        finally:
            self.scope = outer
        return None

    def _stringify(self, value: Any, node: Any) -> str:
        if value is None:
            raise self.error(node, "invalid template interpolation value: the expression is null",
                             hint="use coalesce(x, \"\") or a conditional to give it a default")
        try:
            return to_string(value)
        except ConversionError:
            raise self.error(node, f"cannot include a {type_name(value)} in a string template",
                             hint="use join(), jsonencode() or an index to turn it into a string") from None

    # -- access ------------------------------------------------------------------------------------------------
    def _get_attr_expr_term(self, node: Any) -> Any:
        base = self.eval(node.children[0])
        attr_node = node.children[1]
        # Point at the whole reference (var.x, local.y.z), where the user reads it from.
        return self.attr(base, name_of(attr_node.children[-1]), node)

    def attr(self, base: Any, name: str, node: Any) -> Any:
        if isinstance(base, Namespace):
            return base.get(name, node, self)
        if isinstance(base, Unknown):
            return base
        if isinstance(base, dict):
            if name in base:
                return base[name]
            close = suggest(name, base)
            raise self.error(node, f'this object has no attribute "{name}"',
                             hint=f'did you mean "{close}"?' if close else
                             (f"attributes: {', '.join(sorted(base))}" if base else "the object is empty"))
        if isinstance(base, list) and name.isdigit():
            return self.index(base, int(name), node)
        if base is None:
            raise self.error(node, f'cannot access attribute "{name}" of a null value')
        raise self.error(node, f'cannot access attribute "{name}" of a {type_name(base)}',
                         hint="attributes exist on objects only")

    def _index_expr_term(self, node: Any) -> Any:
        base = self.eval(node.children[0])
        idx_node = node.children[1]
        if idx_node.data == "short_index":
            key: Any = int(str(idx_node.children[-1]))
        else:
            key = self.eval(_exprs(idx_node)[0])
        return self.index(base, key, idx_node)

    def index(self, base: Any, key: Any, node: Any) -> Any:
        if isinstance(base, Unknown) or isinstance(key, Unknown):
            return base if isinstance(base, Unknown) else key
        if isinstance(base, Namespace):
            return base.get(self._as(to_string, key, node, "key"), node, self)
        if isinstance(base, list):
            i = self._as(to_number, key, node, "index")
            if not isinstance(i, int):
                raise self.error(node, f"a list index must be a whole number, got {i}")
            if not 0 <= i < len(base):
                raise self.error(node, f"index {i} out of range for a list of {len(base)} element(s)")
            return base[i]
        if isinstance(base, dict):
            k = self._as(to_string, key, node, "key")
            if k not in base:
                close = suggest(k, base)
                raise self.error(node, f'the map has no element for key "{k}"',
                                 hint=f'did you mean "{close}"?' if close else None)
            return base[k]
        if base is None:
            raise self.error(node, "cannot index a null value")
        raise self.error(node, f"cannot index a {type_name(base)}")

    def _attr_splat_expr_term(self, node: Any) -> Any:
        base = self.eval(node.children[0])
        if isinstance(base, Unknown):
            return base
        items = [] if base is None else base if isinstance(base, list) else [base]
        ops = [c for c in node.children[1].children if isinstance(c, Tree)]
        return [self._apply_ops(item, ops) for item in items]

    _full_splat_expr_term = _attr_splat_expr_term

    def _apply_ops(self, value: Any, ops: list[Any]) -> Any:
        for op in ops:
            if op.data == "get_attr":
                value = self.attr(value, name_of(op.children[-1]), op)
            elif op.data == "short_index":
                value = self.index(value, int(str(op.children[-1])), op)
            else:
                value = self.index(value, self.eval(_exprs(op)[0]), op)
        return value

    # -- operators ---------------------------------------------------------------------------------------------
    def _unary_op(self, node: Any) -> Any:
        op = str(node.children[0])
        value = self.eval(node.children[1])
        if isinstance(value, Unknown):
            return value
        if op == "!":
            return not self._as(to_bool, value, node, "operand")
        return norm_number(-self._as(to_number, value, node, "operand"))

    def _binary_op(self, node: Any) -> Any:
        lhs = self.eval(node.children[0])
        term = node.children[1]
        op = str(term.children[0].children[0])
        rhs = self.eval(next(c for c in term.children[1:] if isinstance(c, Tree)
                         and c.data != "new_line_or_comment"))
        if isinstance(lhs, Unknown) or isinstance(rhs, Unknown):
            return lhs if isinstance(lhs, Unknown) else rhs
        if op == "==":
            return equals(lhs, rhs)
        if op == "!=":
            return not equals(lhs, rhs)
        if op in ("&&", "||"):
            a = self._as(to_bool, lhs, node, "operand")
            b = self._as(to_bool, rhs, term, "operand")
            return (a and b) if op == "&&" else (a or b)
        a = self._as(to_number, lhs, node, "operand")
        b = self._as(to_number, rhs, term, "operand")
        return self._arith(op, a, b, term)

    def _arith(self, op: str, a: Any, b: Any, node: Any) -> Any:
        if op == "+":
            return norm_number(a + b)
        if op == "-":
            return norm_number(a - b)
        if op == "*":
            return norm_number(a * b)
        if op in ("/", "%"):
            if b == 0:
                if op == "/":
                    return math.inf if a > 0 else -math.inf if a < 0 else _fail(self.error(node, "0/0"))
                raise self.error(node, "modulo by zero")
            if op == "/":
                return norm_number(a / b)
            return norm_number(math.fmod(a, b))   # Go's % keeps the dividend's sign
        return {"<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]

    def _conditional(self, node: Any) -> Any:
        cond_node, then_node, else_node = [c for c in node.children if isinstance(c, Tree)
                                           and c.data != "new_line_or_comment"]
        cond = self.eval(cond_node)
        if isinstance(cond, Unknown):
            return cond
        if cond is None:
            raise self.error(cond_node, "the condition is null", hint="a condition must be true or false")
        picked = then_node if self._as(to_bool, cond, cond_node, "condition") else else_node
        return self.eval(picked)

    def _as(self, conv: Callable[[Any], Any], value: Any, node: Any, what: str) -> Any:
        if isinstance(value, Unknown):
            return value
        try:
            return conv(value)
        except ConversionError as exc:
            raise self.error(node, f"invalid {what}: {exc}") from None

    # -- for expressions ---------------------------------------------------------------------------------------
    def _pairs(self, coll: Any, node: Any) -> list[tuple[Any, Any]]:
        if isinstance(coll, list):
            return list(enumerate(coll))
        if isinstance(coll, dict):
            return [(k, coll[k]) for k in sorted(coll)]
        if coll is None:
            raise self.error(node, "cannot iterate over a null value")
        raise self.error(node, f"cannot iterate over a {type_name(coll)}", hint="a for expression needs a "
                         "list, set, tuple, map or object")

    def _for(self, node: Any) -> tuple[Any, list[Scope], list[Any]] | Unknown:
        intro = next(c for c in node.children if isinstance(c, Tree) and c.data == "for_intro")
        names = [str(c.children[0]) for c in intro.children if isinstance(c, Tree) and c.data == "identifier"]
        coll_node = next(c for c in intro.children if isinstance(c, Tree) and c.data not in
                     ("identifier", "new_line_or_comment"))
        coll = self.eval(coll_node)
        if isinstance(coll, Unknown):
            return coll
        cond = next((c for c in node.children if isinstance(c, Tree) and c.data == "for_cond"), None)
        body = [c for c in node.children if isinstance(c, Tree) and c.data not in
                ("for_intro", "for_cond", "new_line_or_comment")]
        scopes = []
        for k, v in self._pairs(coll, coll_node):
            scope = self.scope.bind({names[0]: k, names[1]: v} if len(names) == 2 else {names[0]: v})
            if cond is not None:
                cexpr = _exprs(cond)[0]
                keep = Evaluator(scope)._as(to_bool, Evaluator(scope).eval(cexpr), cexpr, "for condition")
                if isinstance(keep, Unknown):
                    return keep
                if not keep:
                    continue
            scopes.append(scope)
        return node, scopes, body

    def _for_tuple_expr(self, node: Any) -> Any:
        res = self._for(node)
        if isinstance(res, Unknown):
            return res
        _, scopes, body = res
        return [Evaluator(s).eval(body[0]) for s in scopes]

    def _for_object_expr(self, node: Any) -> Any:
        res = self._for(node)
        if isinstance(res, Unknown):
            return res
        _, scopes, body = res
        grouping = any(isinstance(c, Token) and c.type == "ELLIPSIS" for c in node.children)
        out: dict[str, Any] = {}
        for s in scopes:
            ev = Evaluator(s)
            key = ev._as(to_string, ev.eval(body[0]), body[0], "object key")
            if isinstance(key, Unknown):
                return key
            value = ev.eval(body[1])
            if grouping:
                out.setdefault(key, []).append(value)
            elif key in out:
                raise self.error(body[0], f'duplicate object key "{key}"',
                                 hint="add ... after the value expression to group values by key")
            else:
                out[key] = value
        return out

    # -- functions ---------------------------------------------------------------------------------------------
    def _function_call(self, node: Any) -> Any:
        from factory.template.calls import call_function

        return call_function(self, node)


_ROOTS = frozenset({"var", "local", "data", "path", "source", "build", "packer"})


def _exprs(node: Any) -> list[Any]:
    return [c for c in node.children if isinstance(c, Tree) and c.data not in
            ("new_line_or_comment", "binary_operator")]


def _fail(exc: Exception) -> Any:
    raise exc


__all__ = ["EvalError", "Evaluator", "Namespace", "Scope", "evaluate", "is_known"]
