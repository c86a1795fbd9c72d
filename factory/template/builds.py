"""`source` and `build` blocks → Build models: source selection (-only/-except), overrides, provisioners and
post-processor chains with their meta-arguments.

Provisioners are evaluated once per selected source they apply to, with `source.name`/`source.type` bound;
`build.X` connection facts stay Go-template placeholders (`{{ .Host }}`) that the runtime fills.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lark import Tree

from factory.errors import FactoryError, FactoryErrors, Location
from factory.options import Component, Kind, suggest
from factory.schema import lookup
from factory.template.collect import Collector
from factory.template.config import Body, evaluate_body, make_component
from factory.template.dynamic import expand
from factory.template.expr import EvalError, Namespace, Scope, evaluate
from factory.template.model import Build, Listed, PostProcessorSpec, ProvisionerSpec, SourceRef, matches
from factory.template.model import selected as step_applies
from factory.template.parse import Attr, Block, locate

if TYPE_CHECKING:  # the loader calls decode_builds with what it loaded: the dependency runs loader -> builds
    from factory.template.loader import Loaded

PROVISIONER_META = frozenset({"name", "pause_before", "max_retries", "timeout", "only", "except", "override",
                              "continue_on_error"})
POST_META = frozenset({"name", "only", "except", "keep_input_artifact"})
BUILD_FACTS = ("name", "ID", "Host", "Port", "User", "Password", "ConnType", "PackerRunUUID", "PackerHTTPIP",
               "PackerHTTPPort", "PackerHTTPAddr", "SSHPublicKey", "SSHPrivateKey", "WinRMUser", "WinRMPassword",
               "SourceAMIName", "SourceImageName")


@dataclass(frozen=True)
class _Selected:
    type: str
    name: str          # the name the build gives it (after `name = ...` in the build's source block)
    origin: str        # the declared source name
    full_name: str
    block: Block
    override: Block | None
    where: Location


def decode_builds(loaded: Loaded, only: tuple[str, ...], except_: tuple[str, ...],
                  skip_unknown_sources: bool = False) -> list[Build]:
    """Every build block, with its sources filtered by -only/-except; problems go to loaded.col."""
    col = loaded.col
    sources = _sources(loaded.blocks, col)
    build_blocks = [b for b in loaded.blocks if b.type == "build"]
    if not build_blocks:
        col.add(FactoryError("the template has no build block",
                             where=Location(str(loaded.files[0])) if loaded.files else None,
                             hint='add build { sources = ["source.TYPE.NAME"] }'))
    builds = []
    for i, blk in enumerate(build_blocks):
        path = "build" if len(build_blocks) == 1 else f"build[{i}]"
        blk = expand(blk, loaded.scope, col)
        b = _build(loaded, blk, path, sources, only, except_, skip_unknown_sources)
        if b is not None:
            builds.append(b)
    if (only or except_) and not any(b.sources for b in builds) and not col.errors:
        names = sorted(_build_names(loaded))
        col.add(FactoryError("no source matches the -only/-except filters",
                             hint=f"the builds here are: {', '.join(names) or 'none'} (globs like qemu.* work)"))
    return builds


def _build_names(loaded: Loaded) -> set[str]:
    """Packer's build names (BUILD.TYPE.NAME, or TYPE.NAME for unnamed builds), for hints."""
    out = set()
    for blk in (b for b in loaded.blocks if b.type == "build"):
        quiet = Collector()
        name = str(_static(blk.attrs.get("name"), loaded.scope, "build", quiet, "") or "")
        refs = [str(x) for x in (_static(blk.attrs.get("sources"), loaded.scope, "build", quiet, []) or [])]
        refs += [sb.labels[0] for sb in blk.children("source") if sb.labels]
        for ref in refs:
            key = ref.removeprefix("source.")
            out.add(f"{name}.{key}" if name else key)
    return out


def _sources(blocks: list[Block], col: Collector) -> dict[str, Block]:
    out: dict[str, Block] = {}
    for blk in blocks:
        if blk.type != "source":
            continue
        if len(blk.labels) != 2:
            col.add(FactoryError('a source block needs a type and a name: source "TYPE" "NAME" { ... }',
                                 where=blk.where("source")))
            continue
        key = ".".join(blk.labels)
        if key in out:
            col.add(FactoryError(f'duplicate source "{key}"', where=blk.where(f"source.{key}"),
                                 hint=f"the first one is at {out[key].file}:{out[key].line}"))
            continue
        out[key] = blk
    return out


