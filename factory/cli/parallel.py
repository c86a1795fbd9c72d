"""Parallel builds (`-parallel-builds=N`): each selected source of each build block runs in its own factory
process, whose events come back as JSON lines and are re-emitted on the parent's bus, so every monitor (console,
-machine-readable, --events, metrics, report) sees all builds as one stream.

Why processes rather than threads: a build owns signal handlers (Ctrl-C and SIGTERM run its cleanups, SIGUSR1
takes a screendump), QEMU children tied to the thread that started them (PR_SET_PDEATHSIG) and a current bus;
a process gives each build all of these unchanged, and one build's crash cannot take the others down. Ports,
the ISO cache and the store are already safe across processes (file locks, atomic renames).

The children run in their own sessions so a terminal's Ctrl-C reaches only the parent, which forwards exactly one
SIGINT to each (a second one during a child's cleanup could cut it short); if the parent dies, the kernel sends
each child SIGTERM, which runs its cleanups too.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from factory.build import EventBus, JsonMonitor, Terminated, sigterm_as_interrupt
from factory.events import Event, EventKind

# SIGTERM, not SIGKILL, when the parent dies: the child then runs its cleanups like for Ctrl-C.
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Job:
    """One source of one build block, as the child reloads it: the template with the same selections, and the
    index of the (build, source) pair among the selected ones."""

    name: str
    template: Path
    var: list[str]
    var_file: list[Path]
    only: list[str]
    except_: list[str]
    index: int
    root: Path
    opts: Any            # factory.steps.plan.BuildOptions (pickled as it is, so a new option needs no plumbing)
    run_uuid: str


def selected_pairs(project: Any) -> list[tuple[Any, Any]]:
    """Every (build block, source) the template selects, in order: what a build runs and a Job's index names."""
    return [(b, s) for b in project.builds for s in b.sources]


