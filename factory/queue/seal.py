"""Secrets in queued jobs: sealed to the workers' key, so the queue database (and its backups) never holds them
in clear text.

The queue key is an X25519 key pair. Its private half lives only on the worker hosts (a 0600 file, named by
FACTORY_QUEUE_KEY_FILE); its public half is registered in the database (`factory queue key`), where `factory
submit` reads it. A sealed value is an ephemeral X25519 exchange with that public key, HKDF-SHA256 and AES-256-GCM
(the construction of a libsodium sealed box), bound to what it is (`var:NAME`, `var-file:NAME`) so a sealed value
cannot be swapped into another slot. Someone who can read the database or a dump cannot open it; someone who can
write the database can already run code on the workers (the bundles), so a public key kept there gives nothing
more away.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from factory.errors import FactoryError

KEY_ENV = "FACTORY_QUEUE_KEY_FILE"
# How a worker hands a job's sealed -var values to its `factory build`: a JSON list of "name=value" in the
# environment (never the argv, which any user of the host can read), taken out of it by the build before anything
# runs, so provisioners do not inherit it.
SECRET_VARS_ENV = "FACTORY_BUILD_SECRET_VARS"
PREFIX = "fq1:"
_PRIVATE_HEADER = "factory-queue-key-v1 "
_INFO = b"factory queue seal v1"


def take_secret_vars() -> list[str]:
    """The -var items a worker passed through the environment (and remove them from it)."""
    import json

    raw = os.environ.pop(SECRET_VARS_ENV, "")
    return [str(v) for v in json.loads(raw)] if raw else []


def key_id(public: bytes) -> str:
    """A short name of a public key (what `factory queue key` prints, what a worker's error names)."""
    return hashlib.sha256(public).hexdigest()[:16]


def generate(path: Path) -> bytes:
    """Write a new private key to path (0600, never replaced); its public key."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat

    if path.exists():
        raise FactoryError(f"{path} already exists", hint="a queue key is never overwritten; pick another path")
    key = X25519PrivateKey.generate()
    raw = key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(_PRIVATE_HEADER + base64.b64encode(raw).decode() + "\n")
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def load_private(path: Path) -> tuple[str, object]:
    """The key id and private key in path, or one clear error."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    try:
        text = path.read_text()
    except OSError as exc:
        raise FactoryError(f"cannot read the queue key {path}: {exc.strerror}",
                           hint=f"{KEY_ENV} names the private key `factory queue key` wrote") from None
    if not text.startswith(_PRIVATE_HEADER):
        raise FactoryError(f"{path} is not a factory queue key", hint="`factory queue key FILE` writes one")
    try:
        key = X25519PrivateKey.from_private_bytes(base64.b64decode(text[len(_PRIVATE_HEADER):].strip()))
    except ValueError:
        raise FactoryError(f"{path}: the queue key is damaged") from None
    return key_id(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)), key


def public_of(private: object) -> bytes:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    assert isinstance(private, X25519PrivateKey)
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _derive(shared: bytes, ephemeral: bytes, public: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral + public, info=_INFO).derive(shared)


def seal(public: bytes, what: str, plaintext: bytes) -> str:
    """plaintext sealed to public, bound to what; text safe to store anywhere."""
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    eph = X25519PrivateKey.generate()
    eph_pub = eph.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    key = _derive(eph.exchange(X25519PublicKey.from_public_bytes(public)), eph_pub, public)
    nonce = os.urandom(12)
    body = AESGCM(key).encrypt(nonce, plaintext, what.encode())
    return PREFIX + key_id(public) + ":" + base64.b64encode(eph_pub + nonce + body).decode()


def is_sealed(value: object) -> bool:
    return isinstance(value, str) and value.startswith(PREFIX)


def load_keyring(paths: Sequence[Path]) -> dict[str, object]:
    """The private keys a worker holds, by key id (several while keys are rotated)."""
    return dict(load_private(p) for p in paths)


def key_files(value: str) -> list[Path]:
    """FACTORY_QUEUE_KEY_FILE: one path, or several separated by ':' (the new key and the one it replaces)."""
    return [Path(p) for p in value.split(os.pathsep) if p]


def open_sealed(ring: Mapping[str, object], what: str, token: str) -> bytes:
    """The plaintext of token; a FactoryError when it was sealed to a key not in ring, or altered."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    sealed_to, _, data = token[len(PREFIX):].partition(":")
    key = ring.get(sealed_to)
    if key is None:
        raise FactoryError(f"{what} is sealed to queue key {sealed_to}, this worker holds "
                           f"{', '.join(sorted(ring)) or 'none'}",
                           hint=f"install that key's private file on this worker ({KEY_ENV}; several paths "
                           "separated by ':' while keys are rotated)")
    assert isinstance(key, X25519PrivateKey)
    raw = base64.b64decode(data)
    eph_pub, nonce, body = raw[:32], raw[32:44], raw[44:]
    public = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    aes = _derive(key.exchange(X25519PublicKey.from_public_bytes(eph_pub)), eph_pub, public)
    try:
        return AESGCM(aes).decrypt(nonce, body, what.encode())
    except InvalidTag:
        raise FactoryError(f"{what}: the sealed value does not open (altered, or sealed for another slot)") from None
