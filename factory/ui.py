"""Output for humans: one rich console on stderr, progress bars on a TTY and plain lines otherwise.

Only monitors print: steps and library code emit events (factory.events), and the console monitor renders them
with these functions, so a machine-readable monitor sees the same stream.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import sys

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from factory import secrets


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """The reader went away (`factory build 2>&1 | head`): stop printing and go on, as the JSON and
        machine-readable monitors do; the build and its cleanups are not cut short. rich's default points stdout
        (not this console's stderr) at /dev/null and raises SystemExit, which in a monitor thread silently ended
        that thread: a parallel run then waited forever for the build whose events it relayed."""
        self.quiet = True
        with contextlib.suppress(OSError, ValueError):  # later writes (the last error line) must not fail either
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.file.fileno())
            os.close(devnull)


# soft_wrap: never hard-wrap messages (CI logs, pipes, tests read them whole).
console = _Console(stderr=True, highlight=False, soft_wrap=True, no_color=bool(os.environ.get("PACKER_NO_COLOR")))


_timestamps = False


def configure(*, color: bool = True, timestamps: bool = False) -> None:
    """Packer's `-color=false` (also PACKER_NO_COLOR) and `-timestamp-ui` (an RFC 3339 time before each line)."""
    global _timestamps
    console.no_color = not color or bool(os.environ.get("PACKER_NO_COLOR"))
    _timestamps = timestamps


def stamp() -> str:
    """The `-timestamp-ui` prefix (an RFC 3339 time and ": "), or "" when it is off."""
    return _stamp()


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


def on_terminal() -> bool:
    return console.is_terminal and sys.stderr.isatty()


class Bars:
    """Rich progress bars for the console monitor, one per progress task, in one live display."""

    def __init__(self) -> None:
        self._progress: Progress | None = None
        self._tasks: dict[str, TaskID] = {}

    def show(self, task: str, label: str, done: int, total: int, *, bytes_: bool, finished: bool) -> None:
        if self._progress is None:
            columns: list[ProgressColumn] = [TextColumn("{task.description}"), BarColumn()]
            if bytes_:
                columns += [DownloadColumn(), TransferSpeedColumn()]
            columns.append(TimeRemainingColumn())
            self._progress = Progress(*columns, console=console, transient=False)
            self._progress.start()
        if task not in self._tasks:
            self._tasks[task] = self._progress.add_task(secrets.mask(label), total=total or None)
        self._progress.update(self._tasks[task], completed=done if not finished or total == 0 else total)
        if finished:
            self._tasks.pop(task)
            if not self._tasks:  # the last bar ended: stop the live display so plain lines print normally
                self._progress.stop()
                self._progress = None
