"""`factory iso-list`: show the ISO catalog."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from factory.cli import app
from factory.media import catalog


@app.command("iso-list")
def iso_list(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Also show URLs, checksums and signing keys."),
    as_json: bool = typer.Option(False, "--json", help="Print the catalog as JSON (for scripts)."),
) -> None:
    """List the installer ISOs factory knows (the files in isos/)."""
    if as_json:
        import dataclasses
        import json

        rows = [{**dataclasses.asdict(r), "source": str(r.source)} for r in catalog.releases()]
        print(json.dumps(rows, indent=2))
        return
    folders = ", ".join(str(d) for d in catalog.catalog_dirs())
    # Catalog text is data, not rich markup: a title like "[beta]" must print as written.
    table = Table(title=escape(f"ISO catalog ({folders})"), show_lines=verbose)
    for column in ("name", "release", "installer", "volume id", "iso"):
        table.add_column(column, overflow="fold")
    if verbose:
        table.add_column("verification", overflow="fold")
    for rel in catalog.releases():
        row = [rel.name, rel.title, rel.family.value, rel.volume_id, rel.iso_filename]
        if verbose:
            check = f"sha256:{rel.sha256}" if rel.sha256 else f"via {rel.checksum_url}"
            if rel.signing_key_fingerprint:
                check += f"\nsigned: {rel.signature_url}\nkey: {rel.signing_key_fingerprint}"
            row.append(check)
        table.add_row(*(escape(cell) for cell in row))
    # The table goes to stdout so it can be piped (COLUMNS sets the width there); messages stay on stderr.
    Console(highlight=False).print(table)


@app.command("iso-fetch")
def iso_fetch(
    distro: str = typer.Argument(help="Release from the catalog (see `factory iso-list`)."),
    offline: bool = typer.Option(False, "--offline", help="Never touch the network (FACTORY_OFFLINE=1)."),
) -> None:
    """Download (or find) a release's ISO, verify it, and print its path: prepare an air-gapped host with it."""
    from factory.media import cache

    release = catalog.load(distro)
    print(cache.fetch_release(release, offline=offline))
