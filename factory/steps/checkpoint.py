"""Checkpoints of a machine build and resuming from them (the runner's Checkpointer for machine builds).

The disk a build runs on is a stack of layers in the store (factory.checkpoints): the disk step's result (the
base image copied or overlaid, resized) is layer 0, keyed by that step's stage ID; after boot-to-SSH and after
each provisioner the running machine's disk is frozen into a new layer keyed by that step's stage ID, with the
VM's running state beside it under -checkpoint=vm. A build reuses the longest chain whose keys match its own
stage IDs: it starts the machine on a new overlay over that layer (from the saved state when there is one, so
the guest does not boot again) and runs only the steps after it. Meanwhile the layers under the running disk,
immutable from then on, are compacted in the background (Driver.precompact), so that the Compact step only
commits the top layer into them.

What keeps a resumed build equal to a cold one: the stage IDs cover every input (see factory.build), so a stored
layer is only ever reused by a build that would have made the same machine state. The build's ephemeral SSH key
pair is kept in the store too (0600, keyed by its stage ID), because the guest in a checkpoint trusts that key.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from factory import checkpoints
from factory.checkpoints import Checkpoint, CheckpointMode
from factory.errors import FactoryError
from factory.events import EventKind
from factory.machine.driver import Feature, Layer, Precompaction
from factory.steps.context import BuildContext
from factory.store import Store, human_size

# What a resume that boots a checkpoint's disk (rather than continue its VM state) does not bring back.
LOST_ON_BOOT = "what earlier steps left outside the disk, such as files in /tmp or running services, is gone"


@dataclass
class MachineCheckpoints:
    """Keeps a machine build's checkpoints and restores the longest stored chain (see the module docstring)."""

    mode: CheckpointMode
    resume: bool = True
    command: str = ""                      # the command that resumes this build, printed when it fails
    store: Store = field(default_factory=Store)
    parent: Checkpoint | None = None       # the layer the running disk sits on
    last: str = ""                         # the step of the last good checkpoint (made or restored)
    rebooted: bool = False                 # this build resumed by booting a checkpoint's disk, not its VM state
    _holds: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    _holding: bool = False
    _layers: Path | None = None            # this build's writable layers, beside the store (hard links work)
    _count: int = 0
    _precompaction: Precompaction | None = None  # the layers under the running disk, compacted meanwhile
    _precompacting: bool = False

    @staticmethod
    def unusable(ctx: BuildContext) -> str:
        """Why this build cannot keep checkpoints ("" when it can)."""
        if ctx.driver is None or Feature.CHECKPOINT not in ctx.driver.features:
            return f"the {getattr(ctx.driver, 'name', '?')} driver cannot freeze a running machine's disks"
        s = ctx.s   # only qemu sources get here (the libvirt driver has no checkpoints)
        if s.format not in ctx.driver.checkpoint_formats:
            return f'format = "{s.format.value}": checkpoint layers are ' + "/".join(
                sorted(f.value for f in ctx.driver.checkpoint_formats))
        if s.skips_compaction:
            return "skip_compaction = true would publish a disk that depends on the store's layers"
        if s.disk_additional_size:
            return "disk_additional_size: only builds with one disk keep checkpoints"
        return ""

    def _hold(self, ctx: BuildContext, found: Sequence[Checkpoint]) -> None:
        """Keep these layers from `factory cache gc` while this build runs on them."""
        if not self._holding:
            self._holding = True
            ctx.cleanups.push("release the checkpoints in use", self.release)
        for cp in found:
            self._holds.enter_context(self.store.hold(cp.key))
            self.store.get(cp.key)  # used now: `gc --max-size` trims least recently used first

    def release(self) -> None:
        self._holds.close()

    def working_disk(self, ctx: BuildContext, suffix: str) -> Path:
        """A path for the disk layer the machine writes next, in a folder of this build's on the store's
        filesystem (removed at the end: what is kept is hard-linked into the store)."""
        if self._layers is None:
            import uuid

            self._layers = self.store.partial(f"layers-{uuid.uuid4().hex}")
            self._layers.mkdir(parents=True)
            folder = self._layers
            ctx.cleanups.push("remove the build's disk layers", lambda: shutil.rmtree(folder, ignore_errors=True))
        self._count += 1
        return self._layers / f"{ctx.vm_name}.{self._count}{suffix}"

    # --- layer 0 and the key pair: the disk and ssh-key steps ------------------------------------------------------

    def base_disk(self, ctx: BuildContext, name: str, make: Callable[[Path], None],
                  requires: tuple[str, ...] = ()) -> Path:
        """The disk step's result as a stored layer: reused when stored (and resuming), else made with make."""
        sid = ctx.stage_ids["disk"]
        found = checkpoints.chain(self.store, sid) if self.resume else None
        if not found and self.resume:
            try:  # builds of the same template at once: the first makes it, the others wait and reuse it
                with self.store.new_entry(sid, checkpoints.KIND, name) as (tmp, final):
                    self._make_base(tmp, name, sid, make, requires)
            except FileExistsError:
                pass
            found = checkpoints.chain(self.store, sid)
        elif found:
            ctx.say(f"disk: the stored base layer {sid[:12]} (from checkpoint)")
        if not found:  # a cold rebuild, or a stored one that is unusable (its base image is gone)
            with checkpoints.publishing(self.store, sid, name, replace=True) as (tmp, final):
                self._make_base(tmp, name, sid, make, requires)
            found = checkpoints.chain(self.store, final.name)
        if not found:
            raise FactoryError(f"the base layer {sid[:12]} just stored is not readable")
        self._hold(ctx, found)
        self.parent = found[0]
        return found[0].disk

    @staticmethod
    def _make_base(tmp: Path, name: str, sid: str, make: Callable[[Path], None], requires: tuple[str, ...]) -> None:
        make(tmp / name)
        (tmp / checkpoints.META).write_text(json.dumps(checkpoints.meta("disk", sid, None, requires)))

    def key_pair(self, ctx: BuildContext, generate: Callable[[], Any]) -> Any:
        """The build's ephemeral key pair, kept for the checkpoints whose guests trust it."""
        from factory.comm.keys import KeyPair, KeyType

        assert ctx.workdir is not None
        out = ctx.workdir / "keypair.json"

        def make(path: Path) -> None:
            pair = generate()
            path.touch(mode=0o600)
            path.write_text(json.dumps({"private": pair.private_openssh, "public": pair.public_openssh,
                                        "kind": pair.kind.value}))

        sid = ctx.stage_ids["ssh-key"]
        if not self.resume:
            self.store.remove(sid)  # a cold rebuild gets a new key, and so new stage IDs from the seed on
        self.store.cached(sid, "ssh-key", out, make)
        data = json.loads(out.read_text())
        out.unlink()
        pair = KeyPair(data["private"], data["public"], KeyType(data["kind"]))
        pair.register()
        return pair

    # --- the runner's Checkpointer -----------------------------------------------------------------------------

    def restore(self, ctx: BuildContext, candidates: Sequence[tuple[str, str]]) -> str | None:
        if not self.resume or ctx.disk is None or ctx.driver is None:
            return None
        hits = [(step, sid, found) for step, sid in reversed(candidates)
                if (found := checkpoints.chain(self.store, sid))]
        vm_state = self.mode is CheckpointMode.VM and Feature.VM_STATE in ctx.driver.features
        # With VM states, the latest checkpoint that has one: continuing it beats booting a later disk-only one.
        hit = next((h for h in hits if vm_state and h[2][0].state is not None), hits[0] if hits else None)
        if hit is None:
            return None
        step, sid, found = hit
        cp = found[0]
        self._hold(ctx, found)
        ctx.disk.unlink()
        ctx.driver.overlay_disk(cp.disk, ctx.disk)
        if cp.efivars is not None and ctx.efi_vars is not None:
            shutil.copyfile(cp.efivars, ctx.efi_vars)
        ctx.resume_state = cp.state if vm_state else None
        self.parent, self.last = cp, step
        self.rebooted = ctx.resume_state is None
        self._precompact(ctx)
        how = ("its saved VM state (no boot)" if ctx.resume_state else
               f"its disk (the guest boots again: {LOST_ON_BOOT})")
        ctx.emit(EventKind.NOTICE, f"resuming from the checkpoint after {step} ({sid[:12]}) with {how}; "
                 "-resume=false starts cold")
        return step

    def save(self, ctx: BuildContext, step: str, sid: str, *, last: bool = False) -> None:
        machine, driver = ctx.machine, ctx.driver
        if (self.mode is CheckpointMode.NONE or machine is None or driver is None or ctx.disk is None
                or self.parent is None or not machine.running()):
            return
        state = self.mode is CheckpointMode.VM and Feature.VM_STATE in driver.features
        if last and state:
            # Never used: a resume prefers the latest checkpoint with a VM state (continuing the one before and
            # running the last provisioner again takes seconds; booting this disk takes the boot), and editing
            # the last provisioner resumes from the one before anyway. Saving it only cost time (sync, freeze).
            return
        started = time.monotonic()
        if ctx.comm is not None:  # what the guest wrote goes to its disk: the layer alone is a usable disk
            with contextlib.suppress(Exception):
                ctx.comm.run("sync", on_line=lambda line: None, timeout=120.0 * ctx.timeout_factor)
        name = self.parent.disk.name
        nxt: Path | None = None
        try:
            with checkpoints.publishing(self.store, sid, name, replace=not self.resume) as (tmp, final):
                nxt = self.working_disk(ctx, ctx.disk.suffix)
                (ctx.disk,) = machine.checkpoint([Layer(ctx.disk, tmp / name, final / name, nxt)],
                                                 tmp / checkpoints.STATE if state else None)
                state = (tmp / checkpoints.STATE).exists()
                if ctx.efi_vars is not None and ctx.efi_vars.exists():
                    shutil.copyfile(ctx.efi_vars, tmp / checkpoints.EFIVARS)
                (tmp / checkpoints.META).write_text(json.dumps(checkpoints.meta(step, sid, self.parent)))
        except (FactoryError, OSError) as exc:
            if nxt is not None and ctx.disk == nxt:
                raise  # the machine already writes on top of the layer that was to be published
            ctx.emit(EventKind.NOTICE, f"no checkpoint after {step} ({getattr(exc, 'message', exc)}): this build "
                     "keeps no more checkpoints")
            self.mode = CheckpointMode.NONE
            return
        found = checkpoints.chain(self.store, final.name)
        if not found:
            raise FactoryError(f"the checkpoint just stored at {final} is not readable")
        self._hold(ctx, found[:1])
        self.parent, self.last = found[0], step
        self._precompact(ctx)
        entry = self.store.entry(final.name)
        ctx.say(f"checkpoint after {step}: {human_size(entry.size if entry else 0)}"
                + (" with the VM state" if state else "") + f" in {time.monotonic() - started:.1f}s")

    def _precompact(self, ctx: BuildContext) -> None:
        """From now on the layers under the running disk are immutable: compact them in the background (the
        driver's Precompaction), so that the Compact step commits only what the machine writes after this."""
        self._drop_precompaction()
        if ctx.driver is None or ctx.staging is None or self.parent is None:
            return
        s = ctx.s
        try:
            self._precompaction = ctx.driver.precompact(self.parent.disk, ctx.staging, s.format,
                                                        compress=s.disk_compression, args=s.qemu_img_args)
        except (FactoryError, OSError) as exc:  # the compaction at the end does it all, as without
            logging.getLogger(__name__).debug("no background compaction: %s", getattr(exc, "message", exc))
            return
        if self._precompaction is not None and not self._precompacting:
            self._precompacting = True
            ctx.cleanups.push("stop the background compaction", self._drop_precompaction)

    def _drop_precompaction(self) -> None:
        if self._precompaction is not None:
            self._precompaction.cancel()
            self._precompaction = None

    def precompaction(self) -> Precompaction | None:
        """The background compaction of the running disk's lower layers, handed over (to the Compact step)."""
        pre, self._precompaction = self._precompaction, None
        return pre

    def failed(self, ctx: BuildContext) -> None:
        if not self.last:
            return
        ctx.emit(EventKind.NOTICE, f"the checkpoint after {self.last} is kept; resume the build with:\n    "
                 + (self.command or "factory build <the same arguments>")
                 + (f"\n  this build resumed by booting a checkpoint's disk ({LOST_ON_BOOT}): if a step needs "
                    "what the ones before it left there, start cold with -resume=false, or keep VM states "
                    "(-checkpoint=vm)" if self.rebooted else ""))


def active(ctx: BuildContext) -> MachineCheckpoints | None:
    """The build's checkpoints, when it keeps them."""
    return ctx.checkpoints if isinstance(ctx.checkpoints, MachineCheckpoints) else None


def setup(ctx: BuildContext, mode: CheckpointMode, resume: bool, command: str) -> None:
    """Turn checkpoints on for a machine build (after its driver is chosen), unless mode is none or the build
    cannot keep them (then it says why and runs without)."""
    if mode is CheckpointMode.NONE:
        return
    why = MachineCheckpoints.unusable(ctx)
    if why:
        ctx.say(f"no checkpoints for this build: {why}")
        return
    ctx.checkpoints = MachineCheckpoints(mode, resume=resume, command=command)