def _static(attr: Attr | None, scope: Scope, path: str, col: Collector, default: Any) -> Any:
    if attr is None:
        return default
    try:
        sc = scope.with_block(f"{path}.{attr.name}", attr.file)
        value = evaluate(attr.expr, sc.bind(attr.bound) if attr.bound else sc)
    except EvalError as exc:
        col.add(exc)
        return default
    return default if value is None else value  # null means unset, as in Packer (`except = null`)


def _build(loaded: Loaded, blk: Block, path: str, sources: dict[str, Block], only: tuple[str, ...],
           except_: tuple[str, ...], skip_unknown: bool = False) -> Build | None:
    col, scope = loaded.col, loaded.scope
    name = str(_static(blk.attrs.get("name"), scope, path, col, "") or "")
    description = str(_static(blk.attrs.get("description"), scope, path, col, "") or "")
    for attr in blk.attrs.values():
        if attr.name not in ("name", "description", "sources"):
            col.add(FactoryError(f'unsupported argument "{attr.name}" in a build block',
                                 where=attr.where(f"{path}.{attr.name}"),
                                 hint="a build holds name, description, sources and source/provisioner/"
                                      "post-processor blocks"))
    refs = _source_refs(blk, path, scope, sources, col)
    selected = [r for r in refs if (not only or matches(only, r.full_name, name))
                and not (except_ and matches(except_, r.full_name, name))]
    for r in refs:
        if lookup(Kind.SOURCE, r.type) is None:
            if r in selected and not skip_unknown:
                col.add(FactoryError(f'unknown source type "{r.type}" (selected source {r.full_name})',
                                     where=r.where, hint=f"factory builds qemu, virtualbox-* and null sources; leave "
                                     f"this one out with -except {r.full_name} or pick others with -only"))
            else:
                why = "is left out" if r in selected else "is not selected and was skipped"
                col.warn(f"{r.where.file}:{r.where.line}: source {r.full_name} (type {r.type}, not implemented "
                         f"by factory) {why}")
    if refs and not selected:
        return None
    runnable = [r for r in selected if lookup(Kind.SOURCE, r.type) is not None]
    source_refs = [s for s in (_source(loaded, r, path) for r in runnable) if s is not None]
    ctx = _StepContext(loaded, runnable, name, path)
    provs = [p for i, b in enumerate(blk.children("provisioner"))
             if (p := ctx.provisioner(b, f"{path}.provisioner[{i}]")) is not None]
    cleanup_blocks = blk.children("error-cleanup-provisioner")
    cleanup = ctx.provisioner(cleanup_blocks[0], f"{path}.error-cleanup-provisioner") if cleanup_blocks else None
    chains = _except_post_processors(_chains(ctx, blk, path), except_)
    for nested in blk.blocks:
        if nested.type not in ("source", "provisioner", "error-cleanup-provisioner", "post-processor",
                               "post-processors", "hcp_packer_registry"):
            close = suggest(nested.type, ["source", "provisioner", "post-processor", "post-processors"])
            col.add(FactoryError(f'unsupported block "{nested.type}" in a build block',
                                 where=nested.where(f"{path}.{nested.type}"),
                                 hint=f'did you mean "{close}"?' if close else None))
    for nested in blk.children("hcp_packer_registry"):
        col.warn(f"{nested.file}:{nested.line}: {path}.hcp_packer_registry is accepted but not acted on by factory "
                 "(no HCP Packer registry offline)")
    listed = Listed(tuple(r.full_name for r in selected), tuple(_step_names(blk.children("provisioner"), scope)),
                    tuple(tuple(_step_names(chain, scope)) for chain in _written_chains(blk)))
    return Build(name, description, source_refs, provs, cleanup, chains, blk.where(path), listed)


def _written_chains(blk: Block) -> list[list[Block]]:
    """post-processor blocks (each a chain of one) and post-processors blocks, in file order."""
    return [[nested] if nested.type == "post-processor" else nested.children("post-processor")
            for nested in blk.blocks if nested.type in ("post-processor", "post-processors")
            and (nested.type == "post-processor" or nested.children("post-processor"))]


