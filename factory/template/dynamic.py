"""`dynamic "NAME" { for_each, iterator, labels, content {} }` blocks, expanded the way HCL's dynblock does.

Each generated block's attributes remember the iterator binding (`NAME.key`, `NAME.value`), so they evaluate
later with the same scope as any other attribute.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from factory.errors import FactoryError
from factory.template.collect import Collector
from factory.template.expr import EvalError, Scope, evaluate
from factory.template.parse import Block, name_of

_ALLOWED = {"for_each", "iterator", "labels"}


def expand(blk: Block, scope: Scope, col: Collector, bound: dict[str, Any] | None = None) -> Block:
    """blk with every nested dynamic block (at any depth) replaced by the blocks it generates."""
    bound = bound or {}
    out: list[Block] = []
    for nested in blk.blocks:
        if nested.type == "dynamic":
            out.extend(_generate(nested, scope, col, bound))
        else:
            out.append(expand(nested, scope, col, bound))
    return dataclasses.replace(blk, blocks=tuple(out))


def _generate(dyn: Block, scope: Scope, col: Collector, bound: dict[str, Any]) -> list[Block]:
    path = f"dynamic.{dyn.labels[0]}" if dyn.labels else "dynamic"
    contents = dyn.children("content")
    if len(dyn.labels) != 1 or len(contents) != 1 or "for_each" not in dyn.attrs:
        col.add(FactoryError('a dynamic block needs one label, for_each and one content block',
                             where=dyn.where(path), hint='dynamic "NAME" { for_each = LIST; content { ... } }'))
        return []
    for attr in dyn.attrs.values():
        if attr.name not in _ALLOWED:
            col.add(FactoryError(f'unsupported argument "{attr.name}" in a dynamic block',
                                 where=attr.where(f"{path}.{attr.name}"), hint="put it in the content block"))
    iterator = name_of(_unwrap(dyn.attrs["iterator"].expr)) if "iterator" in dyn.attrs else dyn.labels[0]
    at = dyn.attrs["for_each"]
    sc = scope.with_block(f"{path}.for_each", at.file).bind(bound)
    try:
        items = evaluate(at.expr, sc)
    except EvalError as exc:
        col.add(exc)
        return []
    if isinstance(items, list):
        pairs: list[tuple[Any, Any]] = list(enumerate(items))
    elif isinstance(items, dict):
        pairs = [(k, items[k]) for k in sorted(items)]
    else:
        col.add(FactoryError("for_each must be a list, set or map", where=at.where(f"{path}.for_each")))
        return []
    out = []
    for key, value in pairs:
        inner = {**bound, iterator: {"key": key, "value": value}}
        labels: tuple[str, ...] = ()
        if "labels" in dyn.attrs:
            la = dyn.attrs["labels"]
            try:
                labels = tuple(str(x) for x in evaluate(la.expr, scope.with_block(f"{path}.labels", la.file)
                                                        .bind(inner)))
            except (EvalError, TypeError) as exc:
                col.add(exc if isinstance(exc, EvalError) else
                        FactoryError("labels must be a list of strings", where=la.where(f"{path}.labels")))
                return []
        content = _bind(contents[0], inner)
        generated = Block(dyn.labels[0], labels, content.attrs, content.blocks, dyn.file, dyn.line, dyn.column)
        out.append(expand(generated, scope, col, inner))
    return out


def _bind(blk: Block, bound: dict[str, Any]) -> Block:
    attrs = {n: dataclasses.replace(a, bound={**a.bound, **bound}) for n, a in blk.attrs.items()}
    blocks = tuple(b if b.type == "dynamic" else _bind(b, bound) for b in blk.blocks)
    return dataclasses.replace(blk, attrs=attrs, blocks=blocks)


def _unwrap(node: Any) -> Any:
    while getattr(node, "data", None) == "expr_term":
        node = node.children[0]
    return node
