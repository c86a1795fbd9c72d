"""`load(path)`: read a template file or folder the way Packer does and evaluate it into a Project."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from factory.errors import FactoryError
from factory.template import hcljson, legacy
from factory.template import variables as V
from factory.template.collect import CascadeError, Collector
from factory.template.expr import EvalError, Namespace, Scope, evaluate
from factory.template.functions import FUNCTIONS
from factory.template.given import root_as_given
from factory.template.model import Project, Variable
from factory.template.parse import Attr, Block, parse_file, parse_text
from factory.template.plugins import BUILTIN_PLUGINS
from factory.template.sensitivity import derived_locals
from factory.template.types import Unknown

# The Packer release whose template language factory follows (packer.version, required_version checks).
PACKER_VERSION = "1.16.0"
_TOP_BLOCKS = {"packer", "variable", "variables", "locals", "local", "source", "data", "build", "communicator"}


@dataclass
class Loaded:
    """Everything the build decoder needs: parsed blocks, the evaluation scope and the collector."""

    root: Path
    files: list[Path]
    blocks: list[Block]
    scope: Scope
    decls: dict[str, V.VarDecl]
    col: Collector
    locals_: dict[str, Any] = field(default_factory=dict)
    sensitive_locals: set[str] = field(default_factory=set)


def template_files(path: Path) -> tuple[Path, list[Path], list[Path]]:
    """(root dir, *.pkr.hcl files, *.auto.pkrvars.hcl/json files) for a template file or folder."""
    if path.is_dir():
        # Packer reads a folder's *.pkr.hcl and *.pkr.json (HCL's JSON syntax) files alike.
        files = sorted(p for p in path.iterdir() if p.name.endswith((".pkr.hcl", ".pkr.json")) and p.is_file())
        auto = sorted(p for p in path.iterdir() if p.is_file()
                      and (p.name.endswith(".auto.pkrvars.hcl") or p.name.endswith(".auto.pkrvars.json")))
        if not files:
            raise FactoryError(f"no *.pkr.hcl or *.pkr.json template files in {path}",
                               hint="pass a folder with *.pkr.hcl files or one such file")
        return path, files, auto
    if path.is_file():
        return path.parent, [path], []
    what = "is neither a file nor a folder" if path.exists() else "does not exist"
    raise FactoryError(f"template {path} {what}", hint="pass a *.pkr.hcl file or a folder of them")


def prepare(path: Path, *, vars: Sequence[str] = (), var_files: Sequence[Path] = (),
            env: Mapping[str, str] | None = None, col: Collector | None = None) -> Loaded:
    """Parse every file, check the packer block, assign variables and set up locals and data sources."""
    col = col or Collector()
    env = dict(os.environ if env is None else env)
    root, files, auto = template_files(Path(path))
    blocks: list[Block] = []
    for f in files:
        try:
            blocks.extend(_top_level(_parse(f), col))
        except FactoryError as exc:
            col.add(exc)
    col.raise_if_any()   # later stages would only repeat parse errors
    for blk in blocks:
        if blk.type == "packer":
            _packer_block(blk, col)
        elif blk.type == "communicator":
            col.warn(f"{blk.file}:{blk.line}: communicator blocks are accepted but not acted on by factory; "
                     "set the ssh_* options in the source instead")
    decls = V.declare(blocks, col, env)
    V.assign(decls, auto_files=auto, var_files=[Path(p) for p in var_files], env=env, cli_vars=vars, col=col)
    root_abs = root.resolve()
    names: dict[str, Any] = {
        "var": _var_namespace(decls),
        # Packer's path.root is the template's directory as given (hcl2template's Basedir: the folder argument,
        # or filepath.Dir of the file: `templates`, `.`), not made absolute; path.cwd is absolute. A legacy JSON
        # template's {{template_dir}} (read here as path.root) is absolute: Packer's JSON core takes filepath.Abs.
        "path": Namespace("path", {"root": str(root_abs) if any(map(legacy.is_legacy_file, files))
                                   else root_as_given(Path(path)),
                                   "cwd": os.getcwd()}),
        "packer": Namespace("packer", {"version": PACKER_VERSION}),
    }
    scope = Scope("", names, FUNCTIONS, env=env)
    loaded = Loaded(root_abs, files, blocks, scope, decls, col)
    names["local"] = _locals_namespace(loaded)
    names["data"] = data = _data_namespace(loaded)
    for type_ in data.known:   # every data source is read (and warned about) even when nothing uses it
        of_type = data.entries.get(type_) or _resolve(data, type_)
        for name in of_type.known:
            _resolve(of_type, name)
    for name in names["local"].known:
        try:
            loaded.locals_[name] = names["local"].resolve(name, None)
        except EvalError as exc:
            col.add(exc)
    # After evaluation: a local derived from a secret shows as sensitive but its value is not registered as one.
    loaded.sensitive_locals |= derived_locals(blocks, {n for n, d in decls.items() if d.sensitive},
                                              loaded.sensitive_locals)
    return loaded


def _top_level(body: Block, col: Collector) -> list[Block]:
    for attr in body.attrs.values():
        col.add(FactoryError(f'unexpected attribute "{attr.name}" at the top level of a template',
                             where=attr.where(attr.name), hint="attributes belong inside a block, e.g. locals {}"))
    out = []
    for blk in body.blocks:
        if blk.type not in _TOP_BLOCKS:
            from factory.options import suggest

            close = suggest(blk.type, _TOP_BLOCKS)
            col.add(FactoryError(f'unsupported block type "{blk.type}"', where=blk.where(blk.type),
                                 hint=f'did you mean "{close}"?' if close else
                                 f"top-level blocks are {', '.join(sorted(_TOP_BLOCKS))}"))
            continue
        out.append(blk)
    return out


def _packer_block(blk: Block, col: Collector) -> None:
    scope = Scope(blk.file, {}, FUNCTIONS, block="packer")
    if "required_version" in blk.attrs:
        at = blk.attrs["required_version"]
        try:
            spec = evaluate(at.expr, scope.with_block("packer.required_version", at.file))
        except EvalError as exc:
            col.add(exc)
        else:
            if not version_matches(str(spec), PACKER_VERSION):
                col.add(FactoryError(f'this template requires Packer {spec}; factory follows Packer {PACKER_VERSION}',
                                     where=at.where("packer.required_version"),
                                     hint="adjust required_version if the template works with this version"))
    for rp in blk.children("required_plugins"):
        for attr in rp.attrs.values():
            _required_plugin(attr, scope, col)


def _required_plugin(attr: Attr, scope: Scope, col: Collector) -> None:
    try:
        spec = evaluate(attr.expr, scope.with_block(f"packer.required_plugins.{attr.name}", attr.file))
    except EvalError as exc:
        col.add(exc)
        return
    source = str(spec.get("source", "")) if isinstance(spec, dict) else ""
    if source.lower() not in BUILTIN_PLUGINS:
        col.warn(f"{attr.file}:{attr.line}: plugin {attr.name} ({source or 'no source'}) is not built into "
                 "factory; templates may use only its components that factory implements")


_CONSTRAINT = re.compile(r"\s*(>=|<=|!=|~>|=|>|<)?\s*v?([0-9][0-9A-Za-z.\-+]*)\s*")


def _vtuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text.split("-")[0])[:3])


def version_matches(spec: str, version: str) -> bool:
    """Whether version satisfies a Go-version constraint list (">= 1.7.0, < 2.0.0", "~> 1.9")."""
    have = _vtuple(version)
    for part in spec.split(","):
        m = _CONSTRAINT.fullmatch(part)
        if not m:
            return False
        op, want_text = m.group(1) or "=", m.group(2)
        want = _vtuple(want_text)
        padded = have[:len(want)] if op != "~>" else have
        if op == "~>":
            prefix = want[:-1] if len(want) > 1 else want
            if not (have[:len(prefix)] == prefix and have >= want):
                return False
            continue
        ok = {"=": padded == want, "!=": padded != want, ">": have > want, "<": have < want,
              ">=": have >= want, "<=": padded <= want}[op]
        if not ok:
            return False
    return True


def _parse(path: Path) -> Block:
    """A template file's blocks; a legacy JSON template is read as its HCL2 upgrade."""
    if hcljson.is_hcl_json(path):
        return parse_text(hcljson.to_hcl(path), hcljson.label(path))
    if legacy.is_legacy_file(path):
        return parse_text(legacy.upgrade_file(path).text, legacy.upgraded_label(path))
    return parse_file(path)


