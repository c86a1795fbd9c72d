"""Following a guest's serial console log (the file every driver appends the first serial port to)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from pathlib import Path

from factory.errors import FactoryError
from factory.machine.kernel_watch import KernelWatch, Trouble

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][0-9A-Za-z]|[\x00-\x08\x0b-\x1f\x7f]")


class SerialFollower:
    """Follows a serial-console log file in a thread, handing each cleaned line to on_line; what the guest's
    kernel says there about its health goes to a KernelWatch (on_trouble hears what is news, check() raises once
    the guest cannot recover)."""

    def __init__(self, path: Path, on_line: Callable[[str], None], *, offset: int = 0,
                 on_trouble: Callable[[Trouble], None] | None = None) -> None:
        """offset: where to start reading (the log's size before this VM started: earlier phases are not new)."""
        self.path, self.on_line, self.offset, self.on_trouble = path, on_line, offset, on_trouble
        self.watch = KernelWatch()
        self.read = offset  # how far the log has been read
        self._stop = threading.Event()
        self._poke = threading.Event()  # read now, not at the next poll (caught_up, stop)
        self._thread = threading.Thread(target=self._follow, name=f"serial-{path.name}", daemon=True)
        self.lines: list[str] = []

    def start(self) -> SerialFollower:
        self._thread.start()
        return self

    def _emit(self, raw: bytes) -> None:
        text = _ANSI.sub("", raw.decode(errors="replace").replace("\r", "")).rstrip()
        if text:
            self.lines.append(text)
            self.on_line(text)
            self.tell(self.watch.feed(text))

    def tell(self, trouble: Trouble | None) -> None:
        """Hand news of the guest kernel's trouble (from KernelWatch.feed or .panicked) to on_trouble."""
        if trouble is not None and self.on_trouble is not None:
            self.on_trouble(trouble)

    def check(self) -> None:
        """Raise when the guest's kernel reported that it cannot recover (a panic, a lasting lockup)."""
        fatal = self.watch.fatal
        if fatal is not None:
            raise FactoryError(fatal.message, hint="the kernel's report ends the guest's serial console log"
                               + ("; under emulation (TCG) a hang can be QEMU's fault: build again, or try another "
                                  "cpu_model" if fatal.kind == "hang" else ""))

    def caught_up(self, timeout: float) -> bool:
        """Wait (up to timeout) until the log has been read as far as it is written now (its complete lines
        handed on)."""
        try:
            size = self.path.stat().st_size
        except OSError:
            return True
        deadline = time.monotonic() + timeout
        while self.read < size and self._thread.is_alive() and time.monotonic() < deadline:
            self._poke.set()
            time.sleep(0.005)
        return self.read >= size

    def _follow(self) -> None:
        pos, buf = self.offset, b""
        while True:
            stopping = self._stop.is_set()
            if self.path.exists():
                with open(self.path, "rb") as fh:
                    fh.seek(pos)
                    chunk = fh.read()
                pos += len(chunk)
                buf += chunk
                *done, buf = buf.split(b"\n")
                for raw in done:
                    self._emit(raw)
                self.read = pos
            if stopping:
                if buf:
                    self._emit(buf)
                return
            self._poke.wait(0.2)
            self._poke.clear()

    def stop(self) -> None:
        self._stop.set()
        self._poke.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def wait_for(self, pattern: str, timeout: float) -> bool:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(rx.search(line) for line in list(self.lines)):
                return True
            time.sleep(0.2)
        return False
