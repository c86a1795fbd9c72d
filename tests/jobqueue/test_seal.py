"""Sealing a job's secrets to the queue key (no database needed): only the private key opens them, only in the
slot they were sealed for, and the private key file is the user's alone."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from factory.errors import FactoryError
from factory.queue import seal


def test_a_sealed_value_opens_only_with_its_key_and_in_its_slot(tmp_path: Path) -> None:
    public = seal.generate(tmp_path / "a.key")
    assert stat.S_IMODE((tmp_path / "a.key").stat().st_mode) == 0o600
    kid, _ = seal.load_private(tmp_path / "a.key")
    key = seal.load_keyring([tmp_path / "a.key"])
    token = seal.seal(public, "var:pw", b"hunter2-secret")
    assert seal.is_sealed(token) and "hunter2" not in token
    assert seal.seal(public, "var:pw", b"hunter2-secret") != token  # a fresh ephemeral key each time
    assert seal.open_sealed(key, "var:pw", token) == b"hunter2-secret"
    with pytest.raises(FactoryError, match="does not open"):
        seal.open_sealed(key, "var:other", token)  # moved into another variable's slot
    new_public = seal.generate(tmp_path / "b.key")
    with pytest.raises(FactoryError, match=f"sealed to queue key {kid}"):
        seal.open_sealed(seal.load_keyring([tmp_path / "b.key"]), "var:pw", token)
    # Rotation: a worker holding the new key and the old one opens what was sealed to either.
    ring = seal.load_keyring(seal.key_files(f"{tmp_path / 'b.key'}:{tmp_path / 'a.key'}"))
    assert seal.open_sealed(ring, "var:pw", token) == b"hunter2-secret"
    assert seal.open_sealed(ring, "var:pw", seal.seal(new_public, "var:pw", b"rotated")) == b"rotated"
    with pytest.raises(FactoryError, match="already exists"):
        seal.generate(tmp_path / "a.key")
    (tmp_path / "junk").write_text("nope")
    with pytest.raises(FactoryError, match="not a factory queue key"):
        seal.load_private(tmp_path / "junk")
