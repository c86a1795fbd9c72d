"""`factory validate` and `factory inspect`: check and show a Packer HCL2 template without building."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from factory import ui
from factory.cli import app
from factory.errors import FactoryError

if TYPE_CHECKING:
    from factory.template import Project


def _load(template: Path, **kw: Any) -> Project:
    """load() that shows the template's warnings even when it fails."""
    from factory.template import load

    try:
        project = load(template, **kw)
    except FactoryError as exc:
        for warning in getattr(exc, "warnings", []):
            ui.warn(warning)
        raise
    for warning in project.warnings:
        ui.warn(warning)
    return project


def _split(values: list[str] | None) -> list[str]:
    """-only a,b and repeated -only both work, as in Packer."""
    return [p.strip() for v in values or [] for p in v.split(",") if p.strip()]


TemplateArg = Annotated[Path, typer.Argument(help="Template file (*.pkr.hcl) or a folder of them.")]
VarOpt = Annotated[list[str] | None, typer.Option("--var", help="Set a variable: name=value (repeatable).")]
VarFileOpt = Annotated[list[Path] | None, typer.Option("--var-file", help="HCL or JSON variable file (repeatable).")]
OnlyOpt = Annotated[list[str] | None, typer.Option("--only", help="Only these sources (globs, comma-separated).")]
ExceptOpt = Annotated[list[str] | None, typer.Option("--except", help="All sources but these (globs).")]


@app.command()
def validate(
    template: TemplateArg,
    var: VarOpt = None,
    var_file: VarFileOpt = None,
    only: OnlyOpt = None,
    except_: ExceptOpt = None,
    syntax_only: Annotated[bool, typer.Option("--syntax-only", help="Only check the HCL syntax.")] = False,
    evaluate_datasources: Annotated[bool, typer.Option(
        "--evaluate-datasources", help="Accepted for Packer compatibility: factory always evaluates the data "
        "sources it implements.")] = False,
) -> None:
    """Check a template: syntax, variables, references, options; every error at once."""
    _load(template, vars=var or [], var_files=var_file or [], only=_split(only), except_=_split(except_),
          syntax_only=syntax_only)
    if syntax_only:
        print("Syntax-only check passed. Everything looks okay.")
    else:
        print("The configuration is valid.")


@app.command()
def inspect(
    template: TemplateArg,
    var: VarOpt = None,
    var_file: VarFileOpt = None,
    only: OnlyOpt = None,
    except_: ExceptOpt = None,
) -> None:
    """Show a template's variables (sensitive ones masked), locals, sources and build steps in order."""
    from factory.template.inspect import render_inspect

    project = _load(template, vars=var or [], var_files=var_file or [], only=_split(only), except_=_split(except_),
                    skip_unknown_sources=True)
    print(render_inspect(project, project.sensitive_locals), end="")
