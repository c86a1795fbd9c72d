"""The one event path: every message and progress report a user sees is an Event on an EventBus.

Monitors subscribe to the bus (the console, Packer's -machine-readable stream, the JSON lines of --events,
Prometheus metrics, the HTML report), so they all see the same stream. Code that runs inside a build but has no
build context at hand (downloads, remaster, exports, checksums) reports to the current bus: the build's while
a build runs (run_steps installs it), else a process-wide one printing to the console.
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from factory import secrets


class EventKind(StrEnum):
    """What happened; `KIND_HELP` says what each means (the reference page prints it)."""

    BUILD_STARTED = "build-started"
    STEP_STARTED = "step-started"
    STEP_FINISHED = "step-finished"
    STEP_FAILED = "step-failed"
    MESSAGE = "message"
    OUTPUT = "output"
    NOTICE = "notice"
    WARNING = "warning"
    PROGRESS_STARTED = "progress-started"
    PROGRESS = "progress"
    PROGRESS_FINISHED = "progress-finished"
    CLEANUP = "cleanup"
    ARTIFACT = "artifact"
    BUILD_FINISHED = "build-finished"
    BUILD_FAILED = "build-failed"


KIND_HELP: dict[EventKind, str] = {
    EventKind.BUILD_STARTED: "a build (one source of one build block) begins",
    EventKind.STEP_STARTED: "a step begins: `step`, its `stage_id`, `message` its title",
    EventKind.STEP_FINISHED: "a step ended well: `duration`, `from_checkpoint`",
    EventKind.STEP_FAILED: "a step failed: `message` says why, `duration`",
    EventKind.MESSAGE: "something the user should read",
    EventKind.OUTPUT: "a line of guest, provisioner or console output; `source` says whose (serial, shell ...)",
    EventKind.NOTICE: "something that must not be missed",
    EventKind.WARNING: "something is probably not what the user meant",
    EventKind.PROGRESS_STARTED: "long work begins: `message` is its label, `total` its size (0: unknown)",
    EventKind.PROGRESS: "`done` of `total` so far (at most a few a second)",
    EventKind.PROGRESS_FINISHED: "long work ended: `message` says how long it took",
    EventKind.CLEANUP: "what is being undone at the end of a build",
    EventKind.ARTIFACT: "an artifact was made: `data` has builder_id, id, string, files",
    EventKind.BUILD_FINISHED: "the build succeeded: `duration`",
    EventKind.BUILD_FAILED: "the build failed: `message` says why, `duration`",
}


PROGRESS_KINDS = (EventKind.PROGRESS_STARTED, EventKind.PROGRESS, EventKind.PROGRESS_FINISHED)


@dataclass(frozen=True)
class Event:
    kind: EventKind = field(metadata={"json": "type", "help": "what happened (the kinds below)"})
    build: str = field(metadata={"help": "the build's name (`build.type.source`), empty outside a build"})
    message: str = field(default="", metadata={"help": "the text a person reads (secrets masked)"})
    step: str = field(default="", metadata={"help": "STEP_*: the step's name"})
    stage_id: str = field(default="", metadata={"help": "STEP_*: sha256 of the step's inputs and its parent's ID"})
    source: str = field(default="", metadata={"help": "OUTPUT: whose line (serial, shell, post ...); "
                                                     "PROGRESS*: the task's id"})
    time: float = field(default_factory=time.time, metadata={"help": "Unix time, seconds"})
    done: int = field(default=0, metadata={"help": "PROGRESS*: units done so far"})
    total: int = field(default=0, metadata={"help": "PROGRESS*: units in all (0: unknown)"})
    unit: str = field(default="", metadata={"help": "PROGRESS*: `bytes`, or empty for counts"})
    activity: str = field(default="", metadata={"help": "PROGRESS*: download, export, upload ... (metrics count "
                                                       "bytes by it)"})
    duration: float = field(default=0.0, metadata={"help": "STEP_FINISHED/FAILED, BUILD_FINISHED/FAILED: seconds "
                                                          "it took"})
    from_checkpoint: bool = field(default=False, metadata={"help": "STEP_FINISHED/FAILED: restored from a "
                                                                  "checkpoint instead of run"})
    data: Mapping[str, Any] = field(default_factory=dict, metadata={
        "help": "structured extras: an ARTIFACT's builder_id, id, string and files; a `screenshot` path"})

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (--events): empty fields left out, messages masked."""
        out: dict[str, Any] = {"time": round(self.time, 3), "type": self.kind.value, "build": self.build}
        for key in ("step", "stage_id", "source", "message", "activity"):
            value = getattr(self, key)
            if value:
                out[key] = secrets.mask(value) if key == "message" else value
        if self.kind in PROGRESS_KINDS:
            out.update({"done": self.done, "total": self.total, "unit": self.unit})
        if self.kind in TIMED_KINDS:
            out["duration"] = round(self.duration, 3)
        if self.kind in STEP_KINDS:
            out["from_checkpoint"] = self.from_checkpoint
        if self.data:
            out["data"] = json.loads(secrets.mask(json.dumps(dict(self.data))))
        return out

    def as_json(self) -> str:
        return json.dumps(self.as_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        """The inverse of as_dict (a parallel build's events cross a pipe as JSON lines)."""
        fields = {k: v for k, v in data.items() if k in _FIELDS and k not in ("type", "time")}
        return cls(EventKind(data["type"]), time=float(data.get("time", time.time())), **fields)


TIMED_KINDS = (EventKind.STEP_FINISHED, EventKind.STEP_FAILED, EventKind.BUILD_FINISHED, EventKind.BUILD_FAILED)
STEP_KINDS = (EventKind.STEP_FINISHED, EventKind.STEP_FAILED)
_FIELDS = frozenset(Event.__dataclass_fields__)


Subscriber = Callable[[Event], None]


class EventBus:
    """Fan-out of events to monitors; thread-safe (serial followers and SSH readers emit from threads)."""

    def __init__(self) -> None:
        self._subs: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, fn: Subscriber) -> None:
        self._subs.append(fn)

    def unsubscribe(self, fn: Subscriber) -> None:
        """Stop sending events to fn (no-op when it is not subscribed)."""
        with self._lock:
            if fn in self._subs:
                self._subs.remove(fn)

    def emit(self, event: Event) -> None:
        with self._lock:
            for fn in self._subs:
                fn(event)


