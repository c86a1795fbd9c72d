"""Legacy Packer JSON templates (`builders` / `provisioners` / `post-processors` arrays) as HCL2.

`upgrade()` writes the HCL2 template that builds the same thing, in the shape `packer hcl2_upgrade` gives: a
`variable` block per user variable (`sensitive-variables` marked sensitive; one whose default uses another
variable becomes a local, as HCL2 defaults cannot), a `source "TYPE" "NAME"` per builder (NAME is the builder's
`name`, else its type, so `-only=NAME` keeps working), and one `build` with the provisioners and post-processors
(a nested array is a `post-processors` chain). Go-template calls become HCL2 expressions:

    {{user `x`}} → ${var.x}        {{env `X`}} → ${env("X")}     {{timestamp}} → ${local.timestamp}
    {{isotime `fmt`}} → ${legacy_isotime("fmt")}   {{strftime `fmt`}} → ${legacy_strftime("fmt")}
    {{template_dir}} → ${path.root}   {{pwd}} → ${path.cwd}   {{uuid}} → ${uuidv4()}
    {{build_name}} → ${source.name}  {{build_type}} → ${source.type}   {{packer_version}} → ${packer.version}
    {{upper `a`}} / {{lower `a`}} → ${upper("a")} / ${lower("a")}     {{build `X`}} → ${build.X}
    {{replace_all "-" "_" S}} → ${replace(S, "-", "_")}   {{replace "-" "_" -1 S}} → the same (n ≥ 0: split/join)
    {{split S "-" 0}} → ${split("-", S)[0]}      arguments may be parenthesised calls: (user `v`)

Placeholders a builder fills in at run time (`{{ .HTTPIP }}`, `{{ .Vars }}` ...) stay as they are, as in HCL2
templates. factory reads legacy templates by upgrading them in memory; `factory hcl2_upgrade` writes the result.

A `{{user `x`}}` whose x the template does not declare is still a user variable in legacy Packer: -var and
-var-file set it, and unset it renders "". The upgrade declares each such variable with that default (after the
declared ones), so templates whose var files carry their ISO names and checksums keep working.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from factory.errors import FactoryError, Location
from factory.textfile import check_nesting, read_text

_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.S)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_PROVISIONER_META = ("only", "except", "override", "pause_before", "max_retries", "timeout")


def is_legacy(data: Any) -> bool:
    return isinstance(data, dict) and "builders" in data


def read_json(path: Path) -> Any:
    """A JSON file's value; FactoryError with line:column on a syntax error, bad UTF-8 or too deep nesting."""
    text = read_text(path, "template")
    check_nesting(text, str(path))  # json.loads recurses per level: ~1,000 brackets were a RecursionError
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        lines = text.splitlines()
        shown = lines[exc.lineno - 1] if 0 < exc.lineno <= len(lines) else ""
        raise FactoryError(f"invalid JSON: {exc.msg}", where=Location(str(path), exc.lineno, exc.colno, "", shown),
                           hint="fix the JSON syntax") from None


@dataclass
class _Context:
    locals_: set[str] = field(default_factory=set)
    used: dict[str, None] = field(default_factory=dict)   # user variables referenced, in order of first use
    timestamp: bool = False
    kept: set[str] = field(default_factory=set)     # Go-template actions left as they are


_TOKEN = re.compile(r'\s*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|`([^`]*)`|(-?\d+)\b|([A-Za-z_]\w*))')
_Node = tuple[str, Any]    # ("str", text) | ("num", n) | ("word", name) | ("call", [nodes])


def _parse(action: str) -> list[_Node] | None:
    """A Go-template action's words: literals, names and parenthesised calls; None for what it cannot read
    (pipelines, fields), which is then kept as written."""
    stack: list[list[_Node]] = [[]]
    pos = 0
    while pos < len(action.rstrip()):
        m = _TOKEN.match(action, pos)
        if not m:
            return None
        pos = m.end()
        if m.group(1):
            stack.append([])
        elif m.group(2):
            if len(stack) == 1:
                return None
            inner = stack.pop()
            stack[-1].append(("call", inner))
        elif m.group(3) is not None:
            try:
                stack[-1].append(("str", json.loads(f'"{m.group(3)}"')))
            except ValueError:
                return None
        elif m.group(4) is not None:
            stack[-1].append(("str", m.group(4)))
        elif m.group(5):
            stack[-1].append(("num", int(m.group(5))))
        else:
            stack[-1].append(("word", m.group(6)))
    return stack[0] if len(stack) == 1 and stack[0] else None


