"""Communicators: how factory reaches a guest (SSH with paramiko) to run commands and move files."""

from __future__ import annotations

import contextlib
from typing import Protocol


class _Closable(Protocol):
    def close(self) -> None: ...


def close_quietly(thing: _Closable) -> None:
    """Close a channel or SFTP session whose guest may be gone already (powered off, rebooted): if paramiko has not
    yet seen the connection die, closing writes to a dead socket and raises EOFError or OSError."""
    with contextlib.suppress(EOFError, OSError):
        thing.close()
