"""What `build`, `validate` and `inspect` share: the template argument, -var / -var-file / -only / -except, and
loading the template with its warnings printed (also when loading fails)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from factory import ui
from factory.errors import FactoryError
from factory.template.given import given

if TYPE_CHECKING:
    from factory.template import Project

# Parsed by `given` so path.root can keep the argument as typed (`./tpl/`), as Packer does.
TemplateArg = Annotated[Path, typer.Argument(help="Template file (*.pkr.hcl) or a folder of them.", parser=given)]
VarOpt = Annotated[list[str] | None, typer.Option("--var", help="Set a variable: name=value (repeatable).")]
VarFileOpt = Annotated[list[Path] | None, typer.Option("--var-file", help="HCL or JSON variable file (repeatable).")]
OnlyOpt = Annotated[list[str] | None, typer.Option("--only", help="Only these sources (globs, comma-separated).")]
ExceptOpt = Annotated[list[str] | None, typer.Option("--except", help="All sources but these (globs).")]


def split(values: list[str] | None) -> list[str]:
    """-only a,b and repeated -only both work, as in Packer."""
    return [p.strip() for v in values or [] for p in v.split(",") if p.strip()]


def load_template(template: Path, var: list[str] | None, var_file: list[Path] | None, only: list[str] | None,
                  except_: list[str] | None, **kw: Any) -> Project:
    """load() with the command line's selections; the template's warnings are shown even when it fails."""
    from factory.template import load

    try:
        project = load(template, vars=var or [], var_files=var_file or [], only=split(only), except_=split(except_),
                       **kw)
    except FactoryError as exc:
        for warning in getattr(exc, "warnings", []):
            ui.warn(warning)
        raise
    for warning in project.warnings:
        ui.warn(warning)
    return project
