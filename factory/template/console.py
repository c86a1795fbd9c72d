"""`factory console`: evaluate HCL expressions with a template's variables and locals, like `packer console`.

Values print as Packer's console prints them (its repl.FormatResult): a top-level string bare, strings inside
lists and maps quoted, lists as `[` one element per line `,` `]`, maps sorted as `key = value`, unknown values
as `<unknown>`. `variables` lists the input variables and locals; `help` and `exit` work as in Packer.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from factory import secrets
from factory.errors import FactoryError, Location
from factory.template.expr import Namespace, Scope, evaluate
from factory.template.functions import FUNCTIONS
from factory.template.loader import PACKER_VERSION, Loaded, prepare
from factory.template.parse import parse_text
from factory.template.sensitivity import is_sensitive
from factory.template.types import Unknown
from factory.template.variables import _MISSING

_ATTR = "__console__ = "   # an expression is parsed as the value of this attribute
HELP = """The factory console evaluates HCL2 expressions, as `packer console` does:

  var.NAME, local.NAME, path.root, functions (upper("x"), timestamp() ...), any expression
  variables   list the input variables and locals
  help        this text
  exit        leave the console (so do Ctrl-D and Ctrl-C)
"""


def format_result(value: Any, nested: bool = False) -> str:
    """A value as Packer's console shows it."""
    if isinstance(value, Unknown):
        return "<unknown>"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False) if nested else value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        rows = [f"{format_result(k, True)} = {format_result(value[k], True)}" for k in sorted(value)]
        return "{" + "".join("\n" + _indent(r) for r in rows) + ("\n" if rows else "") + "}"
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        return "[" + ("\n" if items else "") + "".join(_indent(format_result(v, True)) + ",\n" for v in items) + "]"
    return str(value)


def _indent(text: str) -> str:
    return "  " + text.replace("\n", "\n  ")


@dataclass
class Session:
    """One console: the scope expressions are evaluated in, and the template it came from (if any)."""

    scope: Scope
    loaded: Loaded | None = None

    @classmethod
    def open(cls, template: Path | None, vars: list[str], var_files: list[Path]) -> Session:
        if template is None:
            cwd = os.getcwd()
            names: dict[str, Any] = {"path": Namespace("path", {"root": cwd, "cwd": cwd}),
                                     "packer": Namespace("packer", {"version": PACKER_VERSION})}
            return cls(Scope("", names, FUNCTIONS, env=dict(os.environ)))
        loaded = prepare(template, vars=vars, var_files=var_files)
        loaded.col.raise_if_any()
        return cls(loaded.scope, loaded)

    def run(self, line: str) -> tuple[str | None, bool]:
        """(text to print or None, whether to exit) for one input line; FactoryError on a bad expression."""
        line = line.strip()
        if not line:
            return None, False
        if line == "exit":
            return None, True
        if line == "help":
            return HELP, False
        if line == "variables":
            return self.variables(), False
        try:
            root = parse_text(f"{_ATTR}{line}\n", "<console>")
            value = evaluate(root.attrs[_ATTR.split()[0]].expr, self.scope.with_block("console", "<console>"))
        except FactoryError as exc:
            if exc.where is not None and exc.where.file == "<console>":  # point into what the user typed
                exc.where = Location("<console>", 1, max(exc.where.column - len(_ATTR), 1), "console", line)
            raise
        if self.loaded is not None and is_sensitive(root.attrs[_ATTR.split()[0]].expr, self._sensitive_vars(),
                                                    set(self.loaded.sensitive_locals)):
            return "<sensitive>", False   # computed from a sensitive value (Packer marks it so)
        return secrets.mask(format_result(value)), False

    def _sensitive_vars(self) -> set[str]:
        return {n for n, d in self.loaded.decls.items() if d.sensitive} if self.loaded is not None else set()

    def variables(self) -> str:
        out = ["> input-variables:", ""]
        if self.loaded is not None:
            for name, decl in sorted(self.loaded.decls.items()):
                known = not decl.failed and decl.value is not _MISSING
                value = "<sensitive>" if decl.sensitive else format_result(decl.value if known else Unknown("unset"))
                out.append(f"var.{name}: {json.dumps(value, ensure_ascii=False)}")
        out += ["", "> local-variables:", ""]
        if self.loaded is not None:
            for name, value in sorted(self.loaded.locals_.items()):
                shown = "<sensitive>" if name in self.loaded.sensitive_locals else format_result(value)
                out.append(f"local.{name}: {json.dumps(shown, ensure_ascii=False)}")
        return "\n".join(out) + "\n"