def _step_names(blocks: list[Block], scope: Scope) -> list[str]:
    """`TYPE` or `TYPE.NAME` of each step block (a name that does not evaluate is left out, quietly)."""
    out = []
    for b in blocks:
        type_ = b.labels[0] if b.labels else b.type
        name = _static(b.attrs.get("name"), scope, "", Collector(), "")
        out.append(f"{type_}.{name}" if isinstance(name, str) and name else type_)
    return out


def _source_refs(blk: Block, path: str, scope: Scope, sources: dict[str, Block], col: Collector
                 ) -> list[_Selected]:
    out: list[_Selected] = []
    listed = blk.attrs.get("sources")
    names = _static(listed, scope, path, col, [])
    items: list[tuple[str, Block | None, Location]] = []
    if not isinstance(names, list):
        if listed is not None:
            col.add(FactoryError("sources must be a list of source references like \"source.qemu.base\"",
                                 where=listed.where(f"{path}.sources")))
        names = []
    elements = _tuple_elements(listed.expr) if listed is not None else []
    for i, n in enumerate(names):
        assert listed is not None
        where = listed.where(f"{path}.sources[{i}]")
        if len(elements) == len(names):   # point at the list element itself
            where = locate(listed.file, elements[i], f"{path}.sources[{i}]")
        items.append((str(n), None, where))
    for sb in blk.children("source"):
        if len(sb.labels) != 1:
            col.add(FactoryError('a source block inside build takes one label: source "source.TYPE.NAME" {}',
                                 where=sb.where(f"{path}.source")))
            continue
        items.append((sb.labels[0], sb, sb.where(f"{path}.source")))
    for ref, override, where in items:
        key = ref.removeprefix("source.")
        if key not in sources:
            close = suggest(key, sources)
            col.add(FactoryError(f'reference to undeclared source "{ref}"', where=where,
                                 hint=f'did you mean "source.{close}"?' if close else
                                 f"declared sources: {', '.join(sorted(sources)) or 'none'}"))
            continue
        type_, origin = key.split(".", 1)
        name = origin
        if override is not None and "name" in override.attrs:
            name = str(_static(override.attrs["name"], scope, f"{path}.source", col, origin))
        full = f"{type_}.{name}"
        if any(o.full_name == full for o in out):
            col.add(FactoryError(f'source "{full}" is used twice in this build', where=where,
                                 hint='give one of them another name with source "..." { name = "other" }'))
            continue
        out.append(_Selected(type_, name, origin, full, sources[key], override, where))
    return out


def _tuple_elements(expr: Any) -> list[Any]:
    """The element nodes of a literal list expression ([] if it is anything else)."""
    node = expr
    while isinstance(node, Tree) and node.data == "expr_term" and len(node.children) == 1:
        node = node.children[0]
    if not (isinstance(node, Tree) and node.data == "tuple"):
        return []
    return [c for c in node.children if isinstance(c, Tree) and c.data != "new_line_or_comment"]


def _source_scope(scope: Scope, type_: str, name: str, build_name: str) -> Scope:
    facts = Namespace("build", {k: f"{{{{ .{k} }}}}" for k in BUILD_FACTS}, what="build fact")
    facts.entries["name"] = build_name
    names = {**scope.names, "source": Namespace("source", {"name": name, "type": type_}), "build": facts}
    return Scope(scope.file, names, scope.functions, scope.block, False, scope.env, {})


def _source(loaded: Loaded, r: _Selected, path: str) -> SourceRef | None:
    scope = _source_scope(loaded.scope, r.type, r.name, "")
    spath = f"source.{r.type}.{r.origin}"
    body = evaluate_body(expand(r.block, scope, loaded.col), scope, spath, loaded.col)
    if r.override is not None:
        for name, attr in r.override.attrs.items():
            if name in r.block.attrs:   # Packer merges, it does not override: a field set twice is an error
                first = r.block.attrs[name]
                loaded.col.add(FactoryError(
                    f'"{name}" is set both in source "{r.type}" "{r.origin}" and in this build\'s source block',
                    where=attr.where(f"{path}.source.{name}"),
                    hint=f"remove one of them (the other is at {first.file}:{first.line}); build-level source "
                         "blocks fill in fields, they cannot overwrite them"))
                return None
        body = evaluate_body(expand(r.override, scope, loaded.col), scope, f"{path}.source", loaded.col,
                             skip=frozenset({"name"}), body=body)
    config = make_component(Kind.SOURCE, r.type, body, r.block.where(spath), spath, loaded.col)
    if config is None:
        return None
    return SourceRef(r.type, r.name, r.full_name, config, r.block.where(spath))