def _var_namespace(decls: dict[str, V.VarDecl]) -> Namespace:
    def resolve(name: str, node: Any) -> Any:
        raise CascadeError(f'variable "{name}" has no valid value')
    ok = {n: d.value for n, d in decls.items() if not d.failed}
    ns = Namespace("var", ok, resolve, names=list(decls), what="variable")
    ns.entries = ok
    return ns


def _locals_namespace(loaded: Loaded) -> Namespace:
    """local.X evaluates X on first use, so locals may reference locals in any order; cycles are errors."""
    attrs: dict[str, Attr] = {}
    state: dict[str, Any] = {}
    evaluating: list[str] = []
    col = loaded.col
    for blk in loaded.blocks:
        if blk.type == "locals":
            items = list(blk.attrs.values())
        elif blk.type == "local" and blk.labels and "expression" in blk.attrs:
            e = blk.attrs["expression"]
            items = [Attr(blk.labels[0], e.expr, e.file, e.line, e.column)]
            if "sensitive" in blk.attrs:
                loaded.sensitive_locals.add(blk.labels[0])
        else:
            if blk.type == "local":
                col.add(FactoryError('a local block needs a label and an expression', where=blk.where("local"),
                                     hint='local "name" { expression = ... }'))
            continue
        for a in items:
            if a.name in attrs:
                first = attrs[a.name]
                col.add(FactoryError(f'local "{a.name}" is defined twice', where=a.where(f"local.{a.name}"),
                                     hint=f"the first definition is at {first.file}:{first.line}"))
                continue
            attrs[a.name] = a

    def resolve(name: str, node: Any) -> Any:
        if name in state:
            if isinstance(state[name], _Failed):
                raise CascadeError(f'local "{name}" failed')
            return state[name]
        a = attrs[name]
        if name in evaluating:
            chain = " → ".join([*evaluating[evaluating.index(name):], name])
            raise EvalError(f"locals reference each other in a cycle: {chain}",
                            where=a.where(f"local.{name}"), hint="break the cycle by computing one of them "
                            "from variables only")
        evaluating.append(name)
        try:
            value = evaluate(a.expr, loaded.scope.with_block(f"local.{name}", a.file))
        except EvalError as exc:
            state[name] = _Failed()
            col.add(exc)
            raise CascadeError(f'local "{name}" failed') from None
        finally:
            evaluating.pop()
        state[name] = value
        if name in loaded.sensitive_locals:
            V.register_sensitive(value)
        return value

    return Namespace("local", None, resolve, names=list(attrs), what="local value")


