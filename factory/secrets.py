"""Secrets registry: every sensitive value is registered once and masked wherever text is shown or logged."""

from __future__ import annotations

import threading

MASK = "<sensitive>"
_lock = threading.Lock()
_secrets: set[str] = set()


def register(value: str) -> None:
    """Remember a sensitive value so mask() hides it (values shorter than 3 chars would mask too much)."""
    if len(value) >= 3:
        with _lock:
            _secrets.add(value)


def mask(text: str) -> str:
    """Replace every registered secret in text, longest first so overlapping secrets mask fully."""
    with _lock:
        known = sorted(_secrets, key=len, reverse=True)
    for secret in known:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def clear() -> None:
    """Forget all secrets (tests; a new build in the same process)."""
    with _lock:
        _secrets.clear()
