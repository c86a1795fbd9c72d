"""Packer plugins factory builds in, and the `required_plugins` a template declares (`factory init`).

Packer downloads plugins (`packer init`); factory implements their components itself, so nothing is ever
downloaded: `init` only reports which required plugins are built in and names the ones that are not.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from factory.errors import FactoryError
from factory.options import Kind
from factory.schema import registered
from factory.template import hcljson, legacy
from factory.template.expr import Scope, evaluate
from factory.template.functions import FUNCTIONS
from factory.template.parse import Block, parse_file, parse_text

# Plugin source → the component names it provides in Packer (factory lists those it has registered).
PLUGINS: dict[str, dict[Kind, tuple[str, ...]]] = {
    "github.com/hashicorp/qemu": {Kind.SOURCE: ("qemu",)},
    "github.com/hashicorp/virtualbox": {Kind.SOURCE: ("virtualbox-iso", "virtualbox-ovf", "virtualbox-vm")},
    "github.com/hashicorp/ansible": {Kind.PROVISIONER: ("ansible", "ansible-local")},
    "github.com/hashicorp/vagrant": {Kind.SOURCE: ("vagrant",),
                                     Kind.POST_PROCESSOR: ("vagrant", "vagrant-cloud", "vagrant-registry")},
}
BUILTIN_PLUGINS = frozenset(PLUGINS)


@dataclass(frozen=True)
class RequiredPlugin:
    name: str          # the key in required_plugins
    source: str
    version: str
    where: str         # file:line

    @property
    def built_in(self) -> bool:
        return self.source.lower() in BUILTIN_PLUGINS


def provided(source: str) -> list[str]:
    """`kind name` of each component of a plugin that factory implements (empty if it implements none)."""
    have = {kind: set(registered(kind)) for kind in Kind}
    return [f"{kind.value} {name}" for kind, names in PLUGINS.get(source.lower(), {}).items()
            for name in names if name in have[kind]]


def required_plugins(files: list[Path]) -> list[RequiredPlugin]:
    """Every `packer { required_plugins { ... } }` entry of the given template files, in file order."""
    out: list[RequiredPlugin] = []
    for path in files:
        if legacy.is_legacy_file(path):
            continue   # a legacy JSON template has no packer block
        body = parse_text(hcljson.to_hcl(path), hcljson.label(path)) if hcljson.is_hcl_json(path) else parse_file(path)
        for blk in body.children("packer"):
            out += _entries(blk)
    return out


def _entries(blk: Block) -> list[RequiredPlugin]:
    scope = Scope(blk.file, {}, FUNCTIONS, block="packer")
    out = []
    for rp in blk.children("required_plugins"):
        for attr in rp.attrs.values():
            spec = evaluate(attr.expr, scope.with_block(f"packer.required_plugins.{attr.name}", attr.file))
            if not isinstance(spec, dict) or not spec.get("source"):
                raise FactoryError(f"required plugin {attr.name} has no source",
                                   where=attr.where(f"packer.required_plugins.{attr.name}"),
                                   hint='write { source = "github.com/hashicorp/qemu", version = ">= 1.0" }')
            out.append(RequiredPlugin(attr.name, str(spec["source"]), str(spec.get("version", "")),
                                      f"{attr.file}:{attr.line}"))
    return out
