"""The one user-error path: raise through die(), caught once at the top of the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn


@dataclass(frozen=True)
class Location:
    """Where in a user's file a problem is: file:line:column plus the block path and the offending line."""

    file: str
    line: int = 0
    column: int = 0
    block: str = ""
    source_line: str = ""

    def __str__(self) -> str:
        where = self.file
        if self.line:
            where += f":{self.line}"
            if self.column:
                where += f":{self.column}"
        if self.block:
            where += f" ({self.block})"
        return where


class FactoryError(Exception):
    """A failure the user can act on: one message, an optional hint and place; never shown as a traceback."""

    def __init__(self, message: str, hint: str | None = None, where: Location | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.where = where

    def render(self) -> str:
        parts = [f"{self.where}: {self.message}" if self.where else self.message]
        if self.where and self.where.source_line:
            parts.append(f"  | {self.where.source_line}")
            if self.where.column:
                parts.append("  | " + " " * (self.where.column - 1) + "^")
        if self.hint:
            parts.append(f"hint: {self.hint}")
        return "\n".join(parts)


class FactoryErrors(FactoryError):
    """Several independent user errors reported at once (e.g. every problem in a template)."""

    def __init__(self, errors: list[FactoryError]) -> None:
        super().__init__(f"{len(errors)} error(s)")
        self.errors = errors

    def render(self) -> str:
        return "\n\n".join(e.render() for e in self.errors)


def die(message: str, hint: str | None = None, where: Location | None = None) -> NoReturn:
    """Stop with a user-facing error."""
    raise FactoryError(message, hint=hint, where=where)
