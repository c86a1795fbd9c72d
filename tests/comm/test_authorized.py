"""ssh_clear_authorized_keys against a real sshd whose sessions see a private /root (so ~/.ssh is ours)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.sshd import SshServer

from factory.comm.authorized import clear_authorized_key
from factory.comm.keys import KeyPair
from factory.comm.ssh import connect
from factory.errors import FactoryError


def test_the_ephemeral_key_is_removed_and_nothing_else(home_sshd: tuple[SshServer, Path]) -> None:
    server, keys = home_sshd
    ephemeral, own = KeyPair.generate("factory-build"), KeyPair.generate("admin@site")
    keys.write_text(f"# site keys\n{own.public_openssh}\n{ephemeral.public_openssh}\n"
                    f'no-pty,from="10.0.0.0/8" {ephemeral.public_openssh.rsplit(" ", 1)[0]} renamed\n')
    keys.chmod(0o600)
    inode = keys.stat().st_ino
    with connect(server.settings(keypair=ephemeral)) as c:
        outcome = clear_authorized_key(c, ephemeral)
        assert outcome.removed == ("/root/.ssh/authorized_keys",) and not outcome.kept and not outcome.unchecked
        assert clear_authorized_key(c, ephemeral).clean == ("/root/.ssh/authorized_keys",)  # nothing left to do
        assert c.run("true") == 0  # the session in use stays up (shutdown_command still runs)
    # Every line with the key went, however it was annotated; the rest, owner, mode and inode stayed.
    assert keys.read_text() == f"# site keys\n{own.public_openssh}\n"
    assert keys.stat().st_mode & 0o777 == 0o600 and keys.stat().st_ino == inode
    assert not list(keys.parent.glob("*factory*"))
    with pytest.raises(FactoryError, match="authentication failed"):
        connect(server.settings(keypair=ephemeral, handshake_attempts=1, timeout=3))
    with connect(server.settings(keypair=own)) as c:  # the site's own key still logs in
        assert c.run("true") == 0


def test_a_key_that_cannot_be_removed_is_reported(home_sshd: tuple[SshServer, Path]) -> None:
    server, keys = home_sshd
    ephemeral = KeyPair.generate("factory-build")
    keys.write_text(ephemeral.public_openssh + "\n")
    with connect(server.settings(keypair=ephemeral)) as c:
        # root ignores file modes: the immutable flag (ext4, as here and in CI) is what stops it.
        assert c.run("chattr +i /root/.ssh/authorized_keys") == 0
        try:
            outcome = clear_authorized_key(c, ephemeral)
        finally:
            c.run("chattr -i /root/.ssh/authorized_keys")
    assert outcome.kept == ("/root/.ssh/authorized_keys",) and not outcome.removed
    assert ephemeral.public_blob in keys.read_text()