_current: contextvars.ContextVar[tuple[EventBus, str] | None] = contextvars.ContextVar("factory_bus", default=None)
_default: EventBus | None = None
_default_lock = threading.Lock()
_console_monitor: Callable[[], Subscriber] | None = None
_default_console: Subscriber | None = None  # the console monitor subscribed to the default bus, replaced on reinstall


def set_console_monitor(make: Callable[[], Subscriber]) -> None:
    """Name the monitor the default bus prints with: the CLI installs its console monitor at start, so this
    module (below every runtime package) names none of them."""
    global _console_monitor
    with _default_lock:
        _console_monitor = make
        if _default is not None:
            _subscribe_console(_default)


def _subscribe_console(bus: EventBus) -> None:
    """(Re)place the default bus's console monitor: installing it again (the CLI's entry point runs once per
    command, and library users may call it many times in one process) must not print every message twice."""
    global _default_console
    if _default_console is not None:
        bus.unsubscribe(_default_console)
    _default_console = _console_monitor() if _console_monitor is not None else None
    if _default_console is not None:
        bus.subscribe(_default_console)


def default_bus() -> EventBus:
    """The bus outside a build (stand-alone commands like `factory iso-build`): the console monitor, if the
    program installed one with set_console_monitor."""
    global _default
    with _default_lock:
        if _default is None:
            _default = EventBus()
            _subscribe_console(_default)
        return _default


@contextlib.contextmanager
def using(bus: EventBus, build: str) -> Iterator[None]:
    """Make bus the current one (for this thread) for the block: a build installs its own."""
    token = _current.set((bus, build))
    try:
        yield
    finally:
        _current.reset(token)


def current() -> tuple[EventBus, str]:
    """The current bus and build name ("" outside a build)."""
    return _current.get() or (default_bus(), "")


def emit(kind: EventKind, message: str = "", **fields: object) -> None:
    bus, build = current()
    bus.emit(Event(kind, build, message, **fields))  # type: ignore[arg-type]


def say(message: str) -> None:
    emit(EventKind.MESSAGE, message)


def notice(message: str) -> None:
    emit(EventKind.NOTICE, message)


def warn(message: str) -> None:
    emit(EventKind.WARNING, message)


class Tracker(Protocol):
    def advance(self, n: int) -> None: ...


_task_ids = itertools.count(1)
THROTTLE = 0.25  # seconds between PROGRESS events of one task


class _Tracker:
    def __init__(self, bus: EventBus, build: str, task: str, label: str, total: int, unit: str,
                 activity: str) -> None:
        self.bus, self.build, self.task, self.label, self.total, self.unit = bus, build, task, label, total, unit
        self.activity = activity
        self.done, self._last = 0, 0.0

    def event(self, kind: EventKind, message: str) -> Event:
        return Event(kind, self.build, message, source=self.task, done=self.done, total=self.total, unit=self.unit,
                     activity=self.activity)

    def advance(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if now - self._last >= THROTTLE:
            self._last = now
            self.bus.emit(self.event(EventKind.PROGRESS, self.label))


@contextlib.contextmanager
def progress(label: str, total: int | None, *, unit_bytes: bool = True, activity: str = "") -> Iterator[Tracker]:
    """Report long work (downloads, remaster, exports) as progress events on the current bus; `activity`
    ("download", "export", "upload" ...) is what metrics count the bytes under."""
    bus, build = current()
    tracker = _Tracker(bus, build, f"p{next(_task_ids)}", label, total or 0, "bytes" if unit_bytes else "",
                       activity)
    start = time.monotonic()
    bus.emit(tracker.event(EventKind.PROGRESS_STARTED, label))
    outcome = "stopped after"
    try:
        yield tracker
        outcome = "done in"
    finally:
        bus.emit(tracker.event(EventKind.PROGRESS_FINISHED, f"{label}: {outcome} {time.monotonic() - start:.1f}s"))
