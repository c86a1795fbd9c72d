"""`factory cache ls` and `factory cache gc`: what the content-addressed store holds, and trimming it."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from factory import checkpoints, ui
from factory.cli import app
from factory.store import Entry, Store, human_age, human_size, parse_size

cache_app = typer.Typer(help="The store of downloads, remastered and seed ISOs and build checkpoints "
                        "(FACTORY_CACHE_DIR).",
                        no_args_is_help=True)
app.add_typer(cache_app, name="cache")

JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")]


@cache_app.command("ls")
def ls(as_json: JsonOpt = False) -> None:
    """List the stored entries, least recently used first: key, kind, size, time since last use, name."""
    store = Store()
    entries = store.entries()
    if as_json:
        print(json.dumps({"root": str(store.root), "total": sum(e.size for e in entries),
                          "entries": [_as_dict(store, e) for e in entries]}, indent=2))
        return
    for e in entries:
        name = checkpoints.describe(store, e) if e.kind == checkpoints.KIND else e.name
        print(f"{e.key[:16]}  {e.kind:<10} {human_size(e.size):>10}  {human_age(e.age):>5}  {name}")
    print(f"{len(entries)} entries, {human_size(sum(e.size for e in entries))} in {store.root}")


@cache_app.command("gc")
def gc(
    max_size: Annotated[str, typer.Option("--max-size", help="Keep at most this much (500M, 20G, 0 for "
                                          "everything not in use); least recently used entries go first.")],
    as_json: JsonOpt = False,
) -> None:
    """Remove least recently used entries until the store fits; entries in use by a build are never removed."""
    limit = parse_size(max_size)
    store = Store()
    # Checkpoints whose chain is broken can never be used: they go first, and again once the LRU pass has
    # removed parents of others.
    removed = [e for e in checkpoints.orphans(store) if store.remove(e.key)]
    more, busy = store.gc(limit)
    removed += more + [e for e in checkpoints.orphans(store) if store.remove(e.key)]
    if as_json:
        print(json.dumps({"removed": [e.as_dict() for e in removed], "in_use": [e.as_dict() for e in busy]},
                         indent=2))
        return
    for e in removed:
        ui.info(f"removed {e.kind} {e.name} ({human_size(e.size)}, unused for {human_age(e.age)})")
    for e in busy:
        ui.info(f"kept {e.kind} {e.name}: in use")
    ui.success(f"freed {human_size(sum(e.size for e in removed))}; {len(Store().entries())} entries remain")


def _as_dict(store: Store, entry: Entry) -> dict[str, object]:
    data = entry.as_dict()
    if entry.kind == checkpoints.KIND and (cp := checkpoints.read(store, entry.key)) is not None:
        data["checkpoint"] = {"step": cp.step, "stage_id": cp.stage_id, "vm_state": cp.state is not None,
                              "usable": checkpoints.chain(store, entry.key) is not None}
    return data
