"""Input variables: declarations, Packer's value precedence, type conversion, validation and sensitivity.

Precedence (lowest first), as Packer's code applies it (hcl2template collectInputVariableValues) and its docs
state: default < PKR_VAR_name environment variables (FACTORY_VAR_name wins over PKR_VAR_name) <
*.auto.pkrvars.hcl (lexical order) < -var-file (HCL or JSON, in order) < -var name=value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from factory import secrets
from factory.errors import FactoryError, Location
from factory.options import suggest
from factory.template.calls import parse_type
from factory.template.collect import Collector
from factory.template.expr import EvalError, Evaluator, Namespace, Scope, evaluate
from factory.template.functions import FUNCTIONS
from factory.template.parse import Attr, Block, parse_file, remember
from factory.template.strings import parse_expression
from factory.template.types import ANY, BOOL, ConversionError, HType, convert, first_unknown
from factory.textfile import check_nesting, read_text

_MISSING = object()


@dataclass
class VarDecl:
    name: str
    type: HType
    type_text: str
    has_type: bool
    default: Any
    sensitive: bool
    description: str
    validations: list[tuple[Attr, Attr | None]]
    where: Location
    value: Any = _MISSING
    value_where: str = "default"
    failed: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def declare(root_blocks: list[Block], col: Collector, env: Mapping[str, str]) -> dict[str, VarDecl]:
    """Read `variable` and legacy `variables` blocks; defaults are evaluated here (env() allowed)."""
    decls: dict[str, VarDecl] = {}
    scope = Scope("", {}, FUNCTIONS, allow_env=True, env=dict(env))
    for blk in root_blocks:
        if blk.type == "variable":
            d = _declare_one(blk, scope, col)
        elif blk.type == "variables":
            for attr in blk.attrs.values():
                _add(decls, _legacy(attr, scope, col), col)
            continue
        else:
            continue
        if d is not None:
            _add(decls, d, col)
    return decls


def _add(decls: dict[str, VarDecl], d: VarDecl | None, col: Collector) -> None:
    if d is None:
        return
    if d.name in decls:
        col.add(FactoryError(f'variable "{d.name}" is declared twice', where=d.where,
                             hint=f"the first declaration is at {decls[d.name].where}"))
        return
    decls[d.name] = d


def _legacy(attr: Attr, scope: Scope, col: Collector) -> VarDecl | None:
    path = f"variables.{attr.name}"
    try:
        default = evaluate(attr.expr, scope.with_block(path, attr.file))
    except EvalError as exc:
        col.add(exc)
        return None
    return VarDecl(attr.name, ANY, "any", False, default, False, "", [], attr.where(path))


def _declare_one(blk: Block, scope: Scope, col: Collector) -> VarDecl | None:
    if len(blk.labels) != 1:
        col.add(FactoryError('a variable block needs exactly one label: variable "name" { ... }',
                             where=blk.where("variable")))
        return None
    name = blk.labels[0]
    path = f'variable "{name}"'
    sc = scope.with_block(path, blk.file)
    allowed = {"type", "default", "description", "sensitive", "nullable"}
    for attr in blk.attrs.values():
        if attr.name not in allowed:
            close = suggest(attr.name, allowed)
            col.add(FactoryError(f'unsupported argument "{attr.name}" in a variable block',
                                 where=attr.where(f"{path}.{attr.name}"),
                                 hint=f'did you mean "{close}"?' if close else
                                 f"allowed: {', '.join(sorted(allowed))}"))
    htype, type_text, has_type = ANY, "any", False
    try:
        if "type" in blk.attrs:
            at = blk.attrs["type"]
            htype = parse_type(at.expr, Evaluator(sc.with_block(f"{path}.type")))
            type_text, has_type = str(htype), True
        default: Any = _MISSING
        if "default" in blk.attrs:
            at = blk.attrs["default"]
            default = evaluate(at.expr, sc.with_block(f"{path}.default"))
            if has_type:
                try:
                    default = convert(default, htype)
                except ConversionError as exc:
                    raise EvalError(f"invalid default value for variable \"{name}\": {exc}",
                                    where=at.where(f"{path}.default")) from None
        sensitive = _static(blk, "sensitive", False, sc)
        description = _static(blk, "description", "", sc)
    except EvalError as exc:
        col.add(exc)
        return None
    validations = [(v.attrs["condition"], v.attrs.get("error_message")) for v in blk.children("validation")
                   if "condition" in v.attrs]
    for v in blk.children("validation"):
        if "condition" not in v.attrs:
            col.add(FactoryError("a validation block needs a condition", where=v.where(f"{path}.validation")))
    return VarDecl(name, htype, type_text, has_type, default, bool(sensitive), str(description), validations,
                   blk.where(path))


def _static(blk: Block, name: str, fallback: Any, scope: Scope) -> Any:
    at = blk.attrs.get(name)
    return fallback if at is None else evaluate(at.expr, scope.with_block(f"{scope.block}.{name}"))


def assign(decls: dict[str, VarDecl], *, auto_files: Sequence[Path], var_files: Sequence[Path],
           env: Mapping[str, str], cli_vars: Sequence[str], col: Collector) -> None:
    """Apply values in Packer's precedence order, then convert, validate and register sensitive ones."""
    for prefix in ("PKR_VAR_", "FACTORY_VAR_"):
        for key, raw in sorted(env.items()):
            if key.startswith(prefix) and key[len(prefix):] in decls:
                _set_text(decls[key[len(prefix):]], raw, f"environment variable {key}", col)
    for path in [*auto_files, *var_files]:
        _from_file(decls, path, col)
    for item in cli_vars:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep or not name:
            col.add(FactoryError(f"invalid -var {item!r}", hint="write -var name=value"))
            continue
        if name not in decls:
            close = suggest(name, decls)
            col.add(FactoryError(f'-var "{name}": no variable named "{name}" is declared',
                                 hint=f'did you mean "{close}"?' if close else "declare it with variable "
                                 f'"{name}" {{}}'))
            continue
        _set_text(decls[name], raw, f"-var {name}", col)
    for d in decls.values():
        _finish(d, col)


