"""The step runner: steps with explicit, hashable inputs; cleanups in reverse on failure, Ctrl-C or SIGTERM;
events that the monitors (console, Packer's machine-readable stream, JSON lines, metrics, report) subscribe to.

A stage ID is sha256 over the step's name, its options, its parent's ID and the digests (BLAKE3) of the files it
reads (osbuild's scheme), so a later step cache can name a qcow2 layer after each step and resume from the last good
one. Inputs are external files by content (scripts, uploads, local ISOs); what an earlier step made (the
remastered ISO, the seed CD) is covered by the parent ID instead of being hashed again.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import signal
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Generic, Protocol, TextIO, TypeVar

from factory import ui
from factory.errors import FactoryError
from factory.events import PROGRESS_KINDS, Event, EventBus, EventKind, Subscriber, using
from factory.fsutil import file_blake3

__all__ = ["Event", "EventBus", "EventKind", "Subscriber"]  # re-exported: steps import them from the runner


class HumanMonitor:
    """Packer-like lines: `==> name: message`, output indented under its source; progress as rich bars on a
    terminal, else one line when it starts and one when it ends (CI logs stay short).

    The guest's serial console is for its log file, not for people (it is most of a build's lines): it is shown
    only with `show_serial` (`--debug`); otherwise its last lines are printed when a step fails."""

    SERIAL_TAIL = 25

    def __init__(self, show_serial: bool = False) -> None:
        self.show_serial = show_serial
        self._serial: dict[str, deque[str]] = {}
        self._bars: ui.Bars | None = None

    def __call__(self, ev: Event) -> None:
        prefix = f"==> {ev.build}: " if ev.build else ""
        named = f"{ev.build}: " if ev.build else ""
        if ev.kind in PROGRESS_KINDS:
            self._progress(ev, prefix)
        elif ev.kind is EventKind.STEP_STARTED:
            ui.info(f"{prefix}{ev.message or ev.step}")
        elif ev.kind is EventKind.OUTPUT and ev.source == "serial" and not self.show_serial:
            self._serial.setdefault(ev.build, deque(maxlen=self.SERIAL_TAIL)).append(ev.message)
        elif ev.kind is EventKind.OUTPUT:
            ui.info(f"    {ev.build}: [{ev.source}] {ev.message}" if ev.source else f"    {ev.build}: {ev.message}")
        elif ev.kind is EventKind.NOTICE:
            ui.notice(f"{named}{ev.message}")
        elif ev.kind is EventKind.WARNING:
            ui.warn(f"{named}{ev.message}")
        elif ev.kind is EventKind.STEP_FAILED:
            self._serial_tail(ev.build)
            ui.error(f"{ev.build}: step {ev.step!r} failed")
        elif ev.kind is EventKind.BUILD_FINISHED:
            ui.success(f"{prefix}{ev.message}")
        elif ev.kind in (EventKind.MESSAGE, EventKind.CLEANUP, EventKind.ARTIFACT, EventKind.BUILD_STARTED):
            ui.info(f"{prefix}{ev.message}")

    def _progress(self, ev: Event, prefix: str) -> None:
        if not ui.on_terminal():
            if ev.kind is not EventKind.PROGRESS:
                ui.info(f"{prefix}{ev.message}" + (" ..." if ev.kind is EventKind.PROGRESS_STARTED else ""))
            return
        if self._bars is None:
            self._bars = ui.Bars()
        # Parallel builds run in their own processes, whose task ids repeat: the build names the task too.
        self._bars.show(f"{ev.build}/{ev.source}", ev.message, ev.done, ev.total, bytes_=ev.unit == "bytes",
                        finished=ev.kind is EventKind.PROGRESS_FINISHED)

    def _serial_tail(self, build: str) -> None:
        lines = self._serial.pop(build, None)
        if lines:
            ui.info(f"    {build}: last {len(lines)} lines of the serial console (the whole log is in its file):")
            for line in lines:
                ui.info(f"    {build}: [serial] {line}")


class JsonMonitor:
    """One JSON object per line on a stream (stdout by default): `--events FILE|-`."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    def __call__(self, ev: Event) -> None:
        with contextlib.suppress(BrokenPipeError):  # a reader that went away (| head) must not fail the build
            self.stream.write(ev.as_json() + "\n")
            self.stream.flush()