class _Child:
    """A running child: its events are parsed and re-emitted by a reader thread; stderr is kept for its error."""

    def __init__(self, job: Job, bus: EventBus, done: queue.Queue[str]) -> None:
        self.job, self.bus, self.seen_end = job, bus, False
        self.stderr = b""
        self.proc = subprocess.Popen([sys.executable, "-m", "factory.cli.parallel"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # a child that died at once is reported by its exit status
            self.proc.stdin.write(pickle.dumps(job))
            self.proc.stdin.close()
        self._err = threading.Thread(target=self._read_stderr, daemon=True)
        self._err.start()
        threading.Thread(target=self._pump, args=(done,), name=f"build:{job.name}", daemon=True).start()

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()

    def _pump(self, done: queue.Queue[str]) -> None:
        assert self.proc.stdout is not None
        try:
            for raw in self.proc.stdout:
                self._relay(raw)
        finally:  # whatever a monitor did, the child is reaped and run_jobs told: else it waits forever
            with contextlib.suppress(OSError, ValueError):
                self.proc.stdout.read()  # drained to its end, so a child still writing is never blocked
            self.proc.wait()
            self._err.join()
            done.put(self.job.name)

    def _relay(self, raw: bytes) -> None:
        try:
            ev = Event.from_dict(json.loads(raw))
        except (ValueError, KeyError, TypeError):
            return  # not an event (a library printing to stdout): never fatal to the stream
        self.seen_end = self.seen_end or ev.kind in (EventKind.BUILD_FINISHED, EventKind.BUILD_FAILED)
        try:
            self.bus.emit(ev)
        except Exception:  # one monitor's failure must not stop this build's other events (the report, metrics)
            logging.getLogger(__name__).debug("a monitor failed on %s from %s", ev.kind, self.job.name,
                                              exc_info=True)

    def signal(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signum)

    def error(self) -> str:
        """The child's own rendering of its error (file:line, hint), else its exit status."""
        text = self.stderr.decode(errors="replace").strip()
        lines = [ln.removeprefix("error: ") for ln in text.splitlines() if not ln.startswith("warning:")]
        return "\n".join(lines[-15:]) or f"the build's process exited with status {self.proc.returncode}"


def run_jobs(jobs: Sequence[Job], bus: EventBus, limit: int, fail_fast: bool) -> dict[str, str]:
    """Run the jobs, at most `limit` at a time (0: all at once); returns the error of each failed build by name.

    One failing build stops the others only with fail_fast. Ctrl-C or SIGTERM is forwarded once to every running
    child; the parent waits for all of them to clean up and then raises it."""
    pending = list(jobs)
    running: dict[str, _Child] = {}
    done: queue.Queue[str] = queue.Queue()
    failed: dict[str, str] = {}
    limit = limit if limit > 0 else len(jobs)
    with _forward_sigusr1(running):
        try:
            while pending or running:
                while pending and len(running) < limit:
                    job = pending.pop(0)
                    running[job.name] = _Child(job, bus, done)
                name = _next_done(done)
                child = running.pop(name)
                if child.proc.returncode != 0:
                    failed[name] = _close_failed(child, bus)
                    if fail_fast and (pending or running):
                        _stop_all(running, signal.SIGINT)
                        for job in pending:
                            failed[job.name] = "not started: another build failed (-fail-fast)"
                            bus.emit(Event(EventKind.BUILD_FAILED, job.name, failed[job.name]))
                        pending = []
        except KeyboardInterrupt as exc:
            _stop_all(running, signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT)
            _wait_all(running, done, bus, failed)
            raise
    return failed


def _next_done(done: queue.Queue[str]) -> str:
    while True:  # a timeout keeps the main thread responsive to signals on every platform
        with contextlib.suppress(queue.Empty):
            return done.get(timeout=0.5)


def _close_failed(child: _Child, bus: EventBus) -> str:
    error = child.error()
    if not child.seen_end:  # it died before its runner could say so (a bad template, a crash)
        bus.emit(Event(EventKind.BUILD_FAILED, child.job.name, error))
    return error


def _stop_all(running: dict[str, _Child], signum: int) -> None:
    for child in running.values():
        child.signal(signum)


def _wait_all(running: dict[str, _Child], done: queue.Queue[str], bus: EventBus, failed: dict[str, str]) -> None:
    """After an interrupt: every child is cleaning up; wait for each (a second Ctrl-C does not abandon them)."""
    while running:
        try:
            name = _next_done(done)
        except KeyboardInterrupt:
            continue
        child = running.pop(name)
        if child.proc.returncode != 0:
            failed[name] = _close_failed(child, bus)


@contextlib.contextmanager
def _forward_sigusr1(running: dict[str, _Child]) -> Iterator[None]:
    """`kill -USR1 <factory pid>` asks every running build for a screendump, as it does for one build."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGUSR1, lambda signum, frame: _stop_all(dict(running), signal.SIGUSR1))
    try:
        yield
    finally:
        signal.signal(signal.SIGUSR1, old)


def _term_with_parent(parent: int) -> None:
    """The kernel sends this process SIGTERM when its parent dies (Linux; elsewhere a no-op)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name:
        ctypes.CDLL(name, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def child_main() -> int:
    """A child: build one (build, source) pair, its events as JSON lines on stdout."""
    from factory.cli.options import load_template
    from factory.errors import FactoryError
    from factory.steps.plan import build_source

    parent = os.getppid()
    # SIGINT is how the parent stops this build (fail-fast, its own Ctrl-C): honour it even when the parent runs
    # with SIGINT ignored (nohup, a shell's background job), an ignore this process would otherwise inherit.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    job: Job = pickle.load(sys.stdin.buffer)  # written by our own parent process, never by a user
    bus = EventBus()
    bus.subscribe(JsonMonitor(sys.stdout))
    ended = threading.Event()
    bus.subscribe(lambda ev: ended.set() if ev.kind in (EventKind.BUILD_FINISHED, EventKind.BUILD_FAILED) else None)
    try:
        with sigterm_as_interrupt():
            _term_with_parent(parent)
            project = load_template(job.template, job.var, job.var_file, job.only, job.except_)
            b, source = selected_pairs(project)[job.index]
            build_source(b, source, job.root, bus, job.opts, job.run_uuid)
    except FactoryError as exc:
        if not ended.is_set():
            bus.emit(Event(EventKind.BUILD_FAILED, job.name, exc.message))
        sys.stderr.write(exc.render() + "\n")
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(child_main())
