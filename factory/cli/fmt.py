"""`factory fmt`: rewrite templates in canonical form, as `packer fmt` does (same flags, exit 3 on -check)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from factory.cli import app
from factory.errors import FactoryError, FactoryErrors
from factory.template.fmt import format_text, template_files, unified_diff, write_formatted
from factory.textfile import decode_text, read_text

_TRUE, _FALSE = {"true", "1", "t", "yes"}, {"false", "0", "f", "no"}


@app.command("fmt")
def fmt(
    paths: Annotated[list[str] | None, typer.Argument(
        help="Template files or folders (default: the current folder); `-` reads standard input and writes the "
        "result to standard output.")] = None,
    check: bool = typer.Option(False, "--check", help="Write nothing; exit 3 if any file is not formatted."),
    diff: bool = typer.Option(False, "--diff", help="Print a unified diff of the changes."),
    recursive: bool = typer.Option(False, "--recursive", help="Also format templates in subfolders."),
    write: str = typer.Option("true", "--write", metavar="BOOL",
                              help="Write the result to the files (`-write=false` only reports)."),
) -> None:
    """Rewrite *.pkr.hcl and *.pkrvars.hcl files in canonical style (indentation, alignment, spacing)."""
    if write.lower() not in _TRUE | _FALSE:
        raise FactoryError(f"-write={write}: expected true or false")
    if paths == ["-"]:
        text = decode_text(sys.stdin.buffer.read(), "<stdin>", "template")
        out = format_text(text, "<stdin>")
        if diff:
            sys.stdout.write(unified_diff("<stdin>", text, out))
        elif not check:
            sys.stdout.write(out)
        raise typer.Exit(3 if check and out != text else 0)
    # Every file is read and formatted before any is written: one bad file leaves all of them untouched.
    changes: list[tuple[Path, str, str]] = []
    errors: list[FactoryError] = []
    for path in template_files([Path(p) for p in paths or ["."]], recursive=recursive):
        try:
            text = read_text(path, "template")
            out = format_text(text, str(path))
        except FactoryError as exc:
            errors.append(exc)
            continue
        if out != text:
            changes.append((path, text, out))
    if errors:
        raise errors[0] if len(errors) == 1 else FactoryErrors(errors)
    for path, text, out in changes:
        print(path)
        if diff:
            sys.stdout.write(unified_diff(str(path), text, out))
        if not check and write.lower() in _TRUE:
            write_formatted(path, out)
    raise typer.Exit(3 if check and changes else 0)
