"""Output for humans: one rich console on stderr, progress bars on a TTY and plain lines otherwise.

Steps do not print; they call these functions (or emit events that the UI subscribes to), so a machine-readable
monitor can sit beside the human one.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import sys
import time
from collections.abc import Iterator
from typing import Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from factory import secrets

# soft_wrap: never hard-wrap messages (CI logs, pipes, tests read them whole).
console = Console(stderr=True, highlight=False, soft_wrap=True, no_color=bool(os.environ.get("PACKER_NO_COLOR")))


_timestamps = False


def configure(*, color: bool = True, timestamps: bool = False) -> None:
    """Packer's `-color=false` (also PACKER_NO_COLOR) and `-timestamp-ui` (an RFC 3339 time before each line)."""
    global _timestamps
    console.no_color = not color or bool(os.environ.get("PACKER_NO_COLOR"))
    _timestamps = timestamps


def _stamp() -> str:
    if not _timestamps:
        return ""
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds") + ": "


def info(message: str) -> None:
    console.print(_stamp() + secrets.mask(message), markup=False)


def notice(message: str) -> None:
    """Something the user must not miss (e.g. falling back to slow emulation)."""
    console.print(f"{_stamp()}[bold yellow]!![/] [yellow]{_escape(secrets.mask(message))}[/]")


def warn(message: str) -> None:
    console.print(f"{_stamp()}[yellow]warning:[/] {_escape(secrets.mask(message))}")


def error(message: str) -> None:
    console.print(f"{_stamp()}[bold red]error:[/] {_escape(secrets.mask(message))}")


def success(message: str) -> None:
    console.print(f"{_stamp()}[green]{_escape(secrets.mask(message))}[/]")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


class Tracker(Protocol):
    def advance(self, n: int) -> None: ...


class _RichTracker:
    def __init__(self, progress: Progress, task: int) -> None:
        self._progress, self._task = progress, task

    def advance(self, n: int) -> None:
        self._progress.advance(self._task, n)  # type: ignore[arg-type]


class _PlainTracker:
    """Without a TTY: a line at start, at every 10 %, and at the end, so CI logs stay readable."""

    def __init__(self, label: str, total: int | None) -> None:
        self.label, self.total, self.done, self._next = label, total, 0, 10
        self.start = time.monotonic()

    def advance(self, n: int) -> None:
        self.done += n
        if self.total:
            pct = self.done * 100 // self.total
            if pct >= self._next:
                info(f"{self.label}: {pct}%")
                self._next = pct // 10 * 10 + 10


@contextlib.contextmanager
def progress(label: str, total: int | None, *, unit_bytes: bool = True) -> Iterator[Tracker]:
    """A progress bar for long work (downloads, exports); plain lines when stderr is not a terminal."""
    if not console.is_terminal or not sys.stderr.isatty():
        tracker = _PlainTracker(label, total)
        info(f"{label} ...")
        yield tracker
        info(f"{label}: done in {time.monotonic() - tracker.start:.1f}s")
        return
    columns = [TextColumn("{task.description}"), BarColumn()]
    if unit_bytes:
        columns += [DownloadColumn(), TransferSpeedColumn()]
    columns.append(TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(label, total=total)
        yield _RichTracker(bar, task)
