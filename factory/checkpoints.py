"""Machine checkpoints in the store: what one is, how a chain of them is checked, how a new one is published.

A checkpoint is a store entry of kind `checkpoint` keyed by the stage ID of the step after which it was taken
(factory.build: the ID chains every input before it, so a key names exactly one machine state). Its folder holds

    disk.<fmt>          the machine's disk as a layer: a qcow2 overlay whose backing file is the previous
                        checkpoint's layer (by its path in the store), or a whole raw disk
    efivars.fd          the UEFI variable store at that moment (UEFI guests)
    state.bin           the running VM's state (-checkpoint=vm, drivers with the vm-state feature)
    checkpoint.json     step, stage ID, a random layer ID, the parent's key and layer ID, files outside the
                        store the layer depends on (a base image used as backing file)

Layers are immutable once published. A chain is valid only if every ancestor is present with the layer ID its
child recorded: a parent that was collected, or replaced by `-force-rebuild`, invalidates its children instead
of silently giving them other content underneath. An entry in use by a build is never replaced or collected
(the store's shared locks); a build that finds its key taken publishes under a private key instead.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from factory.store import Entry, Store


class CheckpointMode(StrEnum):
    """-checkpoint: what a build keeps after boot-to-SSH and after each provisioner."""

    NONE = "none"        # nothing: every build starts cold
    DISK = "disk"        # the disks: a resumed guest boots again from them
    VM = "vm"            # the disks and the running VM's state, where the driver can (else as disk): no boot


DEFAULT_MODE = CheckpointMode.VM  # the fastest resume; saving the state costs ~1-3 s per checkpoint


KIND = "checkpoint"
META = "checkpoint.json"
STATE = "state.bin"
EFIVARS = "efivars.fd"


@dataclass(frozen=True)
class Checkpoint:
    """A published checkpoint as its checkpoint.json describes it."""

    key: str
    folder: Path
    disk: Path
    step: str
    stage_id: str
    layer: str
    parent: str = ""
    parent_layer: str = ""
    requires: tuple[str, ...] = ()

    @property
    def state(self) -> Path | None:
        path = self.folder / STATE
        return path if path.is_file() else None

    @property
    def efivars(self) -> Path | None:
        path = self.folder / EFIVARS
        return path if path.is_file() else None


def read(store: Store, key: str) -> Checkpoint | None:
    """The checkpoint stored under key (None if there is none, or it is not whole)."""
    entry = store.entry(key)
    if entry is None or entry.kind != KIND:
        return None
    folder = store.folder(key)
    try:
        data = json.loads((folder / META).read_text())
        return Checkpoint(key=key, folder=folder, disk=folder / entry.name, step=str(data["step"]),
                          stage_id=str(data["stage_id"]), layer=str(data["layer"]), parent=str(data["parent"]),
                          parent_layer=str(data["parent_layer"]), requires=tuple(data.get("requires", ())))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def chain(store: Store, key: str) -> list[Checkpoint] | None:
    """The checkpoint under key and its ancestors, newest first; None when any link is missing or replaced."""
    found: list[Checkpoint] = []
    want_layer = ""
    while key:
        cp = read(store, key)
        if cp is None or (want_layer and cp.layer != want_layer) or len(found) > 1000:
            return None
        if any(not Path(p).exists() for p in cp.requires):
            return None
        found.append(cp)
        key, want_layer = cp.parent, cp.parent_layer
    return found


def describe(store: Store, entry: Entry) -> str:
    """What `factory cache ls` says about a checkpoint entry."""
    cp = read(store, entry.key)
    if cp is None:
        return entry.name
    what = f"after {cp.step}" + (" +vm state" if cp.state else "")
    return what if chain(store, entry.key) is not None else what + " (broken chain: collectable)"


def orphans(store: Store) -> list[Entry]:
    """Checkpoints whose chain is broken (a parent was collected or replaced): they can never be used again."""
    return [e for e in store.entries(KIND) if chain(store, e.key) is None]


def private_key(stage_id: str) -> str:
    """The key a build publishes under when stage_id's entry is taken by a build that uses it."""
    return hashlib.sha256(f"{stage_id}:{uuid.uuid4()}".encode()).hexdigest()


@contextlib.contextmanager
def publishing(store: Store, stage_id: str, name: str, *, replace: bool) -> Iterator[tuple[Path, Path]]:
    """A new checkpoint for stage_id: yields (folder to fill, the folder it will have once published) while the
    key is held exclusively; it appears whole when the block succeeds.

    Published under stage_id when free; when taken, with replace (a cold rebuild) the old entry is removed if no
    build uses it; otherwise under a private key, so nothing another build depends on ever changes under it."""
    key = stage_id
    if store.entry(key) is not None and not (replace and store.remove(key)):
        key = private_key(stage_id)
    try:
        with store.new_entry(key, KIND, name) as folders:
            yield folders
    except FileExistsError:  # published by another build since we looked
        with store.new_entry(private_key(stage_id), KIND, name) as folders:
            yield folders


def meta(step: str, stage_id: str, parent: Checkpoint | None, requires: tuple[str, ...] = ()) -> dict[str, object]:
    return {"step": step, "stage_id": stage_id, "layer": uuid.uuid4().hex,
            "parent": parent.key if parent else "", "parent_layer": parent.layer if parent else "",
            "requires": list(requires)}
