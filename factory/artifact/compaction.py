"""The qcow2 every qemu build publishes (compaction), and the atomic output file every exporter writes.

Apart from the exporters on purpose: every build compacts its disk, few export it, and the exporters' OVF, VMDK
and tar writers (and lxml) cost ~70 ms to import.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from factory import events
from factory.artifact.source import image_info
from factory.errors import FactoryError
from factory.fsutil import atomic_path, creation_mode
from factory.run import die_with_parent, run, which


def compact(disk: Path, out: Path, *, compress: bool = False, extra: Sequence[str] = ()) -> Path:
    """Rewrite disk as a compacted (optionally compressed) qcow2 at out: zero clusters are dropped.

    extra (qemu_img_args.convert) goes after factory's options and before the file names, as in Packer."""
    info = image_info(disk)
    with atomic_path(out) as tmp, events.progress(f"compacting {disk.name}", None):
        run(["qemu-img", "convert", "-f", info.format, *(["-c"] if compress else []), *extra, "-O", "qcow2",
             disk, tmp])
    return out


def _idle_child() -> None:
    """preexec_fn: the child dies with factory and runs at idle CPU priority (SCHED_IDLE: only on CPU time
    nothing else wants, so it never slows the emulated guest it runs beside)."""
    die_with_parent()
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


class Precompaction:
    """The lower, immutable layers of a qcow2 chain compacted in the background while the machine writes the
    top layer above them; at the end only the top layer is committed into that copy, instead of the whole chain
    being rewritten after the guest powered off. For a checkpointed build the lower layers are the last
    checkpoint's: the README's 390 MiB guest saves ~0.3 s (a full convert 0.35-1 s, the commit 0.05 s), a large
    image whose last steps wrote little saves most of its compaction.

    The result is the same disk (qemu-img compare says identical) with the same options as compact() writes
    (qcow2, uncompressed, no extra convert arguments): the driver offers this only for such a compaction."""

    def __init__(self, lower: Path, folder: Path) -> None:
        self.lower = lower.resolve()
        fd, tmp = tempfile.mkstemp(prefix=".precompacted.", suffix=".part", dir=folder)
        os.close(fd)
        self.path = Path(tmp)
        argv = [which("qemu-img"), "convert", "-f", "qcow2", "-O", "qcow2", str(self.lower), str(self.path)]
        try:
            self.proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                preexec_fn=_idle_child)
        except OSError:
            self.path.unlink(missing_ok=True)
            raise

    def finish(self, top: Path, dest: Path) -> str:
        """Write top's whole chain, compacted, to dest (atomically) if top sits directly on the layers compacted
        here and their compaction has finished: "" then, else why not (nothing written; the caller compacts the
        chain itself). Either way this precompaction is over: its process and file are gone."""
        try:
            why = self._unusable(top)
            if why:
                return why
            run(["qemu-img", "rebase", "-u", "-f", "qcow2", "-b", self.path, "-F", "qcow2", top])
            try:
                # -d: the top layer is removed next, emptying it would only cost time; -t unsafe: no flushes,
                # as qemu-img convert (compact) writes by default.
                run(["qemu-img", "commit", "-q", "-d", "-t", "unsafe", "-f", "qcow2", top])
            except FactoryError as exc:  # the top layer goes back onto its own layers, for the full compaction
                run(["qemu-img", "rebase", "-u", "-f", "qcow2", "-b", self.lower, "-F", "qcow2", top])
                return "could not take the last layer: " + exc.message.splitlines()[-1].strip()
            os.chmod(self.path, creation_mode())
            os.replace(self.path, dest)
            return ""
        finally:
            self.cancel()

    def _unusable(self, top: Path) -> str:
        assert self.proc is not None
        code = self.proc.poll()
        if code is None:
            return "had not finished (the machine left it too little idle CPU time)"
        if code != 0:
            err = self.proc.stderr.read().decode(errors="replace").strip() if self.proc.stderr else ""
            return f"failed: qemu-img convert exited with {code}" + (f": {err.splitlines()[-1]}" if err else "")
        info = image_info(top)
        if info.format != "qcow2" or not info.backing or (top.parent / info.backing).resolve() != self.lower:
            return f"was of other layers ({top.name} does not sit on {self.lower})"
        if info.virtual_size != image_info(self.path).virtual_size:
            return "was of another disk size (the last layer was resized)"
        return ""

    def cancel(self) -> None:
        """Stop the compaction and remove its file (idempotent)."""
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            self.proc.wait()
            if self.proc.stderr:
                self.proc.stderr.close()
            self.proc = None
        self.path.unlink(missing_ok=True)
