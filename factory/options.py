"""Options declared once: every source, provisioner, post-processor and data source is a frozen dataclass.

The dataclass *is* the declaration and, once built, the typed config the code reads by attribute: each field's
name is the option name (Packer's where Packer has one), its annotation the type the code sees, its default the
default as a user would write it, and `opt(...)` carries help text, flags and constraints. Parsing, defaults,
conversion and validation, `inspect`, the generated reference page, "did you mean" hints and cache keys all read
this declaration; nothing else may restate an option's name or default (read `config.boot_wait`, never
`getattr(config, "boot_wait", "10s")`: a typo is then a mypy error, not a silent default).

    from factory.schema.types import Duration, SizeMiB

    @dataclass(frozen=True)
    class QemuSource(Component, kind=Kind.SOURCE, name="qemu"):
        cpus: int = opt(1, minimum=1, maximum=288, help="Virtual CPUs.")            # a range
        disk_cache: str = opt("writeback", choices=("writeback", "none"), help="")  # an enum (did-you-mean)
        boot_wait: Duration = opt("10s", help="...")          # a Go duration: the code reads float seconds
        disk_size: SizeMiB = opt("40960M", help="...")        # a size: the code reads whole MiB (int)
        ssh_port: int = opt(22, minimum=1, maximum=65535, help="...")
        vnc_password: str | None = opt(None, check=check_password, help="...")  # any rule: raise FactoryError
        qemu_img_args: DiskToolArgs = opt({}, written=dict[str, list[str]], parse=DiskToolArgs.parse,
                                          help="...")         # what users write (docs, HCL) -> a typed value
        ssh_username: str = opt(required=True, help="...")

Conversion happens when the object is built (`__post_init__`, so defaults are converted too, and the template
layer converts each value first so every bad one is reported with its file:line):
- an annotation that is an `OptionValue` subclass (Duration, SizeMiB, ...) is parsed by its `parse(raw, what)`
  (the result is a number; `.text` keeps what the user wrote, for messages);
- a `StrEnum` annotation converts the string to the member (the member still equals the string);
- `parse=` converts the value as written (HCL-converted to `written=`, the type docs show) to the annotated
  type; it must accept its own output (a converted config is rebuilt by `dataclasses.replace`);
- list[...], tuple[...], dict[str, ...] and `X | None` of the above convert element by element.
Validation (`factory.schema.types.check`) then applies `choices=`, `minimum=`/`maximum=` (numbers, durations in
seconds, sizes in MiB) and `check=` (a callable raising FactoryError), each reported with file:line.
Rules spanning several options stay on the class (`EXCLUSIVE`, `REQUIRES`, `problems()` in schema/types.py).
A check that needs a runtime package's data (the ISO catalog, paramiko's algorithm list) is a `Deferred` the
schema declares and that package implements, so factory/schema/ imports no runtime package.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import MISSING, dataclass
from enum import StrEnum
from typing import Any, ClassVar

from factory.errors import FactoryError


class Kind(StrEnum):
    SOURCE = "source"
    PROVISIONER = "provisioner"
    POST_PROCESSOR = "post-processor"
    DATA = "data"


class Support(StrEnum):
    """What factory does with an option it declares."""

    ACTED = "acted"          # implemented
    IGNORED = "ignored"      # Packer option accepted for compatibility; warned about, not acted on


class OptionValue:
    """Base of option value types parsed from what the user wrote (Duration, SizeMiB): `parse(raw, what)` returns
    an instance or raises FactoryError naming `what`; parsing an instance returns it unchanged."""

    label: ClassVar[str] = "value"     # the type's name in docs and `inspect`

    @classmethod
    def parse(cls, raw: Any, what: str) -> Any:
        raise NotImplementedError


_F = typing.TypeVar("_F", bound=Callable[[Any], object])


class Deferred:
    """A check declared in factory/schema/ but implemented by the runtime package that owns the data it needs
    (e.g. the ISO catalog), so schema imports no runtime package. The provider calls `implement(fn)` at import;
    `factory.template` imports the providers before it validates."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._impl: Callable[[Any], object] | None = None

    def implement(self, fn: _F) -> _F:
        self._impl = fn
        return fn

    def __call__(self, value: Any) -> object:
        if self._impl is None:
            raise RuntimeError(f"check {self.name!r} has no implementation: import the package that provides it")
        return self._impl(value)


