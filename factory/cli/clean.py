"""`factory clean --libvirt URI`: remove what killed builds left on a libvirt host (found by factory's metadata)."""

from __future__ import annotations

from typing import Annotated

import typer

from factory.cli import app
from factory.errors import die


@app.command("clean")
def clean(
    libvirt_uri: Annotated[str | None, typer.Option("--libvirt", help="libvirt URI to clean, e.g. qemu:///system: "
                                                    "domains tagged with factory's metadata and the volumes factory "
                                                    "created for them are removed; nothing else is touched.")]
    = None,
) -> None:
    """Remove leftovers of interrupted or killed builds."""
    if libvirt_uri is None:
        die("nothing to clean: name a place", hint="factory clean --libvirt qemu:///system")
    from factory.machine import libvirt as lv  # libvirt is imported only by the commands that use it

    removed = lv.clean(libvirt_uri)
    for item in removed:
        print(f"removed {item}")
    print(f"{len(removed)} leftover(s) removed from {libvirt_uri}")
