"""`factory iso-build` (unattended installer ISOs) and `factory seed-iso` (NoCloud seeds and data ISOs)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated

import typer

from factory import ui
from factory.cli import app
from factory.errors import die


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        die(f"cannot read {what} {path}: {exc.strerror}", hint=f"check the {what} path")


def _file_specs(specs: list[str]) -> dict[str, bytes | Path]:
    """Parse --file SRC[:DEST] (DEST defaults to SRC's name) into media path -> source file."""
    out: dict[str, bytes | Path] = {}
    for spec in specs:
        src, sep, dest = spec.partition(":")
        path = Path(src)
        if not path.is_file():
            die(f"--file {spec}: {src} is not a file", hint="use --file SRC[:DEST] with an existing file")
        out[(dest if sep and dest else path.name).strip("/")] = path
    return out


@app.command("seed-iso")
def seed_iso(
    output: Annotated[Path, typer.Option("-o", "--output", help="ISO to write.")],
    user_data: Annotated[Path | None, typer.Option("--user-data", help="cloud-init user-data file.")] = None,
    meta_data: Annotated[Path | None, typer.Option("--meta-data", help="meta-data (default: an id).")] = None,
    network_config: Annotated[Path | None, typer.Option("--network-config", help="network-config file.")] = None,
    files: Annotated[list[str] | None, typer.Option("--file", help="Extra SRC[:DEST] (repeatable).")] = None,
    label: Annotated[str, typer.Option("--label", help="Volume label (cloud-init wants 'cidata').")] = "cidata",
) -> None:
    """Write a NoCloud seed ISO (label cidata) or any small data ISO, in pure Python."""
    from factory.media.seed import make_iso

    content: dict[str, bytes | Path] = {}
    if user_data is not None:
        ud = _read(user_data, "--user-data")
        content["user-data"] = ud
        content["meta-data"] = (_read(meta_data, "--meta-data") if meta_data is not None else
                                f"instance-id: iid-{hashlib.sha256(ud).hexdigest()[:16]}\n".encode())
    elif meta_data is not None:
        content["meta-data"] = _read(meta_data, "--meta-data")
    if network_config is not None:
        content["network-config"] = _read(network_config, "--network-config")
    content.update(_file_specs(files or []))
    if not content:
        die("nothing to put on the ISO", hint="pass --user-data FILE and/or --file SRC[:DEST]")
    make_iso(content, output, label=label)
    ui.success(f"wrote {output} ({output.stat().st_size // 1024} KiB, label {label!r})")