def _call(action: str, ctx: _Context) -> str | None:
    """The HCL2 expression for one `{{ ... }}` action, or None to keep it as written."""
    if action.startswith("."):
        return None
    words = _parse(action)
    return _expr(words, ctx) if words else None


def _arg(node: _Node, ctx: _Context) -> str | None:
    kind, value = node
    if kind == "str":
        return '"' + _literal(value) + '"'
    if kind == "num":
        return str(value)
    if kind == "call":
        return _expr(value, ctx)
    return _expr([node], ctx)    # a bare function name: {{ lower (timestamp) }}


def _expr(words: list[_Node], ctx: _Context) -> str | None:
    """One call of Packer's legacy template engine (template/interpolate/funcs.go) as HCL2."""
    (kind, fn), rest = words[0], words[1:]
    if kind != "word":
        return _arg(words[0], ctx) if not rest else None
    if fn == "user" and len(rest) == 1 and rest[0][0] == "str":
        name = rest[0][1]
        ctx.used.setdefault(name)
        kind = "local" if name in ctx.locals_ else "var"
        return f"{kind}.{name}" if _IDENT.fullmatch(name) else f'{kind}["{name}"]'
    if fn == "timestamp" and not rest:
        ctx.timestamp = True
        return "local.timestamp"
    if fn == "build" and len(rest) == 1 and rest[0][0] == "str":
        return f"build.{rest[0][1]}"
    args = [_arg(n, ctx) for n in rest]
    if any(a is None for a in args):
        return None
    a = [str(x) for x in args]
    calls: dict[tuple[str, int], Callable[[], str]] = {
        ("env", 1): lambda: f"env({a[0]})", ("isotime", 0): lambda: "timestamp()",
        ("isotime", 1): lambda: f"legacy_isotime({a[0]})", ("strftime", 1): lambda: f"legacy_strftime({a[0]})",
        ("template_dir", 0): lambda: "path.root", ("pwd", 0): lambda: "path.cwd", ("uuid", 0): lambda: "uuidv4()",
        ("build_name", 0): lambda: "source.name", ("build_type", 0): lambda: "source.type",
        ("packer_version", 0): lambda: "packer.version", ("upper", 1): lambda: f"upper({a[0]})",
        ("lower", 1): lambda: f"lower({a[0]})",
        # replace_all OLD NEW S / replace OLD NEW N S (strings.Replace) / split S SEP N (Packer's funcGenSplitter)
        ("replace_all", 3): lambda: f"replace({a[2]}, {a[0]}, {a[1]})",
        ("replace", 4): lambda: _replace_n(a[3], a[0], a[1], a[2]),
        ("split", 3): lambda: f"split({a[1]}, {a[0]})[{a[2]}]",
    }
    make = calls.get((fn, len(a)))
    return make() if make else None


def _replace_n(text: str, old: str, new: str, n: str) -> str:
    """Go's strings.Replace(text, old, new, n) with Packer's HCL2 functions: every occurrence when n < 0, else the
    first n: the pieces before them joined with new, the rest joined back with old."""
    if n.lstrip("-").isdigit() and int(n) < 0:
        return f"replace({text}, {old}, {new})"
    parts = f"split({old}, {text})"
    cut = f"min({n}, length({parts}) - 1)"
    return f"join({new}, concat(slice({parts}, 0, {cut}), [join({old}, slice({parts}, {cut}, length({parts})))]))"


def _literal(text: str) -> str:
    """Text inside an HCL quoted string: escaped, and `${` / `%{` doubled so they stay literal."""
    text = json.dumps(text, ensure_ascii=False)[1:-1]
    return text.replace("${", "$${").replace("%{", "%%{")


def template(text: str, ctx: _Context) -> str:
    """A legacy string as an HCL quoted template (with its quotes)."""
    out, pos = [], 0
    for m in _ACTION.finditer(text):
        out.append(_literal(text[pos:m.start()]))
        expr = _call(m.group(1), ctx)
        if expr is None:
            ctx.kept.add(m.group(0))
            out.append(_literal(m.group(0)))
        else:
            out.append("${" + expr + "}")
        pos = m.end()
    out.append(_literal(text[pos:]))
    return '"' + "".join(out) + '"'


