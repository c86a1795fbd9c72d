"""The ssh-key step: temporary_key_pair_type/bits, and no ephemeral key with ssh_agent_auth (as Packer)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from factory.build import EventBus
from factory.errors import FactoryError
from factory.schema.qemu import QemuSource
from factory.steps.context import BuildContext
from factory.steps.prepare import SshKey


def _run(tmp_path: Path, **options: Any) -> BuildContext:
    config = QemuSource(iso_url="a.iso", iso_checksum="none", ssh_username="root", **options)
    ctx = BuildContext(build_name="b", bus=EventBus(), config=config)
    ctx.source_name, ctx.root = "x", tmp_path
    SshKey().run(ctx)
    return ctx


@pytest.mark.parametrize(("options", "bits", "kind"), [
    ({}, 256, "ED25519"),
    ({"temporary_key_pair_type": "ecdsa", "temporary_key_pair_bits": 384}, 384, "ECDSA"),
    ({"temporary_key_pair_type": "rsa", "temporary_key_pair_bits": 3072}, 3072, "RSA")])
def test_ephemeral_key_type_and_size(tmp_path: Path, options: dict[str, Any], bits: int, kind: str) -> None:
    ctx = _run(tmp_path, **options)
    key = ctx.keypair.write_private(tmp_path / "id")
    shown = subprocess.run(["ssh-keygen", "-l", "-f", str(key)], check=True, capture_output=True,
                           text=True).stdout.split()
    assert shown[0] == str(bits) and shown[-1] == f"({kind})"
    assert ctx.keypair.public_openssh.endswith(f" factory-{ctx.vm_name}")


def test_no_ephemeral_key_with_agent_auth_password_or_key_file(tmp_path: Path) -> None:
    assert _run(tmp_path, ssh_agent_auth=True).keypair is None
    assert _run(tmp_path, ssh_password="pw").keypair is None
    assert _run(tmp_path, ssh_private_key_file="id").keypair is None


def test_dsa_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FactoryError, match="DSA keys are insecure"):
        _run(tmp_path, temporary_key_pair_type="dsa")
