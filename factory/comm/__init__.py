"""Communicators: how factory reaches a guest (SSH with paramiko) to run commands and move files."""

from __future__ import annotations

import contextlib
import importlib
import sys
import threading
from typing import Protocol


class _Closable(Protocol):
    def close(self) -> None: ...


def close_quietly(thing: _Closable) -> None:
    """Close a channel or SFTP session whose guest may be gone already (powered off, rebooted): if paramiko has not
    yet seen the connection die, closing writes to a dead socket and raises EOFError or OSError."""
    with contextlib.suppress(EOFError, OSError):
        thing.close()


def preload() -> None:
    """Import paramiko (with cryptography, ~0.2 s) on a thread of its own while the VM starts, so that connecting
    does not wait for it: the VM's start is spent waiting on QEMU (a resumed guest answers SSH about half a second
    later), which leaves the interpreter free. Python's import locks make the later `import paramiko` wait for
    this one if it has not finished; paramiko imports nothing of factory's, so the two cannot deadlock."""
    if "paramiko" not in sys.modules:
        threading.Thread(target=importlib.import_module, args=("paramiko",), name="import-paramiko").start()
