"""The clear-keys build step (ssh_clear_authorized_keys) on a real sshd with a private ~/.ssh."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.sshd import SshServer

from factory.build import EventBus
from factory.comm.keys import KeyPair
from factory.comm.ssh import connect
from factory.errors import FactoryError
from factory.schema.qemu import QemuSource
from factory.steps.comm import ClearAuthorizedKeys
from factory.steps.context import BuildContext


def _ctx(tmp_path: Path, clear: bool, keypair: KeyPair | None) -> BuildContext:
    config = QemuSource(iso_url="a.iso", iso_checksum="none", ssh_username="root", ssh_clear_authorized_keys=clear)
    ctx = BuildContext(build_name="b", bus=EventBus(), config=config, keypair=keypair)
    ctx.source_name, ctx.root = "x", tmp_path
    return ctx


def test_step_removes_the_key_only_when_asked_and_only_for_the_ephemeral_key(
        home_sshd: tuple[SshServer, Path], tmp_path: Path) -> None:
    server, keys = home_sshd
    pair = KeyPair.generate("factory-x")
    keys.write_text(pair.public_openssh + "\n")
    step = ClearAuthorizedKeys()
    with connect(server.settings(keypair=pair)) as comm:
        off = _ctx(tmp_path, False, pair)
        off.comm = comm
        assert not step.applies(off)  # Packer's default: the key stays
        user_key = _ctx(tmp_path, True, None)  # ssh_private_key_file / password: nothing of ours to remove
        user_key.comm = comm
        assert not step.applies(user_key)
        on = _ctx(tmp_path, True, pair)
        on.comm = comm
        assert step.applies(on)
        step.run(on)
    assert pair.public_blob not in keys.read_text()


def test_step_fails_when_the_key_survives(home_sshd: tuple[SshServer, Path], tmp_path: Path) -> None:
    server, keys = home_sshd
    pair = KeyPair.generate("factory-x")
    keys.write_text(pair.public_openssh + "\n")
    with connect(server.settings(keypair=pair)) as comm:
        ctx = _ctx(tmp_path, True, pair)
        ctx.comm = comm
        comm.run("chattr +i /root/.ssh/authorized_keys")
        try:
            with pytest.raises(FactoryError, match=r"still in /root/\.ssh/authorized_keys") as info:
                ClearAuthorizedKeys().run(ctx)
        finally:
            comm.run("chattr -i /root/.ssh/authorized_keys")
    assert info.value.hint and "immutable" in info.value.hint
