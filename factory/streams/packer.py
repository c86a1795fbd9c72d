"""Packer's `-machine-readable` stream: `timestamp,target,type,data...` lines on stdout.

As Packer's MachineReadableUi writes them (packer/ui.go): the Unix time in seconds, the target (a build's name
for machine messages such as artifact-count, empty for ui lines, whose text carries the `==> name:` prefix as
Packer's TargetedUI puts it there), the type, then the data fields joined by commas, each with `,` written as
`%!(PACKER_COMMA)`, carriage returns as `\\r` and newlines as `\\n`. The end of a run follows Packer's build
command: "Wait completed", error-count and error lines, then artifact-count and the artifact lines of every
successful build.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO

from factory import secrets
from factory import ui as console_ui
from factory.events import Event, EventKind
from factory.streams.summary import Results


def escape(field: str) -> str:
    """One data field as Packer escapes it (commas first, then CR and LF)."""
    return field.replace(",", "%!(PACKER_COMMA)").replace("\r", "\\r").replace("\n", "\\n")


def line(target: str, kind: str, *data: str, when: float | None = None) -> str:
    stamp = int(time.time() if when is None else when)
    fields = ",".join(escape(secrets.mask(d)) for d in data)
    return f"{stamp},{target},{kind},{fields}"


def durafmt(seconds: float) -> str:
    """Packer's durafmt.Parse(d).LimitFirstN(2): the two largest non-zero units, e.g. '1 minute 5 seconds'."""
    micros = round(seconds * 1_000_000)
    units = (("hour", 3_600_000_000), ("minute", 60_000_000), ("second", 1_000_000), ("millisecond", 1000),
             ("microsecond", 1))
    parts = []
    for name, size in units:
        n, micros = divmod(micros, size)
        if n:
            parts.append(f"{n} {name}" + ("s" if n != 1 else ""))
    return " ".join(parts[:2]) or "0 seconds"


class MachineReadableMonitor:
    """Renders bus events as Packer's machine-readable lines (progress ticks have no line, as in Packer)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()

    def write(self, text: str) -> None:
        with self._lock:
            try:
                self.stream.write(text + "\n")
                self.stream.flush()
            except BrokenPipeError:  # Packer ignores EPIPE too: the reader went away
                pass

    def ui(self, kind: str, message: str, when: float | None = None) -> None:
        self.write(line("", "ui", kind, message, when=when))

    def __call__(self, ev: Event) -> None:
        # -timestamp-ui: Packer wraps each build's UI (not the end-of-run summary) in its TimestampedUi, which puts
        # the time in front of the text, inside the data field.
        stamp = console_ui.stamp()
        say = stamp + (f"==> {ev.build}: " if ev.build else "")
        msg = stamp + (f"    {ev.build}: " if ev.build else "")
        k = ev.kind
        if k in (EventKind.STEP_STARTED, EventKind.MESSAGE, EventKind.CLEANUP, EventKind.NOTICE,
                 EventKind.PROGRESS_STARTED):
            self.ui("say", say + (ev.message or ev.step), ev.time)
        elif k is EventKind.WARNING:
            self.ui("say", f"{say}warning: {ev.message}", ev.time)
        elif k in (EventKind.OUTPUT, EventKind.PROGRESS_FINISHED, EventKind.ARTIFACT):
            self.ui("message", msg + (f"[{ev.source}] " if k is EventKind.OUTPUT and ev.source else "")
                    + ev.message, ev.time)
        elif k is EventKind.STEP_FAILED:
            self.ui("error", f"{say}{ev.message}", ev.time)
        elif k is EventKind.BUILD_FINISHED:
            self.ui("say", f"{stamp}Build '{ev.build}' finished after {durafmt(ev.duration)}.", ev.time)
        elif k is EventKind.BUILD_FAILED:
            self.ui("error", f"{stamp}Build '{ev.build}' errored after {durafmt(ev.duration)}: {ev.message}",
                    ev.time)

    def summary(self, results: Results, waited: float, interrupted: bool = False) -> None:
        """The end of `packer build`: wait time, then errors, then every successful build's artifacts."""
        self.ui("say", f"\n==> Wait completed after {durafmt(waited)}")
        if interrupted:
            self.ui("say", "Cleanly cancelled builds after being interrupted.")
            return
        failed = results.failed()
        if failed:
            self.write(line("", "error-count", str(len(failed))))
            self.ui("error", "\n==> Some builds didn't complete successfully and had errors:")
            for rec in failed:
                self.write(line(rec.name, "error", rec.error))
                self.ui("error", f"--> {rec.name}: {rec.error}")
        done = [r for r in results.succeeded() if r.artifacts]
        if not done:
            self.ui("say", "\n==> Builds finished but no artifacts were created.")
            return
        self.ui("say", "\n==> Builds finished. The artifacts of successful builds are:")
        for rec in done:
            self.write(line(rec.name, "artifact-count", str(len(rec.artifacts))))
            for i, art in enumerate(rec.artifacts):
                self.artifact(rec.name, i, art)
                self.ui("say", f"--> {rec.name}: {art.get('string', '')}")

    def artifact(self, target: str, index: int, art: dict[str, object]) -> None:
        n = str(index)
        files = [str(f) for f in art.get("files", []) or []]  # type: ignore[attr-defined]
        self.write(line(target, "artifact", n, "builder-id", str(art.get("builder_id", ""))))
        self.write(line(target, "artifact", n, "id", str(art.get("id", ""))))
        self.write(line(target, "artifact", n, "string", str(art.get("string", ""))))
        self.write(line(target, "artifact", n, "files-count", str(len(files))))
        for fi, f in enumerate(files):
            self.write(line(target, "artifact", n, "file", str(fi), f))
        self.write(line(target, "artifact", n, "end"))
