"""Packer's built-in HCL functions, one module per family; `FUNCTIONS` is the registry (name → Function).

Each implementation receives evaluated argument values (already known: calls with unknown arguments yield the
unknown without calling) and raises FuncError for bad input; the evaluator adds the call's position.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class FuncError(Exception):
    """A function refused its arguments; `arg` (0-based) points the error at one argument when known."""

    def __init__(self, message: str, arg: int | None = None) -> None:
        super().__init__(message)
        self.arg = arg


@dataclass(frozen=True)
class Function:
    """One built-in: its name, family (string, collection ...), one-line doc and implementation."""

    name: str
    family: str
    doc: str
    impl: Callable[..., Any]
    needs_context: bool = False   # impl(evaluator, *args): templatefile, env

    @property
    def signature(self) -> str:
        params = list(inspect.signature(self.impl).parameters.values())
        if self.needs_context:
            params = params[1:]
        out = []
        for p in params:
            if p.kind is p.VAR_POSITIONAL:
                out.append(f"{p.name}...")
            elif p.default is not p.empty:
                out.append(f"[{p.name}]")
            else:
                out.append(p.name)
        return f"{self.name}({', '.join(out)})"


FUNCTIONS: dict[str, Function] = {}


def function(name: str, family: str, doc: str, *, needs_context: bool = False
             ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register a built-in function under its HCL name."""
    def register(impl: Callable[..., Any]) -> Callable[..., Any]:
        FUNCTIONS[name] = Function(name, family, doc, impl, needs_context)
        return impl
    return register


# Special forms handled by the evaluator itself (their arguments are evaluated lazily).
SPECIAL_DOCS = {
    "try": "Evaluates each argument in turn and returns the first that succeeds (unknown values count as failure).",
    "can": "True if its argument evaluates without error to a known value.",
}


def _load() -> None:
    import importlib

    for family in ("numeric", "text", "collections", "encoding", "filesystem", "crypto", "datetime", "network",
                   "conversion"):
        importlib.import_module(f"{__name__}.{family}")   # each module registers its functions on import


_load()
