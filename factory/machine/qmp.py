"""A synchronous face on qemu.qmp's asyncio QMPClient: one private event-loop thread per VM.

The loop runs continuously, so QMP events (SHUTDOWN, POWERDOWN, RESET) are received as they happen even while
the build thread is busy in SSH; the build thread waits on plain threading primitives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from qemu.qmp import QMPClient
from qemu.qmp.error import QMPError

from factory import secrets
from factory.errors import FactoryError

T = TypeVar("T")


def _mask_secrets(record: logging.LogRecord) -> bool:
    record.msg, record.args = secrets.mask(record.getMessage()), ()
    return True


class QmpSession:
    """Connect to a QEMU QMP unix socket and run commands from synchronous code."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.events: list[dict[str, Any]] = []
        self.listeners: list[Callable[[dict[str, Any]], None]] = []   # called on the loop thread, per event
        self.powered_off = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"qmp-{name}", daemon=True)
        self._thread.start()
        self._client = QMPClient(name)
        # qemu.qmp logs every message at DEBUG (`--debug`): secrets sent through QMP (VNC password) are masked.
        self._client.logger.addFilter(_mask_secrets)
        self._listener: asyncio.Task[None] | None = None

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(timeout)
        except TimeoutError:
            fut.cancel()
            raise

    def connect(self, socket_path: Path, *, timeout: float = 30.0, alive: Any = None) -> None:
        """Connect once the socket exists (QEMU creates it during start-up); alive() raises if QEMU died."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if alive is not None:
                alive()
            if socket_path.exists():
                try:
                    self._call(self._client.connect(str(socket_path)), 5.0)
                    self._call(self._start_listener(), 5.0)
                    return
                except (QMPError, OSError, TimeoutError) as exc:
                    last = exc
            time.sleep(0.01)  # QEMU makes its socket ~50-80 ms after its start: a coarser poll only adds to that
        raise FactoryError(f"could not connect to QEMU's monitor at {socket_path}: {last or 'no socket'}")

    async def _start_listener(self) -> None:
        self._listener = asyncio.get_running_loop().create_task(self._watch())

    async def _stop_listener(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(BaseException):
                await self._listener

    async def _watch(self) -> None:
        async for event in self._client.events:
            self.events.append(dict(event))
            if event["event"] == "SHUTDOWN":
                self.powered_off.set()
            for listener in self.listeners:
                with contextlib.suppress(Exception):  # a listener's bug must not stop event delivery
                    listener(dict(event))

    def execute(self, cmd: str, args: dict[str, Any] | None = None, *, timeout: float = 30.0) -> Any:
        """Run one QMP command and return its result (errors become FactoryError naming the command)."""
        try:
            return self._call(self._client.execute(cmd, args), timeout)
        except (QMPError, OSError, TimeoutError) as exc:
            raise FactoryError(f"QMP command {cmd} failed: {exc or type(exc).__name__}") from exc

    def pass_fd(self, fd: int, name: str) -> None:
        """Hand QEMU a copy of an open file descriptor (SCM_RIGHTS, then `getfd`): commands then name it `fd:name`.
        The caller keeps, and closes, its own descriptor."""
        async def send() -> None:
            self._client.send_fd_scm(fd)
            await self._client.execute("getfd", {"fdname": name})
        try:
            self._call(send(), 30.0)
        except (QMPError, OSError, TimeoutError) as exc:
            raise FactoryError(f"QMP command getfd failed: {exc or type(exc).__name__}") from exc

    def close(self) -> None:
        """Disconnect and stop the loop thread (idempotent)."""
        if not self._loop.is_running():
            return
        # The peer may already be gone (qemu quit): disconnect then re-raises the reader's EOFError.
        with contextlib.suppress(Exception):
            self._call(self._client.disconnect(), 5.0)
        with contextlib.suppress(Exception):
            self._call(self._stop_listener(), 5.0)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