BIG_FILE = 16 << 20


def content_digest(path: Path) -> str:
    """file_blake3, remembered for big files (base images, ISOs) under their identity and change time: every
    build computes its stage IDs, and hashing a 400 MB image each time would cost a build's start. The change time
    (ctime) moves on any write, rename or chmod and cannot be set back, so a remembered digest is never stale."""
    st = path.stat()
    if st.st_size < BIG_FILE:
        return file_blake3(path)
    from factory import paths
    from factory.fsutil import atomic_path

    ident = f"{path.resolve()}\0{st.st_dev}\0{st.st_ino}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ctime_ns}"
    memo = paths.cache_dir("digests") / ("blake3-" + hashlib.sha256(ident.encode()).hexdigest())
    with contextlib.suppress(OSError):
        known = memo.read_text().strip()
        if len(known) == 64:
            return known
    digest = file_blake3(path)
    with contextlib.suppress(OSError, FactoryError), atomic_path(memo) as tmp:  # the memo is optional
        tmp.write_text(digest)
    return digest


def digest_of(value: Any) -> Any:
    """A JSON-able form of a step input that depends on content only: a file is its BLAKE3 digest, a folder the
    BLAKE3 of each file under its relative name, never a path, a size or a time (IDs hold across hosts)."""
    if isinstance(value, Path):
        if value.is_file():
            return "blake3:" + content_digest(value)
        if value.is_dir():
            return {"dir": [[str(p.relative_to(value)), file_blake3(p)]
                            for p in sorted(value.rglob("*")) if p.is_file()]}
        return f"missing:{value.name}"
    if isinstance(value, bytes):
        return "sha256:" + hashlib.sha256(value).hexdigest()
    if isinstance(value, Mapping):
        return {str(k): digest_of(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [digest_of(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


def stage_id(name: str, options: Mapping[str, Any], parent: str, inputs: Mapping[str, Any]) -> str:
    """osbuild's stage ID: sha256 over name, options, parent ID and input digests (canonical JSON)."""
    doc = {"name": name, "options": digest_of(options), "parent": parent, "inputs": digest_of(inputs)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class Cleanups:
    """A stack of undo actions; run in reverse, each one guarded so one failure does not skip the rest."""

    def __init__(self) -> None:
        self._stack: list[tuple[str, Callable[[], None]]] = []

    def push(self, label: str, fn: Callable[[], None]) -> None:
        self._stack.append((label, fn))

    def __len__(self) -> int:
        return len(self._stack)

    def labels(self) -> list[str]:
        return [label for label, _ in self._stack]

    def run_all(self, report: Callable[[str], None]) -> None:
        with _signals_deferred():
            while self._stack:
                label, fn = self._stack.pop()
                try:
                    fn()
                except Exception as exc:  # keep cleaning up; report what failed
                    report(f"cleanup {label!r} failed: {exc}")


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    """Ignore SIGINT/SIGTERM while cleaning up: a second Ctrl-C must not leave a VM running."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an exception so cleanups run exactly as for Ctrl-C."""


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise Terminated()

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


class OnError(StrEnum):
    """Packer's -on-error: what a failed build leaves behind."""

    CLEANUP = "cleanup"                                  # undo everything (the default)
    ABORT = "abort"                                      # leave the VM and files for inspection
    ASK = "ask"                                          # prompt: clean up, abort, or retry the failed step
    RUN_CLEANUP_PROVISIONER = "run-cleanup-provisioner"  # the error-cleanup-provisioner, then as abort


C = TypeVar("C")


class Step(ABC, Generic[C]):
    """One unit of a build. `options`/`inputs` describe it for its stage ID; `run` does the work and registers
    undo actions with ctx.cleanups.push(...).

    Checkpoints: the machine steps (`resumable`: boot, connect, each provisioner) form one segment that a stored
    checkpoint can cover up to a `checkpoint` step; a covered step is not run again, except a `restarts` step,
    which brings the machine up from the checkpoint instead (boot, connect)."""

    name: str = ""
    title: str = ""
    resumable: bool = False
    checkpoint: bool = False
    restarts: bool = False
    host_effects: bool = False  # it makes something outside the machine (a download): no checkpoint may cover it

    def options(self, ctx: C) -> Mapping[str, Any]:
        return {}

    def inputs(self, ctx: C) -> Mapping[str, Any]:
        return {}

    def applies(self, ctx: C) -> bool:
        """False when the build does not need this step (it is then skipped silently, no stage ID)."""
        return True

    @abstractmethod
    def run(self, ctx: C) -> None: ...


class Checkpointer(Protocol):
    """Keeps and restores machine checkpoints for the runner (factory.steps.checkpoint implements it)."""

    def restore(self, ctx: Any, candidates: Sequence[tuple[str, str]]) -> str | None:
        """candidates: (step name, stage ID) of the checkpoint steps ahead, in order. Prepare the machine to start
        from the longest stored one; return its step name (None: nothing stored, start cold)."""

    def save(self, ctx: Any, step: str, sid: str, *, last: bool = False) -> None:
        """Keep the running machine's state after step (stage ID sid); last: no checkpoint step follows."""

    def failed(self, ctx: Any) -> None:
        """The build failed: tell the user what is kept and the command that resumes it."""


@dataclass
class RunnerContext:
    """What every build context provides to the runner."""

    build_name: str
    bus: EventBus
    cleanups: Cleanups = field(default_factory=Cleanups)
    on_error: OnError = OnError.CLEANUP
    stage_ids: dict[str, str] = field(default_factory=dict)
    checkpoints: Checkpointer | None = None
    ask: Callable[[str], str] | None = None       # -on-error=ask: asks a question, returns the answer

    def emit(self, kind: EventKind, message: str = "", *, step: str = "", stage_id: str = "",
             source: str = "", **extra: Any) -> None:
        """extra: Event's other fields (duration, from_checkpoint, data)."""
        self.bus.emit(Event(kind, self.build_name, message, step=step, stage_id=stage_id, source=source, **extra))

    def say(self, message: str) -> None:
        self.emit(EventKind.MESSAGE, message)

    def output(self, source: str, line: str) -> None:
        self.emit(EventKind.OUTPUT, line, source=source)


R = TypeVar("R", bound=RunnerContext)


def next_stage_id(step: Step[R], ctx: R, parent: str) -> str:
    """The stage ID of step after parent, from the step's options and the digests of what it reads."""
    return stage_id(step.name, step.options(ctx), parent, step.inputs(ctx))


def stage_chain(steps: Sequence[Step[R]], ctx: R) -> dict[str, str]:
    """The stage IDs a build would have, without running it (inputs that only a run makes are absent)."""
    ids: dict[str, str] = {}
    parent = ""
    for step in steps:
        if step.applies(ctx):
            parent = ids[step.name] = next_stage_id(step, ctx, parent)
    return ids


def run_steps(steps: Sequence[Step[R]], ctx: R, *, on_failure: Callable[[R, BaseException], None] | None = None
              ) -> None:
    """Run steps in order; on any failure or interrupt run on_failure, then every cleanup in reverse."""
    with using(ctx.bus, ctx.build_name):
        _run(steps, ctx, on_failure)


def _resume(steps: Sequence[Step[R]], ctx: R, parent: str) -> set[str]:
    """The names of the machine steps ahead that a stored checkpoint covers (the checkpointer restored it)."""
    assert ctx.checkpoints is not None
    segment: list[tuple[Step[R], str]] = []
    for step in steps:
        if not step.applies(ctx):
            continue
        if not step.resumable or step.host_effects:  # a checkpoint after it would skip what it makes
            break
        parent = next_stage_id(step, ctx, parent)
        segment.append((step, parent))
    found = ctx.checkpoints.restore(ctx, [(s.name, sid) for s, sid in segment if s.checkpoint])
    if found is None:
        return set()
    names = [s.name for s, _ in segment]
    return set(names[:names.index(found) + 1])


def _run(steps: Sequence[Step[R]], ctx: R, on_failure: Callable[[R, BaseException], None] | None) -> None:
    parent = ""
    started = time.monotonic()
    covered: set[str] | None = None
    ctx.emit(EventKind.BUILD_STARTED, "build started")
    try:
        for n, step in enumerate(steps):
            if not step.applies(ctx):
                continue
            if step.resumable and covered is None and ctx.checkpoints is not None:
                covered = _resume(steps[n:], ctx, parent)
            restored = step.name in (covered or ())
            sid = next_stage_id(step, ctx, parent)
            ctx.stage_ids[step.name] = sid
            ctx.emit(EventKind.STEP_STARTED, step.title or step.name, step=step.name, stage_id=sid,
                     from_checkpoint=restored)
            t0 = time.monotonic()
            if not restored or step.restarts:
                _run_step(step, ctx, sid, t0)
            took = time.monotonic() - t0
            ctx.emit(EventKind.STEP_FINISHED, f"{took:.1f}s" + (" (from checkpoint)" if restored else ""),
                     step=step.name, stage_id=sid, duration=took, from_checkpoint=restored)
            if step.checkpoint and not restored and ctx.checkpoints is not None:
                last = not any(s.checkpoint and s.applies(ctx) for s in steps[n + 1:])
                ctx.checkpoints.save(ctx, step.name, sid, last=last)
            parent = sid
    except BaseException as exc:
        ctx.emit(EventKind.BUILD_FAILED, _describe(exc), duration=time.monotonic() - started)
        if on_failure is not None:
            with contextlib.suppress(Exception):
                on_failure(ctx, exc)
        if ctx.checkpoints is not None and not isinstance(exc, KeyboardInterrupt):
            with contextlib.suppress(Exception):
                ctx.checkpoints.failed(ctx)
        if ctx.on_error not in (OnError.CLEANUP, OnError.ASK) and not isinstance(exc, KeyboardInterrupt):
            # Packer's abort / run-cleanup-provisioner: leave the VM and files for inspection.
            ctx.emit(EventKind.NOTICE, f"-on-error={ctx.on_error.value}: leaving everything in place: "
                     + "; ".join(reversed(ctx.cleanups.labels())))
        else:
            _cleanup(ctx)
        raise
    _cleanup(ctx)
    took = time.monotonic() - started
    ctx.emit(EventKind.BUILD_FINISHED, f"build finished after {took:.1f}s", duration=took)


ASK_PROMPT = ("step {step!r} failed: {why}\n[c] clean up and exit, [a] abort without cleanup, or [r] retry the "
              "step (the build may fail even if the retry succeeds)? ")


def _run_step(step: Step[R], ctx: R, sid: str, t0: float) -> None:
    """Run one step; with -on-error=ask a failure asks, as Packer does, whether to clean up, abort or retry."""
    while True:
        try:
            step.run(ctx)
            return
        except KeyboardInterrupt as exc:
            ctx.emit(EventKind.STEP_FAILED, _describe(exc), step=step.name, stage_id=sid,
                     duration=time.monotonic() - t0)
            raise
        except BaseException as exc:
            ctx.emit(EventKind.STEP_FAILED, _describe(exc), step=step.name, stage_id=sid,
                     duration=time.monotonic() - t0)
            if ctx.on_error is not OnError.ASK:
                raise
            answer = _ask(ctx, ASK_PROMPT.format(step=step.title or step.name, why=_describe(exc)))
            if answer != "r":
                ctx.on_error = OnError.ABORT if answer == "a" else OnError.CLEANUP
                raise
            ctx.emit(EventKind.NOTICE, f"retrying step {step.name!r}")


def _ask(ctx: RunnerContext, prompt: str) -> str:
    """c, a or r from the user; without a terminal to ask on, c (clean up), as the safe choice."""
    if ctx.ask is None:
        if not sys.stdin.isatty():
            ctx.emit(EventKind.NOTICE, "-on-error=ask: stdin is not a terminal, so cleaning up")
            return "c"
        ctx.ask = input
    while True:
        try:
            answer = ctx.ask(prompt).strip().lower()[:1]
        except EOFError:
            return "c"
        if answer in ("c", "a", "r"):
            return answer


def _cleanup(ctx: RunnerContext) -> None:
    if len(ctx.cleanups):
        ctx.emit(EventKind.CLEANUP, "cleaning up: " + ", ".join(reversed(ctx.cleanups.labels())))
    ctx.cleanups.run_all(lambda msg: ctx.emit(EventKind.NOTICE, msg))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, Terminated):
        return "terminated (SIGTERM)"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, FactoryError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"