def _resolve(ns: Namespace, name: str) -> Any:
    assert ns.resolve is not None
    return ns.resolve(name, None)


class _Failed:
    pass


def _data_namespace(loaded: Loaded) -> Namespace:
    from factory.template.data import data_source_value

    by_type: dict[str, dict[str, Block]] = {}
    for blk in loaded.blocks:
        if blk.type != "data":
            continue
        if len(blk.labels) != 2:
            loaded.col.add(FactoryError('a data block needs a type and a name: data "TYPE" "NAME" { ... }',
                                        where=blk.where("data")))
            continue
        by_type.setdefault(blk.labels[0], {})[blk.labels[1]] = blk
    cache: dict[tuple[str, str], Any] = {}

    def of_type(type_: str, node: Any) -> Namespace:
        blocks = by_type[type_]

        def one(name: str, node2: Any) -> Any:
            key = (type_, name)
            if key not in cache:
                cache[key] = data_source_value(blocks[name], loaded.scope, loaded.col)
            return cache[key]
        return Namespace(f"data.{type_}", None, one, names=list(blocks), what="data source")

    return Namespace("data", None, of_type, names=list(by_type), what="data source type")


def variables_of(loaded: Loaded) -> dict[str, Variable]:
    """The Project's variables (sorted by name) from the evaluated declarations."""
    return {n: Variable(n, d.value if not d.failed else Unknown("invalid"), d.type_text, d.sensitive,
                        d.description) for n, d in sorted(loaded.decls.items())}


def load(path: Path, *, vars: Sequence[str] = (), var_files: Sequence[Path] = (), only: Sequence[str] = (),
         except_: Sequence[str] = (), env: Mapping[str, str] | None = None, syntax_only: bool = False,
         skip_unknown_sources: bool = False) -> Project:
    """Load a template file or folder into a Project; every problem is raised at once (FactoryErrors).

    skip_unknown_sources: leave out (with a warning) selected sources of builders factory lacks instead of
    failing, for `inspect`, which like Packer's shows a template without decoding its sources."""
    from factory.template.builds import decode_builds

    col = Collector()
    if syntax_only:
        root, files, _ = template_files(Path(path))
        for f in files:
            try:
                _top_level(_parse(f), col)
            except FactoryError as exc:
                col.add(exc)
        col.raise_if_any()
        return Project(root.resolve(), {}, [], files=files)
    loaded = prepare(Path(path), vars=vars, var_files=var_files, env=env, col=col)
    if any(legacy.is_legacy_file(f) for f in loaded.files):
        only, except_ = legacy.selection(loaded.files, only), legacy.selection(loaded.files, except_)
    builds = decode_builds(loaded, tuple(only), tuple(except_), skip_unknown_sources)
    col.raise_if_any()
    return Project(loaded.root, variables_of(loaded), builds, dict(loaded.locals_), list(col.warnings),
                   loaded.files, frozenset(loaded.sensitive_locals))

