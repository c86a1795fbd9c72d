"""OpenPGP checks of vendor checksum lists with gpgv, pinned to a key fingerprint from the catalog.

Keys are looked up in keyring files (binary .gpg/.kbx, or armored .asc): FACTORY_KEYRING (files or folders,
':'-separated), isos/keys/, and /usr/share/keyrings. Any key there may produce a valid signature, but only one
whose fingerprint (or primary-key fingerprint) equals the pinned one is accepted.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from factory import run
from factory.errors import FactoryError
from factory.media.catalog import catalog_dirs

SYSTEM_KEYRINGS = Path("/usr/share/keyrings")
KEYRING_SUFFIXES = (".gpg", ".kbx", ".asc", ".pub")


class KeyNotFound(FactoryError):
    """No keyring holds the pinned key, so the signature could not be checked at all."""


def keyring_files() -> list[Path]:
    sources = [Path(p) for p in os.environ.get("FACTORY_KEYRING", "").split(os.pathsep) if p]
    with contextlib.suppress(FileNotFoundError):
        # Each catalog folder keeps its vendors' keys beside its releases (isos/keys/, $FACTORY_ISOS_DIR/keys/).
        sources += [folder / "keys" for folder in catalog_dirs()]
    sources.append(SYSTEM_KEYRINGS)
    found: list[Path] = []
    for src in sources:
        if src.is_file():
            found.append(src)
        elif src.is_dir():
            found += sorted(p for p in src.iterdir() if p.suffix in KEYRING_SUFFIXES and p.is_file())
    return found


def verify(data: bytes, signature: bytes | None, fingerprint: str) -> bytes:
    """Check a detached signature over data (or a clear-signed data when signature is None); return the signed text.

    Raises KeyNotFound when no keyring holds the key, FactoryError when the signature is bad or made by
    another key than the pinned fingerprint.
    """
    want = fingerprint.replace(" ", "").upper()
    with tempfile.TemporaryDirectory(prefix="factory-gpgv-") as tmp:
        work = Path(tmp)
        rings = [_binary_keyring(k, work, i) for i, k in enumerate(keyring_files())]
        (work / "data").write_bytes(data)
        argv: list[str | Path] = ["gpgv", "--homedir", work, "--status-fd", "1"]
        for ring in rings:
            argv += ["--keyring", ring]
        if signature is None:
            argv += ["--output", work / "signed", work / "data"]
        else:
            (work / "data.sig").write_bytes(signature)
            argv += [work / "data.sig", work / "data"]
        proc = run.run(argv, check=False)
        status = proc.stdout.decode(errors="replace").splitlines()
        signers = _valid_signers(status)
        if not signers:
            if any(" NO_PUBKEY " in f" {line} " for line in status):
                raise KeyNotFound(f"no keyring holds the signing key {want}",
                                  hint="add the vendor's public key (a .gpg or .asc file) to isos/keys/ or "
                                       "FACTORY_KEYRING")
            raise FactoryError(f"bad OpenPGP signature (expected key {want})",
                               hint="the checksum list was altered or the signature does not belong to it")
        if want not in signers:
            raise FactoryError(f"signature made by key {sorted(signers)[0]}, not the pinned {want}",
                               hint="the checksum list is signed by someone else than the vendor key in the catalog")
        return (work / "signed").read_bytes() if signature is None else data


def _valid_signers(status: list[str]) -> set[str]:
    """Fingerprints from gpgv's VALIDSIG lines: the signing (sub)key and its primary key."""
    out: set[str] = set()
    for line in status:
        fields = line.split()
        if len(fields) >= 3 and fields[:2] == ["[GNUPG:]", "VALIDSIG"]:
            out.add(fields[2].upper())
            if len(fields) >= 12:
                out.add(fields[11].upper())
    return out


def _binary_keyring(path: Path, work: Path, n: int) -> Path:
    """gpgv reads binary keyrings only; armored files are dearmored into the work folder."""
    head = path.read_bytes()[:64]
    if b"-----BEGIN PGP" not in head:
        return path
    out = work / f"ring{n}.gpg"
    run.run(["gpg", "--homedir", work, "--batch", "--yes", "--dearmor", "--output", out, path])
    return out


def strip_clearsign(data: bytes) -> bytes:
    """The text of a clear-signed message without checking it (used only when the key is unavailable)."""
    lines = data.decode(errors="replace").splitlines()
    body: list[str] = []
    state = "head"
    for line in lines:
        if state == "head":
            if line.startswith("-----BEGIN PGP SIGNED MESSAGE-----"):
                state = "hash"
        elif state == "hash":
            if not line.strip():
                state = "body"
        elif line.startswith("-----BEGIN PGP SIGNATURE-----"):
            break
        else:
            body.append(line[2:] if line.startswith("- ") else line)
    return ("\n".join(body) + "\n").encode()
