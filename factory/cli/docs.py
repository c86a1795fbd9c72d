"""`factory docs`: regenerate the reference page (every block, function and option) from the declarations."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from factory.cli import _load_commands, app
from factory.fsutil import atomic_path, check_output_file
from factory.reference import render_reference


def full_reference() -> str:
    """docs/reference.md: the declarations' reference plus the command line, read from the typer app itself."""
    return render_reference(command_reference())


def command_reference() -> list[str]:
    """The `## Commands` section: every command and sub-command with its arguments and options."""
    _load_commands()
    root = typer.main.get_command(app)
    out = ["## Commands", "",
           "`factory --help` and `factory COMMAND --help` show the same. Packer's single-dash spelling of its flags "
           "(`-var`, `-var-file=F`, `-only`, `-force`, `-on-error=abort`, ...) is accepted as well.", ""]
    _command(root, "factory", out, top=True)
    return out


def _command(cmd: Any, path: str, out: list[str], top: bool = False) -> None:
    # Duck-typed: typer vendors its own copy of click, so click's classes are not the ones it builds.
    if not top:
        args = " ".join(_argument(p) for p in cmd.params if p.param_type_name == "argument")
        out += [f"### `{path}{' ' + args if args else ''}`", ""]
        summary = " ".join((cmd.help or "").split("\n\n")[0].split())
        if summary:
            out += [summary, ""]
        options = [p for p in cmd.params if p.param_type_name == "option" and not p.hidden]
        if options:
            out += ["| Option | Meaning |", "|---|---|"]
            for opt in options:
                names = ", ".join(f"`{o}`" for o in [*opt.opts, *opt.secondary_opts])
                meaning = " ".join((opt.help or "").split()).replace("|", "\\|")
                out.append(f"| {names} | {meaning} |")
            out.append("")
    for name in sorted(getattr(cmd, "commands", {})):
        sub = cmd.commands[name]
        if not sub.hidden:
            _command(sub, f"{path} {name}", out)


def _argument(param: Any) -> str:
    text = (param.metavar or param.name.upper()) + ("..." if param.nargs == -1 else "")
    return text if param.required else f"[{text}]"


@app.command("docs")
def docs(
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write; `-` prints to standard output.")]
    = Path("docs/reference.md"),
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 3 if the file is out of date.")]
    = False,
) -> None:
    """Write the reference page: supported blocks, functions, and every option of every component."""
    text = full_reference()
    if str(output) == "-":
        sys.stdout.write(text)
        return
    check_output_file(output, {}, example="reference.md")
    current = output.read_bytes() if output.is_file() else None  # bytes: a non-UTF-8 file is simply out of date
    if check:
        if current != text.encode():
            print(f"{output} is out of date; run `factory docs -o {output}`")
            raise typer.Exit(3)
        return
    if current != text.encode():
        with atomic_path(output) as tmp:
            tmp.write_text(text, encoding="utf-8")
        print(output)
