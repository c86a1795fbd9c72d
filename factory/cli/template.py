"""`factory validate` and `factory inspect`: check and show a Packer HCL2 template without building."""

from __future__ import annotations

from typing import Annotated

import typer

from factory.cli import app
from factory.cli.options import ExceptOpt, OnlyOpt, TemplateArg, VarFileOpt, VarOpt, load_template


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
    load_template(template, var, var_file, only, except_, syntax_only=syntax_only)
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
    from factory.template import legacy
    from factory.template.inspect import render_inspect

    if template.is_file() and legacy.is_legacy_file(template):
        # Packer shows a legacy template as written, without evaluating it (a required variable may be unset).
        print(legacy.render_inspect(legacy.upgrade_file(template).data), end="")
        return
    project = load_template(template, var, var_file, only, except_, skip_unknown_sources=True)
    print(render_inspect(project, project.sensitive_locals), end="")
