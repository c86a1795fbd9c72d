"""Ephemeral SSH key pairs: ed25519 in OpenSSH formats, the private half registered as a secret."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from factory import secrets
from factory.errors import FactoryError


@dataclass(frozen=True)
class KeyPair:
    """An ed25519 key pair; `repr` never shows the private key."""

    private_openssh: str = field(repr=False)
    public_openssh: str

    @classmethod
    def generate(cls, comment: str = "factory") -> KeyPair:
        """A fresh ed25519 key pair (one per build), private key registered so it is masked everywhere."""
        key = Ed25519PrivateKey.generate()
        private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                    serialization.NoEncryption()).decode()
        public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                               serialization.PublicFormat.OpenSSH).decode()
        pair = cls(private, f"{public} {comment}")
        pair.register()
        return pair

    def register(self) -> None:
        """Mask the private key (whole and line by line, since logs split it) wherever text is shown."""
        secrets.register(self.private_openssh)
        for line in self.private_openssh.splitlines():
            if not line.startswith("-----"):
                secrets.register(line)

    def pkey(self) -> paramiko.PKey:
        return paramiko.Ed25519Key.from_private_key(io.StringIO(self.private_openssh))

    def write_private(self, path: Path) -> Path:
        """Write the private key with 0600 permissions (for `ssh -i` or a user's debugging)."""
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        path.write_text(self.private_openssh)
        return path


def load_private_key(path: Path, password: str | None = None) -> paramiko.PKey:
    """Load ssh_private_key_file (ed25519, ECDSA or RSA, OpenSSH or PEM), with a clear error if it is unusable."""
    try:
        return paramiko.PKey.from_path(path, password=password)
    except FileNotFoundError:
        raise FactoryError(f"ssh_private_key_file {path} does not exist",
                           hint="give the path of a private key, or leave it unset for an ephemeral key") from None
    except (paramiko.SSHException, ValueError) as exc:
        raise FactoryError(f"ssh_private_key_file {path} is not a usable private key: {exc}",
                           hint="an unencrypted OpenSSH or PEM private key (ed25519, ecdsa or rsa) is needed"
                           ) from None
