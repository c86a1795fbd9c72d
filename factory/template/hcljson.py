"""HCL's JSON syntax (`*.pkr.json`, Packer's HCL2 in JSON) read as the native HCL it stands for.

The JSON form carries no schema of its own: which keys are blocks, and how many labels each block takes, comes
from Packer's. Here that schema is the table below (top-level blocks, the build block's children, a
variable's validation, the packer block's required_plugins); every other key is an attribute. A nested object
in a source, provisioner or post-processor body becomes an object attribute, which factory reads as it reads
the block form (`qemu_img_args { ... }`). Strings are HCL templates, as in the JSON spec: `${...}` interpolates
and a string that is one interpolation keeps the value's type. A variable's `type` is an expression written as
a string; its `default` is a literal. Keys named "//" are comments.

`"dynamic": {"NAME": {"for_each": ..., "iterator": "it", "labels": [...], "content": {...}}}` in a source, data or
build body (at any depth) is a dynamic block, as in HCL's JSON spec: `iterator` names a variable (a bare name in
the HCL text), and `content` is a body of the block NAME stands for, so a `dynamic "provisioner"` content takes
the provisioner's schema. Bodies that hold names rather than blocks (variables, locals, packer) have no dynamic.

The text produced is what factory parses, so an error's line is a line of that text: errors name the file
"FILE.pkr.json (read as HCL)".
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from factory.errors import FactoryError, Location
from factory.textfile import check_nesting, read_text

# Block type -> (number of labels, {child block type: ...}) for each place a block may appear.
_Schema = dict[str, tuple[int, "_Schema"]]
_BUILD: _Schema = {
    "source": (1, {}), "provisioner": (1, {}), "error-cleanup-provisioner": (1, {}),
    "post-processor": (1, {}), "post-processors": (0, {"post-processor": (1, {})}), "hcp_packer_registry": (0, {}),
}
_TOP: _Schema = {
    "packer": (0, {"required_plugins": (0, {})}), "variable": (1, {"validation": (0, {})}), "variables": (0, {}),
    "locals": (0, {}), "local": (1, {}), "source": (2, {}), "data": (2, {}), "build": (0, _BUILD),
}
# Bodies where "dynamic" is a name of an attribute (a local, a variable's field), not a dynamic block.
_NO_DYNAMIC = {"", "packer", "required_plugins", "variable", "validation", "variables", "locals", "local"}
# Attributes whose JSON string is an expression rather than a template.
_EXPRESSIONS = {("variable", "type")}
_LITERALS = {("variable", "default")}


def label(path: Path) -> str:
    """The file name errors in a JSON-syntax template point at."""
    return f"{path} (read as HCL)"


def is_hcl_json(path: Path) -> bool:
    return path.name.endswith(".pkr.json")


def to_hcl(path: Path) -> str:
    """The native HCL text a `*.pkr.json` file stands for (a located FactoryError if it is not such JSON)."""
    text = read_text(path, "template")
    check_nesting(text, str(path))
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FactoryError(f"invalid JSON: {exc.msg}", where=Location(str(path), exc.lineno, exc.colno),
                           hint="a *.pkr.json template is one JSON object in HCL's JSON syntax") from None
    if not isinstance(doc, dict):
        raise FactoryError("a *.pkr.json template must be one JSON object", where=Location(str(path), 1, 1))
    lines: list[str] = []
    _body(doc, _TOP, "", lines, 0, str(path))
    return "\n".join(lines) + "\n"


def _body(obj: dict[str, Any], schema: _Schema, block_type: str, out: list[str], depth: int, file: str) -> None:
    pad = "  " * depth
    for key, value in obj.items():
        if key == "//":
            continue
        if key == "dynamic" and block_type not in _NO_DYNAMIC:
            _dynamic(value, schema, out, depth, file)
        elif key in schema:
            nlabels, children = schema[key]
            for labels, body in _expand(value, nlabels, key, file):
                quoted = "".join(f" {_quote_plain(lb)}" for lb in labels)
                out.append(f"{pad}{key}{quoted} {{")
                _body(body, children, key, out, depth + 1, file)
                out.append(f"{pad}}}")
        else:
            out.append(f"{pad}{_name(key)} = {_value(value, (block_type, key))}")


def _dynamic(value: Any, schema: _Schema, out: list[str], depth: int, file: str) -> None:
    """`dynamic "NAME" { ... }` for each dynamic block the JSON value stands for; its content body is read with
    the schema of the block NAME stands for in the enclosing body."""
    pad, inner = "  " * depth, "  " * (depth + 1)
    for (name,), body in _expand(value, 1, "dynamic", file):
        children = schema.get(name, (0, {}))[1]
        out.append(f"{pad}dynamic {_quote_plain(name)} {{")
        for key, item in body.items():
            if key == "//":
                continue
            if key == "content":
                for _, content in _expand(item, 0, "content", file):
                    out.append(f"{inner}content {{")
                    _body(content, children, name, out, depth + 2, file)
                    out.append(f"{inner}}}")
            elif key == "iterator":
                if not (isinstance(item, str) and item.isidentifier()):
                    raise FactoryError(f'dynamic "{name}": iterator must be a name written as a string, e.g. '
                                       '"iterator": "it"', where=Location(file))
                out.append(f"{inner}iterator = {item}")
            else:
                out.append(f"{inner}{_name(key)} = {_value(item)}")
        out.append(f"{pad}}}")


def _expand(value: Any, nlabels: int, key: str, file: str) -> list[tuple[list[str], dict[str, Any]]]:
    """(labels, body) of each block a JSON value stands for: N nested objects of labels, bodies or arrays of them."""
    if isinstance(value, list):
        return [found for item in value for found in _expand(item, nlabels, key, file)]
    if not isinstance(value, dict):
        raise FactoryError(f'"{key}" is a block: its JSON value must be an object or an array of objects',
                           where=Location(file))
    if nlabels == 0:
        return [([], value)]
    return [([lb, *labels], body) for lb, inner in value.items() if lb != "//"
            for labels, body in _expand(inner, nlabels - 1, key, file)]


def _name(key: str) -> str:
    ok = key and (key[0].isalpha() or key[0] == "_") and all(c.isalnum() or c in "_-" for c in key)
    return key if ok else _quote_plain(key)


def _value(value: Any, where: tuple[str, str] = ("", "")) -> str:
    if isinstance(value, str):
        if where in _EXPRESSIONS:
            return value
        return _quote_plain(value) if where in _LITERALS else _template(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else "null"
    literal = where in _LITERALS
    if isinstance(value, list):
        return "[" + ", ".join(_value(v, where if literal else ("", "")) for v in value) + "]"
    inner = ", ".join(f"{_quote_plain(k)} = {_value(v, where if literal else ('', ''))}"
                      for k, v in value.items() if k != "//")
    return "{" + inner + "}"


_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _quote_plain(text: str) -> str:
    """A quoted HCL string whose content is text, with no interpolation."""
    body = "".join(_ESCAPES.get(c, c) for c in text).replace("${", "$${").replace("%{", "%%{")
    return f'"{body}"'


def _template(text: str) -> str:
    """A quoted HCL template: text outside `${...}`/`%{...}` is escaped, the interpolations are kept as written."""
    out, i = [], 0
    while i < len(text):
        if text.startswith(("$${", "%%{"), i):
            out.append(text[i:i + 3])
            i += 3
        elif text.startswith(("${", "%{"), i):
            end = _closing(text, i + 2)
            out.append(text[i:end])
            i = end
        else:
            out.append(_ESCAPES.get(text[i], text[i]))
            i += 1
    return '"' + "".join(out) + '"'


def _closing(text: str, i: int) -> int:
    """Index just past the `}` that closes an interpolation opened before i (strings inside it skipped)."""
    depth = 1
    while i < len(text):
        c = text[i]
        if c == '"':
            i += 1
            while i < len(text) and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return len(text)
