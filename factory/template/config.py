"""Evaluated HCL bodies → the Component dataclasses declared in factory/schema (validation, did-you-mean).

Unknown options are errors with the nearest name; required ones must be set; values convert with HCL's rules
to the declared Python type; options factory accepts but does not act on (Support.IGNORED) are warned about.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any

from factory.errors import FactoryError, Location
from factory.options import Component, Deferred, Kind, OptionInfo, OptionValue, Support, convert, options_of, suggest
from factory.schema import lookup
from factory.template import types as ht
from factory.template.boot import check_boot_keys
from factory.template.collect import Collector
from factory.template.expr import EvalError, Scope, evaluate
from factory.template.parse import Block
from factory.template.variables import register_sensitive


@dataclass
class Body:
    """Evaluated values of one block (attributes and nested blocks) with where each came from."""

    values: dict[str, Any]
    where: dict[str, Location]


def evaluate_body(blk: Block, scope: Scope, path: str, col: Collector, skip: frozenset[str] = frozenset(),
                  body: Body | None = None) -> Body:
    """Evaluate every attribute (except `skip`) and nested block of blk; errors go to col."""
    out = body or Body({}, {})
    for attr in blk.attrs.values():
        if attr.name in skip:
            continue
        where = attr.where(f"{path}.{attr.name}")
        try:
            sc = scope.with_block(f"{path}.{attr.name}", attr.file)
            value = evaluate(attr.expr, sc.bind(attr.bound) if attr.bound else sc)
        except EvalError as exc:
            col.add(exc)
            continue
        unknown = ht.first_unknown(value)
        if unknown is not None:
            col.add(FactoryError(f"the value of {attr.name} is not known: {unknown.reason}", where=where,
                                 hint="wrap the reference in try(..., default) to fall back when it is unknown"))
            continue
        out.values[attr.name], out.where[attr.name] = value, where
    for i, nested in enumerate(blk.blocks):
        if nested.type in skip:
            continue
        inner = evaluate_body(nested, scope, f"{path}.{nested.type}[{i}]", col)
        value = dict(inner.values)
        if nested.labels:
            value = {nested.labels[0]: value}
        prev = out.values.get(nested.type)
        out.values[nested.type] = value if prev is None else [*(prev if isinstance(prev, list) else [prev]),
                                                                  value]
        out.where.setdefault(nested.type, nested.where(f"{path}.{nested.type}"))
    return out


def make_component(kind: Kind, type_: str, body: Body, where: Location, path: str, col: Collector
                   ) -> Component | None:
    """Build the declared dataclass for (kind, type_) from body, reporting every problem."""
    cls = lookup(kind, type_)
    if cls is None:
        col.add(FactoryError(f'unknown {kind} type "{type_}"', where=where, hint=_unknown_hint(kind, type_)))
        return None
    infos = {o.name: o for o in options_of(cls)}
    _rename_aliases(cls, body, path, col)
    _lift_blocks(cls, body, infos)
    kwargs: dict[str, Any] = {}
    ok = True
    for name, value in body.values.items():
        info = infos.get(name)
        at = body.where.get(name, where)
        if info is None:
            close = suggest(name, infos)
            col.add(FactoryError(f'unknown option "{name}" for {kind} "{type_}"', where=at,
                                 hint=f'did you mean "{close}"?' if close else
                                 f"see `factory inspect` or docs/reference.md for the options of {type_}"))
            ok = False
            continue
        if value is None:
            continue  # null means unset, as in Packer
        try:
            kwargs[name] = convert(to_python(value, info.written if info.written is not None else info.type), info)
        except ht.ConversionError as exc:
            col.add(FactoryError(f"invalid value for {name}: {exc}", where=at,
                                 hint=f"{name} has type {info.type_name}"))
            ok = False
            continue
        except FactoryError as exc:
            col.add(FactoryError(exc.message, where=at, hint=exc.hint))
            ok = False
            continue
        if info.support is Support.IGNORED:
            col.warn(f"{at.file}:{at.line}: {path}.{name} is accepted for compatibility but not acted on by "
                     "factory")
        if info.sensitive:
            register_sensitive(kwargs[name])
    ok = _required(infos, kwargs, kind, type_, where, col) and ok
    if not ok:
        return None
    config = cls(**kwargs)
    if not _checked(config, body, where, col):
        return None
    check_boot_keys(config, body.where, where, path, col)
    return config


def _rename_aliases(cls: type[Component], body: Body, path: str, col: Collector) -> None:
    """Packer's deprecated option names become the current ones (the current name wins when both are set)."""
    for old, new in getattr(cls, "ALIASES", {}).items():
        if old not in body.values:
            continue
        at = body.where.pop(old, None)
        value = body.values.pop(old)
        place = f"{at.file}:{at.line}: " if at else ""
        col.warn(f"{place}{path}.{old} is deprecated in Packer: read as {new}")
        if body.values.get(new) is None:
            body.values[new] = value
            if at is not None:
                body.where[new] = at


