"""What each build did, gathered from its events: steps with their times, artifacts, screenshots, the serial
console's last lines, how it ended. The step table, the end-of-run summaries and the report read it."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from factory import ui
from factory.events import Event, EventKind

SERIAL_TAIL = 60
OUTPUT_TAIL = 30


@dataclass
class StepRecord:
    name: str
    title: str
    started: float                 # wall clock (event time)
    duration: float = 0.0
    status: str = "running"        # running | ok | failed
    from_checkpoint: bool = False
    stage_id: str = ""


@dataclass
class BuildRecord:
    name: str
    started: float = 0.0
    duration: float = 0.0
    status: str = "running"        # running | ok | failed
    error: str = ""
    steps: list[StepRecord] = field(default_factory=list)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    screenshots: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    serial: deque[str] = field(default_factory=lambda: deque(maxlen=SERIAL_TAIL))
    output: deque[str] = field(default_factory=lambda: deque(maxlen=OUTPUT_TAIL))  # provisioners, post ...

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class Results:
    """A bus subscriber that keeps one BuildRecord per build name, in the order builds started."""

    def __init__(self) -> None:
        self.builds: dict[str, BuildRecord] = {}
        self._lock = threading.Lock()

    def record(self, name: str) -> BuildRecord:
        with self._lock:
            return self.builds.setdefault(name, BuildRecord(name))

    def __call__(self, ev: Event) -> None:
        if not ev.build:
            return
        rec = self.record(ev.build)
        if ev.kind is EventKind.BUILD_STARTED:
            rec.started = ev.time
        elif ev.kind is EventKind.STEP_STARTED:
            rec.steps.append(StepRecord(ev.step, ev.message or ev.step, ev.time, stage_id=ev.stage_id))
        elif ev.kind in (EventKind.STEP_FINISHED, EventKind.STEP_FAILED):
            step = next((s for s in reversed(rec.steps) if s.name == ev.step), None)
            if step is None:  # a step restored from a checkpoint may report only its end
                step = StepRecord(ev.step, ev.step, ev.time - ev.duration, stage_id=ev.stage_id)
                rec.steps.append(step)
            step.duration, step.from_checkpoint = ev.duration, ev.from_checkpoint
            step.status = "ok" if ev.kind is EventKind.STEP_FINISHED else "failed"
        elif ev.kind is EventKind.ARTIFACT and ev.data:
            rec.artifacts.append(dict(ev.data))
        elif ev.kind is EventKind.OUTPUT and ev.source == "serial":
            rec.serial.append(ev.message)
        elif ev.kind is EventKind.OUTPUT:
            rec.output.append(f"[{ev.source}] {ev.message}" if ev.source else ev.message)
        elif ev.kind in (EventKind.NOTICE, EventKind.WARNING):
            rec.notices.append(ev.message)
        if "screenshot" in ev.data:
            rec.screenshots.append(str(ev.data["screenshot"]))
        if ev.kind in (EventKind.BUILD_FINISHED, EventKind.BUILD_FAILED):
            rec.duration = ev.duration
            rec.status = "ok" if ev.kind is EventKind.BUILD_FINISHED else "failed"
            rec.error = ev.message if rec.status == "failed" else ""

    def failed(self) -> list[BuildRecord]:
        return [b for b in self.builds.values() if b.status == "failed"]

    def succeeded(self) -> list[BuildRecord]:
        return [b for b in self.builds.values() if b.ok]


def step_table(rec: BuildRecord) -> list[str]:
    """Where the time went: one line per step with its time, its share of the build and whether it came from a
    checkpoint (plain text, so CI logs keep it)."""
    total = rec.duration or sum(s.duration for s in rec.steps) or 1.0
    width = max([len(s.name) for s in rec.steps] + [4])
    lines = [f"{'step':<{width}}  {'time':>8}  {'share':>5}  checkpoint"]
    for s in rec.steps:
        mark = "yes" if s.from_checkpoint else ""
        state = "" if s.status == "ok" else f"  ({s.status})"
        lines.append(f"{s.name:<{width}}  {fmt_seconds(s.duration):>8}  {s.duration / total:>5.0%}  "
                     f"{mark:<10}{state}".rstrip())
    lines.append(f"{'total':<{width}}  {fmt_seconds(rec.duration):>8}")
    return lines


def print_step_tables(results: Results) -> None:
    """The console's end of a run: each build's step table under its name."""
    for rec in results.builds.values():
        if not rec.steps:
            continue
        ui.info(f"==> {rec.name}: where the time went:")
        for line in step_table(rec):
            ui.info(f"    {rec.name}: {line}")


def fmt_seconds(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s"
