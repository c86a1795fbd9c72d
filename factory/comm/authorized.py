"""ssh_clear_authorized_keys: take factory's ephemeral public key out of the guest's authorized_keys files.

Packer runs `sed -i '/ <key name>$/d'` on ~/.ssh/authorized_keys and, with sudo, /root/.ssh/authorized_keys, and
ignores failures. factory matches the key material itself (not a comment a tool may have rewritten), keeps the
files' owner and mode (rewritten in place), and then checks the key is really gone: an image that still
accepts a key factory generated is an error, not a log line.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from factory.comm.keys import KeyPair
from factory.errors import FactoryError

ROOT_KEYS = "/root/.ssh/authorized_keys"


class Runs(Protocol):
    def run(self, cmd: str, *, on_line: Callable[[str], None] | None = None, timeout: float | None = None
            ) -> int: ...


# $1: the file. Prints "removed FILE", "clean FILE" (never there), "absent FILE" (no file) or "kept FILE" (still
# there after the attempt).
_CLEAN = r"""
f=$1
[ -f "$f" ] || { echo "absent $f"; exit 0; }
grep -q -F -e "$KEY" "$f" || { echo "clean $f"; exit 0; }
tmp="$f.factory-$$"
grep -v -F -e "$KEY" "$f" > "$tmp"
cat "$tmp" > "$f"
rm -f "$tmp"
if grep -q -F -e "$KEY" "$f"; then echo "kept $f"; else echo "removed $f"; fi
"""


@dataclass(frozen=True)
class Outcome:
    """What happened to each authorized_keys file."""

    removed: tuple[str, ...] = ()
    clean: tuple[str, ...] = ()       # the key was not there
    kept: tuple[str, ...] = ()
    unchecked: tuple[str, ...] = ()   # root's file when the user is not root and sudo needs a password


def clear_authorized_key(comm: Runs, pair: KeyPair, *, timeout: float = 60.0) -> Outcome:
    """Remove pair's public key from ~/.ssh/authorized_keys and (through `sudo -n`) root's; report per file."""
    script = shlex.quote(_CLEAN)
    key = shlex.quote(pair.public_blob)
    command = (f'KEY={key} sh -c {script} sh "$HOME/.ssh/authorized_keys"; '
               f'if [ "$(id -u)" != 0 ]; then sudo -n env KEY={key} sh -c {script} sh {ROOT_KEYS} 2>/dev/null '
               f'|| echo "unchecked {ROOT_KEYS}"; fi')
    lines: list[str] = []
    status = comm.run(command, on_line=lines.append, timeout=timeout)
    found: dict[str, list[str]] = {"removed": [], "clean": [], "absent": [], "kept": [], "unchecked": []}
    for line in lines:
        word, _, path = line.partition(" ")
        if word in found:
            found[word].append(path)
    if status != 0 or not (found["removed"] or found["clean"] or found["absent"] or found["kept"]):
        raise FactoryError(f"ssh_clear_authorized_keys: removing the ephemeral key failed (exit {status}): "
                           + " / ".join(lines[-3:]), hint="the guest needs a POSIX sh, grep and cat")
    return Outcome(tuple(found["removed"]), tuple(found["clean"]), tuple(found["kept"]), tuple(found["unchecked"]))