def value(v: Any, ctx: _Context, indent: str = "") -> str:
    """A JSON value as an HCL expression."""
    if isinstance(v, str):
        return template(v, ctx)
    if isinstance(v, bool) or v is None or isinstance(v, int | float):
        return json.dumps(v)
    if isinstance(v, list):
        items = [value(x, ctx, indent + "  ") for x in v]
        if len(items) > 1 and sum(len(i) for i in items) > 60:
            inner = "".join(f"{indent}  {i},\n" for i in items)
            return f"[\n{inner}{indent}]"
        return "[" + ", ".join(items) + "]"
    if isinstance(v, dict):
        if not v:
            return "{}"
        rows = "".join(f"{indent}  {_key(k)} = {value(x, ctx, indent + '  ')}\n" for k, x in v.items())
        return "{\n" + rows + indent + "}"
    raise FactoryError(f"unsupported JSON value {v!r}")


def _key(k: str) -> str:
    return k if _IDENT.fullmatch(k) else json.dumps(k)


def _body(options: dict[str, Any], ctx: _Context, indent: str, skip: tuple[str, ...] = ()) -> str:
    return "".join(f"{indent}{_key(k)} = {value(v, ctx, indent)}\n" for k, v in options.items() if k not in skip)


@dataclass
class Upgraded:
    text: str
    builders: dict[str, str]        # legacy builder name → HCL2 source full name (TYPE.NAME)
    kept: set[str]                  # Go-template actions left unconverted
    data: dict[str, Any] = field(default_factory=dict)   # the legacy template itself


def upgrade(data: Any, file: str) -> Upgraded:
    """The HCL2 text of a legacy JSON template (formatted as `packer fmt` would)."""
    from factory.template.fmt import format_text

    if not is_legacy(data):
        raise FactoryError(f"{file}: not a legacy Packer JSON template (no \"builders\" array)",
                           hint="JSON templates are legacy Packer JSON ({\"builders\": [...]})")
    ctx = _Context()
    parts = [f"# Upgraded from {Path(file).name} (legacy Packer JSON) by factory hcl2_upgrade.\n"]
    if "min_packer_version" in data:
        parts.append(f'packer {{\n  required_version = ">= {data["min_packer_version"]}"\n}}\n')
    parts += _variables(data, ctx)
    builders = _sources(data, ctx, parts)
    parts.append(_build(data, ctx, builders))
    declared = set(data.get("variables") or {})
    implicit = [n for n in ctx.used if n not in declared]
    if implicit:   # after the declared variables, before the sources
        at = next(i for i, part in enumerate(parts) if part.startswith("source "))
        parts[at:at] = [f'variable {json.dumps(n)} {{\n  type    = string\n  default = ""\n}}\n' for n in implicit]
    if ctx.timestamp:
        parts.insert(1, 'locals {\n  timestamp = regex_replace(timestamp(), "[- TZ:]", "")\n}\n')
    text = format_text("\n".join(parts), file)
    return Upgraded(text, builders, ctx.kept, data)


def _variables(data: dict[str, Any], ctx: _Context) -> list[str]:
    variables = data.get("variables") or {}
    if not isinstance(variables, dict):
        raise FactoryError(f'"variables" must be an object of name: default, not {type(variables).__name__}')
    sensitive = set(data.get("sensitive-variables") or [])
    derived = {n for n, v in variables.items() if isinstance(v, str) and "{{" in v and "user" in v}
    ctx.locals_ = derived
    out = []
    for name, default in variables.items():
        if name in derived:
            continue
        lines = ["  type = string"]
        if default is not None:
            shown = default if isinstance(default, str) else json.dumps(default)
            lines.append(f"  default = {template(shown, ctx)}")
        if name in sensitive:
            lines.append("  sensitive = true")
        out.append(f'variable {json.dumps(name)} {{\n' + "\n".join(lines) + "\n}\n")
    if derived:
        rows = "".join(f"  {_key(n)} = {template(str(variables[n]), ctx)}\n" for n in derived)
        out.append("locals {\n" + rows + "}\n")
    return out


def _sources(data: dict[str, Any], ctx: _Context, parts: list[str]) -> dict[str, str]:
    builders: dict[str, str] = {}
    for i, b in enumerate(data.get("builders") or []):
        if not isinstance(b, dict) or "type" not in b:
            raise FactoryError(f'builders[{i}] has no "type"', hint='each builder is {"type": "qemu", ...}')
        name = str(b.get("name") or b["type"])
        if name in builders:
            raise FactoryError(f'two builders are named "{name}"', hint='give each builder a distinct "name"')
        builders[name] = f"{b['type']}.{name}"
        parts.append(f"source {json.dumps(b['type'])} {json.dumps(name)} {{\n"
                     + _body(b, ctx, "  ", ("type", "name")) + "}\n")
    if not builders:
        raise FactoryError('the template has no builders', hint='add "builders": [{"type": "qemu", ...}]')
    return builders