def _lift_blocks(cls: type[Component], body: Body, infos: dict[str, OptionInfo]) -> None:
    """A nested block the schema lists in LIFTED_BLOCKS (libvirt's `communicator { ssh_username = ... }`) holds
    options of its parent: they are set as if written flat (the block's own values win), and the block's
    same-named key, if any, becomes the option's value. A block with keys the parent lacks is left for the
    schema's validator to report."""
    for name, keys in getattr(cls, "LIFTED_BLOCKS", {}).items():
        block = body.values.get(name)
        if isinstance(block, list) and len(block) == 1:
            block = block[0]
        if not isinstance(block, dict) or not set(block) <= keys & set(infos):
            continue
        at = body.where.get(name)
        del body.values[name]
        for key, value in block.items():
            body.values[key] = value
            if at is not None:
                body.where[key] = at


def _required(infos: dict[str, OptionInfo], kwargs: dict[str, Any], kind: Kind, type_: str, where: Location,
              col: Collector) -> bool:
    missing = [n for n, o in infos.items() if o.required and n not in kwargs]
    for name in missing:
        col.add(FactoryError(f'missing required option "{name}" for {kind} "{type_}"', where=where,
                             hint=infos[name].help.split(". ")[0]))
    return not missing


def _checked(config: Component, body: Body, where: Location, col: Collector) -> bool:
    from factory.schema.types import check

    for info in options_of(type(config)):
        if isinstance(info.check, Deferred) and getattr(config, info.name) not in (None, [], {}):
            _provide(info.check)
    problems = check(config)
    for p in problems:
        at = next((body.where[o] for o in (p.option, *p.also) if o in body.where), where)
        col.add(FactoryError(p.message, where=at, hint=p.hint))
    return not problems


def _provide(check: Deferred) -> None:
    """Import the runtime module that implements one of the schema's Deferred checks: only when an option that
    has it is set, since paramiko (behind the SSH algorithm lists) is slow to import."""
    from factory.schema import values

    if check in (values.SSH_CIPHERS, values.SSH_KEX):
        import factory.comm.algorithms
    elif check is values.CATALOG_RELEASE:
        import factory.media.catalog
    elif check is values.PRESEED_VARS:
        import factory.media.preseed  # noqa: F401


def to_python(value: Any, tp: Any) -> Any:
    """Convert an HCL value to a declared option type (str, int, float, bool, list[...], dict[str, ...], X|None)."""
    origin = typing.get_origin(tp)
    if tp is Any or tp is object:
        return value
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        errors = []
        for a in args:
            try:
                return to_python(value, a)
            except ht.ConversionError as exc:
                errors.append(str(exc))
        raise ht.ConversionError("; ".join(errors))
    if isinstance(tp, type) and issubclass(tp, OptionValue):
        return value  # parsed by the declaration (factory.options.convert), which names the option on error
    if tp is bool:
        return ht.to_bool(value)
    if tp is str or (isinstance(tp, type) and issubclass(tp, str)):
        return ht.to_string(value)
    if tp is int:
        n = ht.to_number(value)
        if not isinstance(n, int):
            raise ht.ConversionError(f"a whole number is required, got {n}")
        return n
    if tp is float:
        return float(ht.to_number(value))
    if origin is list or origin is tuple:
        (elem,) = typing.get_args(tp)[:1]
        if isinstance(value, dict) and typing.get_origin(elem) is dict:
            value = [value]   # a single nested block for a list-of-blocks option
        if not isinstance(value, list):
            raise ht.ConversionError(f"a list is required, got {ht.type_name(value)}")
        return [_elem(v, elem, i) for i, v in enumerate(value)]
    if origin is dict:
        _, vt = typing.get_args(tp)
        if isinstance(value, list) and all(isinstance(v, dict) for v in value):
            merged: dict[str, Any] = {}
            for v in value:
                merged.update(v)
            value = merged
        if not isinstance(value, dict):
            raise ht.ConversionError(f"a map is required, got {ht.type_name(value)}")
        return {k: _elem(v, vt, k) for k, v in value.items()}
    if isinstance(tp, type):
        if isinstance(value, tp):
            return value
        raise ht.ConversionError(f"a {tp.__name__} is required, got {ht.type_name(value)}")
    return value


def _elem(value: Any, tp: Any, at: int | str) -> Any:
    try:
        return to_python(value, tp)
    except ht.ConversionError as exc:
        raise ht.ConversionError(f"element [{at!r}]: {exc}") from None


_PLUGIN_HINTS = {
    Kind.SOURCE: "factory builds with qemu, virtualbox-iso/-ovf/-vm and null; other builders come from "
                 "Packer plugins factory does not have (select the sources it has with -only)",
    Kind.PROVISIONER: "factory's provisioners are shell, file, shell-local, breakpoint and ansible",
    Kind.POST_PROCESSOR: "see docs/reference.md for factory's post-processors",
    Kind.DATA: "factory implements the null and http data sources",
}


def _unknown_hint(kind: Kind, type_: str) -> str:
    from factory.schema import registered

    close = suggest(type_, registered(kind))
    return f'did you mean "{close}"?' if close else _PLUGIN_HINTS[kind]

