"""`factory hcl2_upgrade FILE.json`: write the HCL2 template of a legacy JSON template (Packer's command)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from factory import ui
from factory.cli import app
from factory.errors import die
from factory.fsutil import atomic_path, check_output_file


@app.command("hcl2_upgrade")
def hcl2_upgrade(
    template: Annotated[Path, typer.Argument(help="Legacy JSON template (builders/provisioners/post-processors).")],
    output_file: Annotated[Path | None, typer.Option("--output-file", help="Where to write the HCL2 template "
                                                     "(default: TEMPLATE.pkr.hcl beside it).")] = None,
    with_annotations: Annotated[bool, typer.Option("--with-annotations", help="Accepted for Packer "
                                                   "compatibility (factory writes a one-line header).")] = False,
) -> None:
    """Convert a legacy JSON template to HCL2; the result builds the same thing (factory reads either)."""
    from factory.template.legacy import upgrade_file

    if not template.is_file():
        die(f"template {template} {'is not a file' if template.exists() else 'does not exist'}",
            hint="pass a legacy Packer JSON template (a *.json file with a \"builders\" array)")
    out = output_file or template.with_name(template.name + ".pkr.hcl")
    check_output_file(out, {"template": template}, option="--output-file", example=template.stem + ".pkr.hcl")
    upgraded = upgrade_file(template)
    with atomic_path(out) as tmp:
        tmp.write_text(upgraded.text, encoding="utf-8")
    for action in sorted(upgraded.kept):
        if not action.lstrip("{- ").startswith("."):
            ui.warn(f"{template}: {action} has no HCL2 equivalent factory knows; it is kept as written")
    print(f"Successfully created {out}")
