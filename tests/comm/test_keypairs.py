"""Ephemeral key pairs of every type Packer offers, checked by OpenSSH's own tools and a real sshd."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.sshd import SshServer

from factory.comm.keys import KeyPair
from factory.comm.ssh import connect
from factory.errors import FactoryError


@pytest.mark.parametrize(("kind", "bits", "expect_type", "expect_bits"), [
    ("ed25519", None, "ED25519", 256), ("ed25519", 4096, "ED25519", 256),  # bits ignored, as in Packer
    ("rsa", None, "RSA", 4096), ("rsa", 2048, "RSA", 2048),
    ("ecdsa", None, "ECDSA", 256), ("ecdsa", 384, "ECDSA", 384), ("ecdsa", 521, "ECDSA", 521)])
def test_key_types_and_sizes_as_openssh_sees_them(kind: str, bits: int | None, expect_type: str, expect_bits: int,
                                                 tmp_path: Path) -> None:
    pair = KeyPair.generate("t", kind=kind, bits=bits)
    private = pair.write_private(tmp_path / "id")
    shown = subprocess.run(["ssh-keygen", "-l", "-f", str(private)], check=True, capture_output=True,
                           text=True).stdout.split()
    assert shown[0] == str(expect_bits) and shown[-1] == f"({expect_type})"
    derived = subprocess.run(["ssh-keygen", "-y", "-f", str(private)], check=True, capture_output=True,
                             text=True).stdout.split()[:2]
    assert derived == pair.public_openssh.split()[:2]
    assert pair.pkey().get_base64() == pair.public_blob


@pytest.mark.parametrize("kind", ["rsa", "ecdsa"])
def test_rsa_and_ecdsa_ephemeral_keys_log_in(kind: str, sshd: SshServer, tmp_path: Path) -> None:
    pair = KeyPair.generate("t", kind=kind, bits=2048 if kind == "rsa" else None)
    keys = sshd.workdir / "authorized_keys"
    before = keys.read_text()
    keys.write_text(before + pair.public_openssh + "\n")
    try:
        with connect(sshd.settings(keypair=pair)) as c:
            assert c.run("true") == 0
    finally:
        keys.write_text(before)


def test_dsa_is_refused_with_a_hint() -> None:
    with pytest.raises(FactoryError, match=r"dsa.*refused") as info:
        KeyPair.generate(kind="dsa")
    assert info.value.hint and "ed25519" in info.value.hint


@pytest.mark.parametrize(("kind", "bits", "message"), [
    ("rsa", 512, "not a usable RSA key size"), ("ecdsa", 300, "not an ECDSA curve size"),
    ("x25519", None, "unknown temporary_key_pair_type")])
def test_bad_type_or_size_is_a_clear_error(kind: str, bits: int | None, message: str) -> None:
    with pytest.raises(FactoryError, match=message):
        KeyPair.generate(kind=kind, bits=bits)


def test_a_stored_key_pair_loads_without_the_ssh_stack_which_preload_imports_on_a_thread() -> None:
    """A resumed build reads its key pair from the store before the VM starts: that must not cost paramiko's
    import (~0.2 s), which factory.comm.preload runs on a thread while QEMU loads the VM state instead."""
    script = """
import sys, threading
from factory.comm.keys import KeyPair
pair = KeyPair("-----BEGIN OPENSSH PRIVATE KEY-----\\nx\\n-----END OPENSSH PRIVATE KEY-----\\n", "ssh-ed25519 AAAA t")
pair.register()
assert "paramiko" not in sys.modules and "cryptography" not in sys.modules, "imported too early"
from factory.comm import preload
preload()
[t.join() for t in threading.enumerate() if t.name == "import-paramiko"]
assert "paramiko" in sys.modules and "paramiko.transport" in sys.modules
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
