"""Data sources: the built-in `null` and the `host-info` plugin's are evaluated; others (plugins, or `http`
without a network) are unknown.

An unknown data source value makes every expression that reads it unknown: `try(data.x.y.attr, default)` falls
back, and a use outside try/can is reported where it is used.
"""

from __future__ import annotations

from typing import Any

from factory.errors import FactoryError
from factory.template.collect import Collector
from factory.template.expr import EvalError, Scope, evaluate
from factory.template.hostinfo import host_info
from factory.template.parse import Block
from factory.template.types import Unknown

IMPLEMENTED = ("null", "host-info")


def data_source_value(blk: Block, scope: Scope, col: Collector) -> Any:
    """The object a `data "TYPE" "NAME"` block exposes (or an Unknown with a warning)."""
    type_, name = blk.labels
    path = f"data.{type_}.{name}"
    if type_ == "null":
        at = blk.attrs.get("input")
        if at is None:
            col.add(FactoryError('the null data source needs an "input" attribute', where=blk.where(path)))
            return Unknown(f"{path} is invalid")
        try:
            value = evaluate(at.expr, scope.with_block(f"{path}.input", at.file))
        except EvalError as exc:
            col.add(exc)
            return Unknown(f"{path} failed")
        return {"input": value, "output": value}
    if type_ == "host-info":
        return host_info()  # the plugin takes no configuration
    if type_ == "http":
        reason = f'{path}: the http data source is not fetched (factory evaluates templates offline)'
    else:
        reason = f'{path}: data source "{type_}" comes from a plugin factory does not implement'
    col.warn(f"{blk.file}:{blk.line}: {reason}; its attributes are unknown (try() falls back)")
    return Unknown(reason)
