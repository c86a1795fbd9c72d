"""ssh_ciphers and ssh_key_exchange_algorithms: restrict (and order) what paramiko offers in the handshake.

Packer's lists come from Go's x/crypto/ssh; a few of its names exist in SSH but not in paramiko (chacha20,
arcfour, SHA-1 groups ...). Those are dropped with a notice as long as one usable name remains, so a Packer
template keeps working; a name SSH does not know at all is an error listing the supported ones.
"""

from __future__ import annotations

import paramiko

from factory.errors import FactoryError
from factory.options import suggest
from factory.schema.values import SSH_CIPHERS, SSH_KEX

# paramiko's own preference lists: what it can negotiate (class attributes the stubs do not declare).
CIPHERS: tuple[str, ...] = tuple(vars(paramiko.Transport)["_preferred_ciphers"])
KEX: tuple[str, ...] = tuple(vars(paramiko.Transport)["_preferred_kex"])

# Real SSH algorithm names (Go's x/crypto/ssh, OpenSSH) that paramiko does not implement.
_ELSEWHERE = frozenset({
    "chacha20-poly1305@openssh.com", "arcfour", "arcfour128", "arcfour256", "aes128-gcm", "aes256-gcm",
    "curve25519-sha256", "sntrup761x25519-sha512@openssh.com", "sntrup761x25519-sha512",
    "diffie-hellman-group1-sha1", "diffie-hellman-group14-sha1", "diffie-hellman-group-exchange-sha1",
    "diffie-hellman-group18-sha512", "mlkem768x25519-sha256"} - set(CIPHERS) - set(KEX))


def choose(option: str, names: list[str] | tuple[str, ...], supported: tuple[str, ...]) -> tuple[tuple[str, ...],
                                                                                               list[str]]:
    """The usable names in the user's order, and the known-but-unavailable ones that were dropped."""
    usable, dropped = [], []
    for name in names:
        if name in supported:
            usable.append(name)
        elif name in _ELSEWHERE:
            dropped.append(name)
        else:
            near = suggest(name, supported)
            raise FactoryError(f"{option}: unknown algorithm {name!r}",
                               hint=(f"did you mean {near!r}? " if near else "") + "supported: "
                               + ", ".join(supported))
    if names and not usable:
        raise FactoryError(f"{option}: none of {', '.join(names)} is available in factory's SSH (paramiko)",
                           hint="supported: " + ", ".join(supported))
    return tuple(usable), dropped


def restrict(transport: paramiko.Transport, ciphers: tuple[str, ...], kex: tuple[str, ...]) -> None:
    """Offer only these algorithms, in this order (before start_client)."""
    options = transport.get_security_options()
    if ciphers:
        options.ciphers = ciphers
    if kex:
        options.kex = kex


# The schema's checks of ssh_ciphers and ssh_key_exchange_algorithms (run when the template is read).
SSH_CIPHERS.implement(lambda names: choose("ssh_ciphers", names, CIPHERS))
SSH_KEX.implement(lambda names: choose("ssh_key_exchange_algorithms", names, KEX))