def opt(default: Any = MISSING, *, help: str, required: bool = False, sensitive: bool = False,
        support: Support = Support.ACTED, factory_only: bool = False, choices: Sequence[str] | None = None,
        minimum: float | None = None, maximum: float | None = None, check: Callable[[Any], object] | None = None,
        parse: Callable[[Any], Any] | None = None, written: Any = None, reads: bool = False) -> Any:
    """Declare an option: its default (as a user would write it), documentation and constraints (see the module
    docstring). A mutable default (list, dict) is copied per instance.

    reads: the value names local files or folders whose content goes into the build (scripts, uploads), so
    their digests are part of the stage ID of the step that uses them.
    """
    meta = {"help": help, "sensitive": sensitive, "support": support, "factory_only": factory_only,
            "required": required, "choices": tuple(choices) if choices is not None else None,
            "minimum": minimum, "maximum": maximum, "check": check, "parse": parse,
            "written": written, "reads": reads}
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
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    check: Callable[[Any], object] | None = None
    parse: Callable[[Any], Any] | None = None
    written: Any = None          # the type users write when it differs from the converted one (parse=)

    @property
    def type_name(self) -> str:
        return _type_name(self.written if self.written is not None else self.type)


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
            if key in REGISTRY and REGISTRY[key].__qualname__ != cls.__qualname__:
                raise TypeError(f"{kind} {name!r} declared twice ({REGISTRY[key]!r} and {cls!r})")
            REGISTRY[key] = cls

    def __post_init__(self) -> None:
        """Convert every option to its declared type (defaults included); see the module docstring."""
        for info in _converted(type(self)):
            value = getattr(self, info.name)
            if value is not None:
                object.__setattr__(self, info.name, convert(value, info))


REGISTRY: dict[tuple[Kind, str], type[Component]] = {}


def read_paths(config: Any) -> dict[str, list[str]]:
    """The local paths a component's options declare it reads (`reads=True`), by option name."""
    out: dict[str, list[str]] = {}
    for f in dataclasses.fields(config) if dataclasses.is_dataclass(config) else ():
        value = getattr(config, f.name) if f.metadata.get("reads") else None
        if value:
            out[f.name] = [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]
    return out


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
                              meta["sensitive"], meta["support"], meta["factory_only"], meta.get("choices"),
                              meta.get("minimum"), meta.get("maximum"), meta.get("check"), meta.get("parse"),
                              meta.get("written")))
    return out


_CONVERTED: dict[type, tuple[OptionInfo, ...]] = {}


def _converted(cls: type[Component]) -> tuple[OptionInfo, ...]:
    """The options of cls whose values need converting (an OptionValue, enum or parse= somewhere in the type)."""
    if cls not in _CONVERTED:
        _CONVERTED[cls] = tuple(o for o in options_of(cls) if o.parse is not None or _needs_conversion(o.type))
    return _CONVERTED[cls]


def _needs_conversion(tp: Any) -> bool:
    if isinstance(tp, type) and issubclass(tp, OptionValue | StrEnum):
        return True
    return any(_needs_conversion(a) for a in typing.get_args(tp))


def convert(value: Any, info: OptionInfo) -> Any:
    """`value` (as written, or already converted) as the option's declared type; FactoryError if it does not parse."""
    if info.parse is not None:
        return info.parse(value)
    if info.choices is not None and isinstance(value, str) and value not in info.choices:
        near = suggest(value, info.choices)
        raise FactoryError(f"invalid {info.name} {value!r}; allowed: {', '.join(info.choices)}",
                           hint=f"did you mean {near!r}?" if near else "allowed: " + ", ".join(info.choices))
    return convert_type(value, info.type, info.name)


def convert_type(value: Any, tp: Any, what: str) -> Any:
    """Convert OptionValue and StrEnum leaves of `value` along the declared type `tp` (other leaves as they are)."""
    origin = typing.get_origin(tp)
    if value is None:
        return None
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return convert_type(value, args[0], what) if len(args) == 1 else value
    if isinstance(tp, type) and issubclass(tp, OptionValue):
        return tp.parse(value, what)
    if isinstance(tp, type) and issubclass(tp, StrEnum):
        return _enum(value, tp, what)
    if origin in (list, tuple) and isinstance(value, list | tuple):
        elem = typing.get_args(tp)[0]
        return origin(convert_type(v, elem, what) for v in value)
    if origin is dict and isinstance(value, dict):
        vt = typing.get_args(tp)[1]
        return {k: convert_type(v, vt, what) for k, v in value.items()}
    return value


def _enum(value: Any, tp: type[StrEnum], what: str) -> StrEnum:
    try:
        return tp(value)
    except ValueError:
        allowed = [str(m) for m in tp]
        near = suggest(str(value), allowed)
        raise FactoryError(f"invalid {what} {value!r}; allowed: {', '.join(allowed)}",
                           hint=f"did you mean {near!r}?" if near else None) from None


def suggest(name: str, candidates: Iterable[str]) -> str | None:
    """The nearest known name, for 'did you mean ...?' hints."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return close[0] if close else None


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if isinstance(tp, type) and issubclass(tp, OptionValue):
        return tp.label
    if isinstance(tp, type) and issubclass(tp, StrEnum):
        return "str"
    if origin is None:
        return getattr(tp, "__name__", str(tp))
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    return f"{getattr(origin, '__name__', str(origin))}[{', '.join(_type_name(a) for a in args)}]"