class _StepContext:
    """Evaluates provisioner and post-processor blocks for a build's selected sources."""

    def __init__(self, loaded: Loaded, selected: list[_Selected], build_name: str, path: str) -> None:
        self.loaded, self.selected, self.build_name, self.path = loaded, selected, build_name, path
        self.col = loaded.col

    def _scope_for(self, r: _Selected | None) -> Scope:
        if r is None:
            return _source_scope(self.loaded.scope, "", "", self.build_name)
        return _source_scope(self.loaded.scope, r.type, r.name, self.build_name)

    def _meta_list(self, blk: Block, key: str, path: str) -> tuple[str, ...]:
        value = _static(blk.attrs.get(key), self._scope_for(None), path, self.col, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.col.add(FactoryError(f"{key} must be a list of source names like \"qemu.base\"",
                                      where=blk.attrs[key].where(f"{path}.{key}")))
            return ()
        return tuple(value)

    def _duration(self, blk: Block, key: str, path: str) -> float | None:
        from factory.schema.types import parse_duration

        value = _static(blk.attrs.get(key), self._scope_for(None), path, self.col, None)
        if value is None:
            return None
        try:
            return parse_duration(str(value), what=key)
        except FactoryError as exc:
            self.col.add(FactoryError(exc.message, hint=exc.hint, where=blk.attrs[key].where(f"{path}.{key}")))
            return None

    def _evaluate(self, blk: Block, kind: Kind, path: str, r: _Selected | None, skip: frozenset[str],
                  col: Collector, extra: dict[str, Any] | None = None) -> Component | None:
        body = evaluate_body(blk, self._scope_for(r), path, col, skip=skip)
        for k, v in (extra or {}).items():
            body.values[k] = v
        return make_component(kind, blk.labels[0], body, blk.where(path), path, col)

    def _per_source(self, blk: Block, kind: Kind, path: str, applicable: list[_Selected], meta: frozenset[str]
                    ) -> dict[str, Component] | None:
        """The step's config for each source it applies to. A step that applies to none is still decoded (inspect
        lists it), but like Packer, which never decodes it then, its problems are only warnings."""
        out: dict[str, Component] = {}
        if applicable:
            for r in applicable:
                c = self._evaluate(blk, kind, path, r, meta, self.col)
                if c is None:
                    return None
                out[r.full_name] = c
            return out
        quiet = Collector()
        first = self.selected[0] if self.selected else None
        c = self._evaluate(blk, kind, path, first, meta, quiet)
        if c is None or quiet.errors:
            self.col.warn(f"{blk.file}:{blk.line}: {path} applies to no selected source and was skipped: "
                          f"{quiet.errors[0].message if quiet.errors else 'invalid'}")
            return None
        out[first.full_name if first else ""] = c
        return out

    def _type_ok(self, blk: Block, kind: Kind, path: str, applicable: list[_Selected]) -> bool:
        if len(blk.labels) != 1:
            self.col.add(FactoryError(f'a {kind} block takes one label, its type: {kind} "shell" {{ ... }}',
                                      where=blk.where(path)))
            return False
        if lookup(kind, blk.labels[0]) is not None:
            return True
        if applicable:
            make_component(kind, blk.labels[0], Body({}, {}), blk.where(path), path, self.col)
        else:
            self.col.warn(f"{blk.file}:{blk.line}: {path}: {kind} \"{blk.labels[0]}\" is not implemented by "
                          "factory and applies to no selected source; skipped")
        return False

    def _head(self, blk: Block, kind: Kind, path: str
              ) -> tuple[tuple[str, ...], tuple[str, ...], list[_Selected], str] | None:
        """A step's only/except, the selected sources it applies to and its name (None: skip the step)."""
        only = self._meta_list(blk, "only", path) if "only" in blk.attrs else ()
        except_ = self._meta_list(blk, "except", path) if "except" in blk.attrs else ()
        applicable = [r for r in self.selected if step_applies(only, except_, r.full_name)]
        if not self._type_ok(blk, kind, path, applicable):
            return None
        name = str(_static(blk.attrs.get("name"), self._scope_for(None), path, self.col, "") or "")
        return only, except_, applicable, name

    def provisioner(self, blk: Block, path: str) -> ProvisionerSpec | None:
        col, scope = self.col, self._scope_for(None)
        head = self._head(blk, Kind.PROVISIONER, path)
        if head is None:
            return None
        only, except_, applicable, name = head
        override = _static(blk.attrs.get("override"), scope, path, col, {}) or {}
        if not isinstance(override, dict) or not all(isinstance(v, dict) for v in override.values()):
            col.add(FactoryError('override must map source names to objects: override = { "qemu.base" = {...} }',
                                 where=blk.attrs["override"].where(f"{path}.override")))
            override = {}
        retries = _static(blk.attrs.get("max_retries"), scope, path, col, 0)
        if "continue_on_error" in blk.attrs:
            col.warn(f"{blk.file}:{blk.line}: {path}.continue_on_error is accepted but not acted on by factory")
        per_source = self._per_source(blk, Kind.PROVISIONER, path, applicable, PROVISIONER_META)
        if per_source is None:
            return None
        by_name = {r.full_name: r for r in self.selected}

        def rebuild(full_name: str, extra: dict[str, Any]) -> Component:
            local = Collector()
            c = self._evaluate(blk, Kind.PROVISIONER, path, by_name.get(full_name), PROVISIONER_META, local, extra)
            if c is None or local.errors:
                raise FactoryErrors(local.errors) if len(local.errors) > 1 else local.errors[0]
            return c

        first = next(iter(per_source.values()))
        for r in applicable:   # validate overrides now, as Packer does, not when the step runs
            extra = override.get(r.full_name) or override.get(r.type)
            if extra:
                try:
                    per_source[r.full_name] = rebuild(r.full_name, extra)
                except FactoryError as exc:
                    col.add(exc)
                    return None
        try:
            max_retries = int(retries)
        except (TypeError, ValueError):
            col.add(FactoryError("max_retries must be a whole number", where=blk.attrs["max_retries"].where(path)))
            max_retries = 0
        return ProvisionerSpec(blk.labels[0], name, first, only, except_, override,
                               self._duration(blk, "pause_before", path) or 0.0, max_retries,
                               self._duration(blk, "timeout", path), blk.where(path), per_source, rebuild)

    def post_processor(self, blk: Block, path: str) -> PostProcessorSpec | None:
        col, scope = self.col, self._scope_for(None)
        head = self._head(blk, Kind.POST_PROCESSOR, path)
        if head is None:
            return None
        only, except_, applicable, name = head
        keep = _static(blk.attrs.get("keep_input_artifact"), scope, path, col, None)
        if keep is not None and not isinstance(keep, bool):
            col.add(FactoryError("keep_input_artifact must be true or false",
                                 where=blk.attrs["keep_input_artifact"].where(f"{path}.keep_input_artifact")))
            keep = None
        per_source = self._per_source(blk, Kind.POST_PROCESSOR, path, applicable, POST_META)
        if per_source is None:
            return None
        first = next(iter(per_source.values()))
        return PostProcessorSpec(blk.labels[0], name, first, only, except_, keep, blk.where(path), per_source)


def _except_post_processors(chains: list[list[PostProcessorSpec]], except_: tuple[str, ...]
                            ) -> list[list[PostProcessorSpec]]:
    """-except also names post-processors (by `name`, else type; globs): as in Packer's
    getCoreBuildPostProcessors, a chain stops at the first one excepted and keeps those before it."""
    out = []
    for chain in chains:
        kept = []
        for spec in chain:
            if any(fnmatch.fnmatchcase(spec.name or spec.type, p) for p in except_):
                break
            kept.append(spec)
        if kept:
            out.append(kept)
    return out


def _chains(ctx: _StepContext, blk: Block, path: str) -> list[list[PostProcessorSpec]]:
    chains: list[list[PostProcessorSpec]] = []
    lone = pp_chain = 0
    for nested in blk.blocks:
        if nested.type == "post-processor":
            spec = ctx.post_processor(nested, f"{path}.post-processor[{lone}]")
            lone += 1
            if spec is not None:
                chains.append([spec])
        elif nested.type == "post-processors":
            chain_path = f"{path}.post-processors[{pp_chain}]"
            pp_chain += 1
            chain = [s for j, b in enumerate(nested.children("post-processor"))
                     if (s := ctx.post_processor(b, f"{chain_path}.post-processor[{j}]")) is not None]
            if chain:
                chains.append(chain)
    return chains