def _set_text(d: VarDecl, raw: str, origin: str, col: Collector) -> None:
    """A value given as text (-var, environment): a string for string/untyped variables, else an expression."""
    if not d.has_type or d.type.kind == "string":
        d.value, d.value_where = raw, origin
        return
    file = f"<{origin}>"
    remember(file, raw)
    try:
        d.value = evaluate(parse_expression(raw, file), Scope(file, {}, FUNCTIONS, block=origin))
        d.value_where = origin
    except FactoryError as exc:
        col.add(FactoryError(f'invalid value for variable "{d.name}" from {origin}: {exc.message}',
                             hint=f"a {d.type_text} value is expected, in HCL syntax"))
        d.failed = True


def _from_file(decls: dict[str, VarDecl], path: Path, col: Collector) -> None:
    if not path.is_file():
        what = "is not a file" if path.exists() else "does not exist"
        col.add(FactoryError(f"variable file {path} {what}", hint="check the -var-file path"))
        return
    if path.suffix == ".json":
        _from_json(decls, path, col)
        return
    if path.suffix != ".hcl":
        col.add(FactoryError(f"cannot guess the format of {path}", hint="a var file ends in .hcl or .json"))
        return
    try:
        body = parse_file(path, "variable file")
    except FactoryError as exc:
        col.add(exc)
        return
    for blk in body.blocks:
        col.add(FactoryError(f'blocks are not allowed in a variable file ("{blk.type}")',
                             where=blk.where(blk.type), hint="a var file holds only name = value lines"))
    for attr in body.attrs.values():
        if attr.name not in decls:
            close = suggest(attr.name, decls)
            col.warn(f'{path}:{attr.line}: value for undeclared variable "{attr.name}" is ignored'
                     + (f' (did you mean "{close}"?)' if close else ""))
            continue
        try:
            decls[attr.name].value = evaluate(attr.expr, Scope(str(path), {}, {}, block=attr.name))
            decls[attr.name].value_where = f"{path}:{attr.line}"
        except EvalError as exc:
            col.add(exc)
            decls[attr.name].failed = True


