"""Secrets registry: every sensitive value is registered once and masked wherever text is shown or logged.

A secret made only of letters (a password such as `vagrant` or `packer`) is also an ordinary word of paths and
names: it is masked only where it stands alone (`-p vagrant`, `password=vagrant`, `'vagrant'`), so that
`/home/vagrant`, `vagrant.box` and `post-processor "utm-vagrant"` stay readable. Any other secret (digits,
symbols: what a token or a real password looks like) is masked wherever it occurs, even inside a longer word.
"""

from __future__ import annotations

import re
import threading

MASK = "<sensitive>"
_lock = threading.Lock()
_secrets: set[str] = set()
# Characters that continue a word, a path or a name: a letters-only secret next to one of them is part of it.
# A '.' counts only when a word character follows it, so a sentence's final full stop still masks.
_BEFORE = r"(?<![A-Za-z0-9_\-/.])"
_AFTER = r"(?![A-Za-z0-9_\-/]|\.[A-Za-z0-9_])"


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
        if secret not in text:
            continue
        if secret.isalpha():
            text = re.sub(_BEFORE + re.escape(secret) + _AFTER, MASK, text)
        else:
            text = text.replace(secret, MASK)
    return text


def clear() -> None:
    """Forget all secrets (tests; a new build in the same process)."""
    with _lock:
        _secrets.clear()