def _targets(names: Any, builders: dict[str, str]) -> list[str]:
    return [builders.get(str(n), str(n)) for n in names or []]


def _step(kind: str, spec: Any, ctx: _Context, builders: dict[str, str], indent: str) -> str:
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, dict) or "type" not in spec:
        raise FactoryError(f'a {kind} needs a "type"', hint=f'write {{"type": "shell", ...}} for each {kind}')
    meta = dict(spec)
    for key in ("only", "except"):
        if key in meta:
            meta[key] = _targets(meta[key], builders)
    if isinstance(meta.get("override"), dict):
        meta["override"] = {builders.get(k, k): v for k, v in meta["override"].items()}
    body = _body(meta, ctx, indent + "  ", ("type",))
    head = f"{indent}{kind} {json.dumps(spec['type'])} {{"
    return f"{head}}}\n" if not body else f"{head}\n{body}{indent}}}\n"


def _build(data: dict[str, Any], ctx: _Context, builders: dict[str, str]) -> str:
    sources = ", ".join(json.dumps(f"source.{full}") for full in builders.values())
    out = [f"build {{\n  sources = [{sources}]\n"]
    for p in data.get("provisioners") or []:
        out.append("\n" + _step("provisioner", p, ctx, builders, "  "))
    for pp in data.get("post-processors") or []:
        if isinstance(pp, list):
            chain = "".join(_step("post-processor", x, ctx, builders, "    ") for x in pp)
            out.append(f"\n  post-processors {{\n{chain}  }}\n")
        else:
            out.append("\n" + _step("post-processor", pp, ctx, builders, "  "))
    out.append("}\n")
    return "".join(out)


def upgrade_file(path: Path) -> Upgraded:
    return upgrade(read_json(path), str(path))


def is_legacy_file(path: Path) -> bool:
    return path.suffix == ".json" and not path.name.endswith((".pkrvars.json", ".pkr.json"))


def upgraded_label(path: Path) -> str:
    """The file name errors in an upgraded template point at: their lines are those of `factory hcl2_upgrade`."""
    return f"{path} (as upgraded to HCL2)"


def selection(files: list[Path], patterns: Sequence[str]) -> list[str]:
    """-only/-except names as a legacy template means them: a builder's name selects its source."""
    builders: dict[str, str] = {}
    for f in files:
        if is_legacy_file(f):
            builders.update(upgrade_file(f).builders)
    return [builders.get(p, p) for p in patterns]


def render_inspect(data: dict[str, Any]) -> str:
    """`packer inspect` of a legacy JSON template, laid out as Packer's Core.InspectConfig prints it ("JSON
    mode"): variables with their defaults as written (null: required; sensitive ones masked), builders by
    name, provisioners in order."""
    out = ["Packer Inspect: JSON mode"]
    if data.get("description"):
        out += ["Description:\n", f"{data['description']}\n"]
    variables = data.get("variables") or {}
    sensitive = {_shown(variables[n]) for n in data.get("sensitive-variables") or [] if n in variables}
    if not variables:
        out += ["Variables:\n", "  <No variables>"]
    else:
        required = [n for n, v in variables.items() if v is None]
        if required:
            out += ["Required variables:\n", *(f"  {n}" for n in required), ""]
        out.append("Optional variables and their defaults:\n")
        width = max(len(n) for n in variables)
        for name in sorted(variables):
            if variables[name] is None:
                continue
            shown = _shown(variables[name])
            out.append(f"  {name}{' ' * (width - len(name))} = {'<sensitive>' if shown in sensitive else shown}")
    out += ["", "Builders:\n"]
    builders = {str(b.get("name") or b.get("type")): str(b.get("type")) for b in data.get("builders") or []
                if isinstance(b, dict)}
    if not builders:
        out.append("  <No builders>")
    width = max((len(n) for n in builders), default=0)
    for name in sorted(builders):
        line = f"  {name}{' ' * (width - len(name))}"
        out.append(line if name == builders[name] else f"{line} ({builders[name]})")
    out += ["", "Provisioners:\n"]
    steps = [p if isinstance(p, str) else p.get("type") for p in data.get("provisioners") or []
             if isinstance(p, str | dict)]
    out += [f"  {t}" for t in steps] or ["  <No provisioners>"]
    out.append("\nNote: If your build names contain user variables or template\nfunctions such as 'timestamp', "
               "these are processed at build time,\nand therefore only show in their raw form here.")
    return "\n".join(out) + "\n"


def _shown(default: Any) -> str:
    return default if isinstance(default, str) else json.dumps(default)