def _from_json(decls: dict[str, VarDecl], path: Path, col: Collector) -> None:
    try:
        text = read_text(path, "variable file")
        check_nesting(text, str(path), "variable file")
        data = json.loads(text)
    except FactoryError as exc:
        col.add(exc)
        return
    except ValueError as exc:
        where = Location(str(path), exc.lineno, exc.colno) if isinstance(exc, json.JSONDecodeError) else None
        col.add(FactoryError(f"variable file is not valid JSON: {getattr(exc, 'msg', exc)}", where=where,
                             hint="a JSON var file holds one object of name: value"))
        return
    if not isinstance(data, dict):
        col.add(FactoryError(f"variable file {path} must hold a JSON object of name: value"))
        return
    for name, value in data.items():
        if name not in decls:
            col.warn(f'{path}: value for undeclared variable "{name}" is ignored')
            continue
        decls[name].value, decls[name].value_where = value, str(path)


def _finish(d: VarDecl, col: Collector) -> None:
    if d.failed:
        return
    if d.value is _MISSING:
        if d.default is _MISSING:
            col.add(FactoryError(f'variable "{d.name}" is required but has no value', where=d.where,
                                 hint=f"set it with -var {d.name}=..., a var file or PKR_VAR_{d.name}"))
            d.failed = True
            return
        d.value, d.value_where = d.default, "default"
    try:
        d.value = convert(d.value, d.type)
    except ConversionError as exc:
        col.add(FactoryError(f'invalid value for variable "{d.name}" (from {d.value_where}): {exc}',
                             where=d.where, hint=f"the variable's type is {d.type_text}"))
        d.failed = True
        return
    if d.sensitive:
        register_sensitive(d.value)
    _validate(d, col)


def _validate(d: VarDecl, col: Collector) -> None:
    scope = Scope("", {"var": Namespace("var", {d.name: d.value}, what="variable")}, FUNCTIONS)
    for cond, message in d.validations:
        path = f'variable "{d.name}".validation'
        try:
            ok = evaluate(cond.expr, scope.with_block(f"{path}.condition", cond.file))
            text = "" if message is None else evaluate(message.expr, scope.with_block(f"{path}.error_message",
                                                                                         message.file))
        except EvalError as exc:
            col.add(exc)
            continue
        if first_unknown(ok) is None and not isinstance(ok, bool):
            try:   # HCL converts "true"/"false" strings to bool; anything else is an error in Packer
                ok = convert(ok, BOOL)
            except ConversionError:
                col.add(FactoryError(f"validation condition of variable \"{d.name}\" must be true or false, got "
                                     f"{ok!r}", where=cond.where(f"{path}.condition"),
                                     hint="write a boolean expression, e.g. length(var.x) > 0"))
                d.failed = True
                continue
        if first_unknown(ok) is None and ok is False:
            col.add(FactoryError(f'invalid value for variable "{d.name}": {text or "validation failed"}',
                                 where=cond.where(f"{path}.condition"),
                                 hint=f"the value came from {d.value_where}"))
            d.failed = True


def register_sensitive(value: Any) -> None:
    """Register every string inside a sensitive value so logs and output mask it."""
    if isinstance(value, str):
        secrets.register(value)
    elif isinstance(value, list):
        for v in value:
            register_sensitive(v)
    elif isinstance(value, dict):
        for v in value.values():
            register_sensitive(v)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        secrets.register(str(value))
