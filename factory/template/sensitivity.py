"""Which values derive from sensitive ones: Packer marks a value computed from a sensitive variable (or a
sensitive local) as sensitive too, so `inspect` and `console` show `<sensitive>` for `upper(var.password)` or a
local built from it, where masking the secret's text alone would miss the transformed value.

Found statically: an expression is sensitive when it reads `var.X` or `local.Y` of a sensitive one. Only the
display is affected; the texts masked in logs stay the sensitive values themselves (a derived value may be an
ordinary word, and masking it everywhere would garble output).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from lark import Token, Tree

from factory.template.parse import Block


def references(expr: Any) -> Iterator[tuple[str, str]]:
    """("var" | "local", name) for each `var.NAME` / `local.NAME` the expression reads."""
    if not isinstance(expr, Tree):
        return
    if expr.data == "get_attr_expr_term" and len(expr.children) >= 2:
        base, attr = expr.children[0], expr.children[1]
        root = _identifier(base)
        if root in ("var", "local") and isinstance(attr, Tree) and attr.data == "get_attr":
            name = next((_identifier(c) for c in attr.children if _identifier(c)), None)
            if name:
                yield root, name
    for child in expr.children:
        yield from references(child)


def _identifier(node: Any) -> str | None:
    if isinstance(node, Tree) and node.data == "identifier" and node.children:
        return str(node.children[0])
    if isinstance(node, Tree) and node.data == "expr_term" and len(node.children) == 1:
        return _identifier(node.children[0])
    if isinstance(node, Token) and node.type == "NAME":
        return str(node)
    return None


def local_expressions(blocks: list[Block]) -> dict[str, Any]:
    """Each local's expression (from `locals {}` and `local "NAME" {}` blocks)."""
    out: dict[str, Any] = {}
    for blk in blocks:
        if blk.type == "locals":
            out.update({name: a.expr for name, a in blk.attrs.items()})
        elif blk.type == "local" and blk.labels and "expression" in blk.attrs:
            out[blk.labels[0]] = blk.attrs["expression"].expr
    return out


def derived_locals(blocks: list[Block], sensitive_vars: set[str], sensitive_locals: set[str]) -> set[str]:
    """The locals that are sensitive or computed (through any chain of locals) from a sensitive value."""
    exprs = local_expressions(blocks)
    found = set(sensitive_locals)
    changed = True
    while changed:
        changed = False
        for name, expr in exprs.items():
            if name not in found and is_sensitive(expr, sensitive_vars, found):
                found.add(name)
                changed = True
    return found


def is_sensitive(expr: Any, sensitive_vars: set[str], sensitive_locals: set[str]) -> bool:
    return any((ns == "var" and name in sensitive_vars) or (ns == "local" and name in sensitive_locals)
               for ns, name in references(expr))
