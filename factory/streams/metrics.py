"""Prometheus metrics of a run, fed by the bus: step and build durations, build results, bytes downloaded,
exported and uploaded. Written as a text file (atomically, every few seconds and at the end) and/or served on
127.0.0.1 only (a build host's metrics are not for the network unless a proxy says so)."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    start_http_server,
    write_to_textfile,
)

from factory.errors import FactoryError
from factory.events import Event, EventKind

disable_created_metrics()  # type: ignore[no-untyped-call]  # the *_created series are noise for one run's counters

WRITE_EVERY = 5.0  # seconds between --metrics-file rewrites while builds run


@dataclass(frozen=True)
class MetricSpec:
    """One metric, declared once: the registry, the docs (docs/reference.md) and the tests read this table."""

    attr: str
    name: str                    # exposed name (a Counter gets `_total`)
    kind: type[Counter] | type[Gauge]
    help: str
    labels: tuple[str, ...] = ()

    @property
    def exposed(self) -> str:
        return f"{self.name}_total" if self.kind is Counter else self.name


METRICS = (
    MetricSpec("step_seconds", "factory_step_duration_seconds", Gauge, "How long each step of each build took.",
               ("build", "step", "result", "from_checkpoint")),
    MetricSpec("build_seconds", "factory_build_duration_seconds", Gauge, "How long each build took.",
               ("build", "result")),
    MetricSpec("builds", "factory_builds", Counter, "Builds that ended, by result (ok, failed).", ("result",)),
    MetricSpec("running", "factory_builds_running", Gauge, "Builds running now."),
    MetricSpec("steps", "factory_steps", Counter, "Steps that ended, by result.", ("result",)),
    MetricSpec("bytes", "factory_bytes", Counter, "Bytes moved by long work, by activity: download, export, "
               "upload.", ("build", "activity")),
)


class Metrics:
    """A bus subscriber updating one registry; a context manager that serves and writes it."""

    step_seconds: Gauge
    build_seconds: Gauge
    builds: Counter
    running: Gauge
    steps: Counter
    bytes: Counter

    def __init__(self, path: Path | None = None, port: int | None = None) -> None:
        self.path, self.port = path, port
        self.registry = CollectorRegistry()
        for spec in METRICS:
            setattr(self, spec.attr, spec.kind(spec.name, spec.help, spec.labels, registry=self.registry))
        self._done: dict[tuple[str, str], int] = {}
        self._running: set[str] = set()
        self._stop = threading.Event()
        self._server: Any = None
        self._writer: threading.Thread | None = None
        self._lock = threading.Lock()

    def __call__(self, ev: Event) -> None:
        k = ev.kind
        if k is EventKind.BUILD_STARTED:
            self._running.add(ev.build)
            self.running.inc()
        elif k in (EventKind.STEP_FINISHED, EventKind.STEP_FAILED):
            result = "ok" if k is EventKind.STEP_FINISHED else "failed"
            self.step_seconds.labels(ev.build, ev.step, result, str(ev.from_checkpoint).lower()).set(ev.duration)
            self.steps.labels(result).inc()
        elif k in (EventKind.BUILD_FINISHED, EventKind.BUILD_FAILED):
            result = "ok" if k is EventKind.BUILD_FINISHED else "failed"
            self.build_seconds.labels(ev.build, result).set(ev.duration)
            self.builds.labels(result).inc()
            if ev.build in self._running:  # a build refused before it started never counted as running
                self._running.discard(ev.build)
                self.running.dec()
        elif k in (EventKind.PROGRESS, EventKind.PROGRESS_FINISHED) and ev.unit == "bytes" and ev.activity:
            self._count_bytes(ev)

    def _count_bytes(self, ev: Event) -> None:
        key = (ev.build, ev.source)
        with self._lock:
            delta = ev.done - self._done.get(key, 0)
            self._done[key] = ev.done
            if ev.kind is EventKind.PROGRESS_FINISHED:
                self._done.pop(key, None)
        if delta > 0:
            self.bytes.labels(ev.build, ev.activity).inc(delta)

    def write(self) -> None:
        """The text exposition, atomically (prometheus_client writes a temporary file and renames it)."""
        if self.path is not None:
            write_to_textfile(str(self.path), self.registry)

    def __enter__(self) -> Metrics:
        if self.port is not None:
            try:
                self._server, _ = start_http_server(self.port, addr="127.0.0.1", registry=self.registry)
            except OSError as exc:
                raise FactoryError(f"--metrics-port {self.port}: cannot listen on 127.0.0.1:{self.port}: "
                                   f"{exc.strerror}", hint="choose a free port") from exc
        if self.path is not None:
            try:
                self.write()
            except OSError as exc:
                self._close_server()
                raise FactoryError(f"--metrics-file {self.path}: cannot write: {exc.strerror}") from exc
            self._writer = threading.Thread(target=self._write_loop, name="metrics-file", daemon=True)
            self._writer.start()
        return self

    def _write_loop(self) -> None:
        while not self._stop.wait(WRITE_EVERY):
            self.write()

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        if self._writer is not None:
            self._writer.join()
        self.write()
        self._close_server()

    def _close_server(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
