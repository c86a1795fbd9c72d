"""Packer's plugin and REPL commands: `factory init`, `factory plugins installed|required`, `factory console`.

factory builds in the components of the plugins it supports, so `init` never downloads anything: it reports
each plugin a template requires as built in, or names it as not provided.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from factory import __version__, ui
from factory.cli import app
from factory.cli.options import TemplateArg, VarFileOpt, VarOpt
from factory.errors import FactoryError
from factory.template.given import given

plugins_app = typer.Typer(help="Packer's `plugins` commands: what factory builds in.", no_args_is_help=True)
app.add_typer(plugins_app, name="plugins")


def _required(template: Path) -> list[tuple[str, str]]:
    """(line to print, source) for each required plugin of a template."""
    from factory.template.loader import template_files
    from factory.template.plugins import provided, required_plugins

    _, files, _ = template_files(template)
    rows = []
    for rp in required_plugins(files):
        have = provided(rp.source)
        state = f"built into factory ({', '.join(have)})" if rp.built_in and have else "not provided by factory"
        rows.append((f"{rp.name}: {rp.source} {rp.version}".rstrip() + f": {state}", rp.source if not
                     (rp.built_in and have) else ""))
    return rows


@app.command("init")
def init(
    template: TemplateArg,
    upgrade: Annotated[bool, typer.Option("--upgrade", help="Accepted for Packer compatibility: "
                                          "nothing is ever downloaded.")] = False,
) -> None:
    """Install the plugins a template requires (Packer's `init`): factory builds them in, so this only
    reports; a plugin factory does not provide is named (its components fail `validate` if used)."""
    rows = _required(template)
    if not rows:
        print(f"{template}: no required_plugins; nothing to install")
        return
    for line, _ in rows:
        print(line)
    missing = [source for _, source in rows if source]
    if missing:
        ui.warn(f"factory does not provide {', '.join(missing)}: builds that use its components will fail "
                "validation; everything else runs (nothing is downloaded)")


@plugins_app.command("installed")
def installed() -> None:
    """List the plugins factory builds in and the components of each it implements."""
    from factory.template.plugins import PLUGINS, provided

    for source in sorted(PLUGINS):
        print(f"{source} (built into factory {__version__}): {', '.join(provided(source)) or 'no components'}")


@plugins_app.command("required")
def required(template: TemplateArg) -> None:
    """List the plugins a template requires and whether factory provides them."""
    for line, _ in _required(template):
        print(line)


@app.command("console")
def console(
    template: Annotated[Path | None, typer.Argument(help="Template file or folder whose variables and locals "
                                                    "the expressions see (optional).", parser=given)] = None,
    var: VarOpt = None,
    var_file: VarFileOpt = None,
) -> None:
    """Evaluate HCL expressions (one per line, from standard input or a prompt) as `packer console` does."""
    from factory.template.console import Session

    session = Session.open(template, var or [], var_file or [])
    interactive = sys.stdin.isatty()
    while True:
        if interactive:
            sys.stdout.write("> ")
            sys.stdout.flush()
        line = sys.stdin.readline()
        if not line:
            break
        try:
            out, done = session.run(line)
        except FactoryError as exc:
            if not interactive:
                raise
            ui.error(exc.render())
            continue
        if done:
            break
        if out is not None:
            print(out.rstrip("\n") if out.endswith("\n") and out.count("\n") > 1 else out)
