"""The evaluated template: what `factory build`, provisioning and post-processing consume.

Every component config is the frozen dataclass declared in factory/schema/, built from the evaluated HCL values.
Provisioner configs are evaluated per source (they may read `source.name`), so `config_for(full_name)` returns
the one for that source with its `override` applied and re-validated.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from factory.errors import Location
from factory.options import Component


@dataclass(frozen=True)
class Variable:
    """An input variable with its final value (after defaults, var files, environment and -var)."""

    name: str
    value: Any
    type: str
    sensitive: bool
    description: str = ""


@dataclass(frozen=True)
class SourceRef:
    """One source a build runs: `source "qemu" "cloud"` → type "qemu", name "cloud", full_name "qemu.cloud"."""

    type: str
    name: str
    full_name: str
    config: Component
    where: Location


def matches(patterns: tuple[str, ...], full_name: str, build_name: str = "") -> bool:
    """Whether a source matches any -only/-except/only/except glob. Packer matches the build name
    (`build.type.name` when the build is named, else `type.name`); factory also accepts `type.name` and the bare
    type for named builds, so `-only 'qemu.*'` works either way."""
    names = [full_name, full_name.split(".", 1)[0]]
    if build_name:
        names.append(f"{build_name}.{full_name}")
    return any(fnmatch.fnmatchcase(n, p) for p in patterns for n in names)


def selected(only: tuple[str, ...], except_: tuple[str, ...], full_name: str) -> bool:
    """Packer's `only`/`except` meta-arguments: a step runs for a source unless they leave it out."""
    if only and not matches(only, full_name):
        return False
    return not (except_ and matches(except_, full_name))


@dataclass(frozen=True)
class ProvisionerSpec:
    """A provisioner block with its meta-arguments; `config` is for the build's first applicable source."""

    type: str
    name: str
    config: Component
    only: tuple[str, ...]
    except_: tuple[str, ...]
    override: dict[str, dict[str, Any]]
    pause_before: float
    max_retries: int
    timeout: float | None
    where: Location
    per_source: dict[str, Component] = field(default_factory=dict, repr=False, compare=False)
    rebuild: Callable[[str, dict[str, Any]], Component] | None = field(default=None, repr=False, compare=False)

    def applies_to(self, full_name: str) -> bool:
        return selected(self.only, self.except_, full_name)

    def config_for(self, full_name: str) -> Component:
        """The config for one source: evaluated with its source.name/type, `override` merged and re-validated."""
        if full_name in self.per_source:
            return self.per_source[full_name]
        override = self.override.get(full_name) or self.override.get(full_name.split(".", 1)[0])
        if self.rebuild is not None:
            return self.rebuild(full_name, override or {})
        return self.config


@dataclass(frozen=True)
class PostProcessorSpec:
    """A post-processor in a chain, with Packer's meta-arguments."""

    type: str
    name: str
    config: Component
    only: tuple[str, ...]
    except_: tuple[str, ...]
    keep_input_artifact: bool | None
    where: Location
    per_source: dict[str, Component] = field(default_factory=dict, repr=False, compare=False)

    def applies_to(self, full_name: str) -> bool:
        return selected(self.only, self.except_, full_name)

    def config_for(self, full_name: str) -> Component:
        """The config evaluated for one source (it may read source.name, e.g. in `output`)."""
        return self.per_source.get(full_name, self.config)


@dataclass(frozen=True)
class Build:
    """A `build` block with its selected sources and ordered steps."""

    name: str
    description: str
    sources: list[SourceRef]
    provisioners: list[ProvisionerSpec]
    error_cleanup_provisioner: ProvisionerSpec | None
    post_processors: list[list[PostProcessorSpec]]
    where: Location | None = None
    # What the block declares, as `inspect` lists it (Packer's layout): every source, provisioner and
    # post-processor written, including those factory skips (types it lacks, steps for no selected source).
    listed: Listed | None = None


@dataclass(frozen=True)
class Listed:
    """A build block's sources, provisioners (`TYPE` or `TYPE.NAME`) and post-processor chains as written."""

    sources: tuple[str, ...] = ()
    provisioners: tuple[str, ...] = ()
    post_processors: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True)
class Project:
    """A loaded template folder or file."""

    root: Path
    variables: dict[str, Variable]
    builds: list[Build]
    locals: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    sensitive_locals: frozenset[str] = frozenset()
