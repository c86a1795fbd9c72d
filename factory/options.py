"""Options declared once: every source, provisioner, post-processor and data source is a frozen dataclass.

The dataclass *is* the declaration: each field's name is the option name (Packer's where Packer has one), its
annotation the type, its default the default, and `opt(...)` carries help text and flags. Validation, `inspect`,
the generated reference page, "did you mean" hints and cache keys all read `options_of(cls)`.

    @dataclass(frozen=True)
    class QemuSource(Component, kind=Kind.SOURCE, name="qemu"):
        cpus: int = opt(1, help="Virtual CPUs.")
        iso_url: str | None = opt(None, help="...")
        ssh_username: str = opt(required=True, help="...")
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from collections.abc import Iterable
from dataclasses import MISSING, dataclass
from enum import StrEnum
from typing import Any, ClassVar


class Kind(StrEnum):
    SOURCE = "source"
    PROVISIONER = "provisioner"
    POST_PROCESSOR = "post-processor"
    DATA = "data"


class Support(StrEnum):
    """What factory does with an option it declares."""

    ACTED = "acted"          # implemented
    IGNORED = "ignored"      # Packer option accepted for compatibility; warned about, not acted on


def opt(default: Any = MISSING, *, help: str, required: bool = False, sensitive: bool = False,
        support: Support = Support.ACTED, factory_only: bool = False) -> Any:
    """Declare an option's default and documentation. A mutable default (list, dict) is copied per instance."""
    meta = {"help": help, "sensitive": sensitive, "support": support, "factory_only": factory_only,
            "required": required}
    if required:
        # Required options still get a default of None so dataclass field order does not matter; the
        # template layer refuses a missing value before the dataclass is built.
        return dataclasses.field(default=None, metadata=meta)
    if isinstance(default, list | dict | set):
        frozen = default
        return dataclasses.field(default_factory=lambda: type(frozen)(frozen), metadata=meta)
    if default is MISSING:
        return dataclasses.field(default=None, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class OptionInfo:
    name: str
    type: Any
    default: Any
    required: bool
    help: str
    sensitive: bool
    support: Support
    factory_only: bool

    @property
    def type_name(self) -> str:
        return _type_name(self.type)


class Component:
    """Base of every declared component; subclasses register themselves by (kind, name)."""

    kind: ClassVar[Kind]
    type_name: ClassVar[str]
    summary: ClassVar[str] = ""

    def __init_subclass__(cls, kind: Kind | None = None, name: str | None = None, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if kind is not None and name is not None:
            cls.kind, cls.type_name = kind, name
            key = (kind, name)
            if key in _REGISTRY and _REGISTRY[key].__qualname__ != cls.__qualname__:
                raise TypeError(f"{kind} {name!r} declared twice ({_REGISTRY[key]!r} and {cls!r})")
            _REGISTRY[key] = cls


_REGISTRY: dict[tuple[Kind, str], type[Component]] = {}


def lookup(kind: Kind, name: str) -> type[Component] | None:
    _load_declarations()
    return _REGISTRY.get((kind, name))


def registered(kind: Kind) -> dict[str, type[Component]]:
    _load_declarations()
    return {name: cls for (k, name), cls in sorted(_REGISTRY.items()) if k == kind}


def options_of(cls: type[Component]) -> list[OptionInfo]:
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        meta = f.metadata
        if "help" not in meta:
            continue
        if f.default is not MISSING:
            default = f.default
        elif f.default_factory is not MISSING:
            default = f.default_factory()
        else:
            default = None
        out.append(OptionInfo(f.name, hints[f.name], default, meta["required"], meta["help"],
                              meta["sensitive"], meta["support"], meta["factory_only"]))
    return out


def suggest(name: str, candidates: Iterable[str]) -> str | None:
    """The nearest known name, for 'did you mean ...?' hints."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return close[0] if close else None


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is None:
        return getattr(tp, "__name__", str(tp))
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if origin in (typing.Union, __import__("types").UnionType):
        return " | ".join(_type_name(a) for a in args)
    return f"{getattr(origin, '__name__', str(origin))}[{', '.join(_type_name(a) for a in args)}]"


_loaded = False


def _load_declarations() -> None:
    """Import the modules that declare components, so the registry is complete before it is read."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    import importlib
    import pkgutil

    import factory.schema as schema

    for mod in pkgutil.iter_modules(schema.__path__):
        importlib.import_module(f"factory.schema.{mod.name}")
