"""`factory docs`: regenerate the reference page (every block, function and option) from the declarations."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from factory.cli import app
from factory.fsutil import atomic_path
from factory.reference import render_reference


@app.command("docs")
def docs(
    output: Annotated[Path, typer.Option("-o", "--output", help="File to write; `-` prints to standard output.")]
    = Path("docs/reference.md"),
    check: Annotated[bool, typer.Option("--check", help="Write nothing; exit 3 if the file is out of date.")]
    = False,
) -> None:
    """Write the reference page: supported blocks, functions, and every option of every component."""
    text = render_reference()
    if str(output) == "-":
        sys.stdout.write(text)
        return
    current = output.read_text(encoding="utf-8") if output.is_file() else None
    if check:
        if current != text:
            print(f"{output} is out of date; run `factory docs -o {output}`")
            raise typer.Exit(3)
        return
    if current != text:
        with atomic_path(output) as tmp:
            tmp.write_text(text, encoding="utf-8")
        print(output)
