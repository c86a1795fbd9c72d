"""SSH key pairs: ephemeral ones made per build (ed25519 by default; rsa or ecdsa on request), in OpenSSH
formats with the private half registered as a secret, and loading a user's key file (with a certificate)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from factory import secrets
from factory.errors import FactoryError

if TYPE_CHECKING:  # imported where used: a resumed build's stored key pair needs neither (~0.2 s of imports)
    import paramiko
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa


class KeyType(StrEnum):
    """temporary_key_pair_type values (Packer's); dsa is accepted by name only, to refuse it clearly."""

    ED25519 = "ed25519"
    RSA = "rsa"
    ECDSA = "ecdsa"
    DSA = "dsa"


_CURVES = {256: "SECP256R1", 384: "SECP384R1", 521: "SECP521R1"}  # ECDSA key size: its curve in cryptography's ec
_PKEYS = {KeyType.ED25519: "Ed25519Key", KeyType.RSA: "RSAKey", KeyType.ECDSA: "ECDSAKey"}  # paramiko's classes


def _private_key(kind: KeyType, bits: int | None) -> ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey | \
        ec.EllipticCurvePrivateKey:
    """A new private key of the type and size asked for (Packer's defaults: rsa 4096, ecdsa 256)."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if kind is KeyType.ED25519:
        return ed25519.Ed25519PrivateKey.generate()  # fixed size: bits are ignored, as in Packer
    if kind is KeyType.RSA:
        size = bits or 4096
        if size < 1024 or size > 16384:
            raise FactoryError(f"temporary_key_pair_bits {size} is not a usable RSA key size",
                               hint="use 2048..16384 (Packer's default is 4096; OpenSSH refuses RSA keys "
                                    "shorter than 1024 bits)")
        return rsa.generate_private_key(public_exponent=65537, key_size=size)
    if kind is KeyType.ECDSA:
        size = bits or 256
        if size not in _CURVES:
            raise FactoryError(f"temporary_key_pair_bits {size} is not an ECDSA curve size",
                               hint="ECDSA keys are 256, 384 or 521 bits")
        curve: ec.EllipticCurve = getattr(ec, _CURVES[size])()
        return ec.generate_private_key(curve)
    raise FactoryError("temporary_key_pair_type \"dsa\" is refused: DSA keys are insecure, OpenSSH disables "
                       "them by default since 7.0 and removed them in 9.8, so the guest's sshd would not accept "
                       "the key", hint='use "ed25519" (factory\'s default), "ecdsa" or "rsa"')


@dataclass(frozen=True)
class KeyPair:
    """An SSH key pair; `repr` never shows the private key."""

    private_openssh: str = field(repr=False)
    public_openssh: str
    kind: KeyType = KeyType.ED25519

    @classmethod
    def generate(cls, comment: str = "factory", kind: KeyType | str = KeyType.ED25519,
                 bits: int | None = None) -> KeyPair:
        """A fresh key pair (one per build), private key registered so it is masked everywhere."""
        from cryptography.hazmat.primitives import serialization

        try:
            key_type = KeyType(kind)
        except ValueError:
            raise FactoryError(f"unknown temporary_key_pair_type {kind!r}",
                               hint="use ed25519 (the default), ecdsa or rsa") from None
        key = _private_key(key_type, bits)
        private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH,
                                    serialization.NoEncryption()).decode()
        public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                               serialization.PublicFormat.OpenSSH).decode()
        pair = cls(private, f"{public} {comment}", key_type)
        pair.register()
        return pair

    @property
    def public_blob(self) -> str:
        """The base64 key material of the public key (the part that identifies it in authorized_keys)."""
        return self.public_openssh.split()[1]

    def register(self) -> None:
        """Mask the private key (whole and line by line, since logs split it) wherever text is shown."""
        secrets.register(self.private_openssh)
        for line in self.private_openssh.splitlines():
            if not line.startswith("-----"):
                secrets.register(line)

    def pkey(self) -> paramiko.PKey:
        import paramiko

        pkey_class: type[paramiko.PKey] = getattr(paramiko, _PKEYS[self.kind])
        return pkey_class.from_private_key(io.StringIO(self.private_openssh))

    def write_private(self, path: Path) -> Path:
        """Write the private key with 0600 permissions (for `ssh -i` or a user's debugging)."""
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        path.write_text(self.private_openssh)
        return path


def load_private_key(path: Path, password: str | None = None, *, certificate: Path | None = None,
                     option: str = "ssh_private_key_file") -> paramiko.PKey:
    """Load a private key file (ed25519, ECDSA or RSA, OpenSSH or PEM) and optionally its OpenSSH user
    certificate, with a clear error if either is unusable."""
    import paramiko
    from cryptography.hazmat.primitives import serialization

    try:
        key = paramiko.PKey.from_path(path, password=password)
    except FileNotFoundError:
        raise FactoryError(f"{option} {path} does not exist",
                           hint="give the path of a private key, or leave it unset for an ephemeral key") from None
    except (paramiko.SSHException, ValueError) as exc:
        raise FactoryError(f"{option} {path} is not a usable private key: {exc}",
                           hint="an unencrypted OpenSSH or PEM private key (ed25519, ecdsa or rsa) is needed"
                           ) from None
    if certificate is not None:
        cert_option = option.replace("private_key_file", "certificate_file")
        if not certificate.is_file():
            raise FactoryError(f"{cert_option} {certificate} does not exist")
        try:
            key.load_certificate(str(certificate))
            signed = serialization.load_ssh_public_identity(certificate.read_bytes())
            if not isinstance(signed, serialization.SSHCertificate):
                raise ValueError("it is a public key, not a certificate")
            # paramiko only compares key types: a certificate for another key of the same type must fail here.
            if signed.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
                                                ).split()[1].decode() != key.get_base64():
                raise ValueError("it certifies a different key")
        except (paramiko.SSHException, ValueError, IndexError) as exc:
            raise FactoryError(f"{cert_option} {certificate} cannot be used with {path}: {exc}",
                               hint="give the OpenSSH user certificate (*-cert.pub) signed for this private key "
                                    "(ssh-keygen -s CA -I ID -n USER key.pub)") from None
    return key
