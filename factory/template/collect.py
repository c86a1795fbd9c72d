"""Error and warning collection while loading a template: every independent problem is reported at once."""

from __future__ import annotations

from dataclasses import dataclass, field

from factory.errors import FactoryError, FactoryErrors
from factory.template.expr import EvalError


class CascadeError(EvalError):
    """A reference to something that already failed (reported once, where it failed)."""


@dataclass
class Collector:
    errors: list[FactoryError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add(self, exc: FactoryError) -> None:
        if isinstance(exc, CascadeError):
            return
        if isinstance(exc, FactoryErrors):
            for e in exc.errors:
                self.add(e)
            return
        key = (exc.message, str(exc.where))
        if all((e.message, str(e.where)) != key for e in self.errors):
            self.errors.append(exc)

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def raise_if_any(self) -> None:
        """Raise every collected error at once; the warnings ride along so a CLI can show them too."""
        if not self.errors:
            return
        exc = self.errors[0] if len(self.errors) == 1 else FactoryErrors(list(self.errors))
        exc.warnings = list(self.warnings)  # type: ignore[attr-defined]
        raise exc
