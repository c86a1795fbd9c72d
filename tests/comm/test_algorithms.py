"""ssh_ciphers / ssh_key_exchange_algorithms: what is offered is what gets negotiated with a real sshd."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fixtures.sshd import SshServer, running_sshd

from factory.comm import algorithms
from factory.comm.ssh import connect
from factory.errors import FactoryError


@pytest.fixture(scope="module")
def strict_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    extra = "Ciphers aes128-ctr,aes256-ctr\nKexAlgorithms ecdh-sha2-nistp256,curve25519-sha256@libssh.org\n"
    with running_sshd(tmp_path_factory.mktemp("strict"), extra=extra) as server:
        yield server


def test_chosen_cipher_and_kex_are_negotiated(strict_sshd: SshServer) -> None:
    settings = strict_sshd.settings(ciphers=("aes256-ctr",), kex_algorithms=("ecdh-sha2-nistp256",))
    with connect(settings) as c:
        assert c.run("true") == 0
        assert c.transport.local_cipher == "aes256-ctr" and c.transport.remote_cipher == "aes256-ctr"


@pytest.mark.parametrize(("option", "value", "word"), [("ciphers", ("aes256-gcm@openssh.com",), "cipher"),
                                                      ("kex_algorithms", ("ecdh-sha2-nistp384",), "kex")])
def test_an_algorithm_the_server_refuses_fails_the_handshake(strict_sshd: SshServer, option: str,
                                                            value: tuple[str, ...], word: str) -> None:
    # Proof that only the given names are offered: the server accepts paramiko's defaults but not these.
    with pytest.raises(FactoryError, match="handshake") as info:
        connect(strict_sshd.settings(**{option: value}, handshake_attempts=1, timeout=5))
    assert word in info.value.message.lower()


def test_unknown_names_are_errors_listing_the_supported_ones() -> None:
    with pytest.raises(FactoryError, match="unknown algorithm 'aes256-crt'") as info:
        algorithms.choose("ssh_ciphers", ["aes256-crt"], algorithms.CIPHERS)
    assert info.value.hint and "did you mean 'aes256-ctr'" in info.value.hint and "aes128-ctr" in info.value.hint


def test_packer_names_paramiko_lacks_are_dropped_when_others_remain() -> None:
    usable, dropped = algorithms.choose("ssh_ciphers", ["chacha20-poly1305@openssh.com", "aes128-ctr"],
                                        algorithms.CIPHERS)
    assert usable == ("aes128-ctr",) and dropped == ["chacha20-poly1305@openssh.com"]
    with pytest.raises(FactoryError, match="none of diffie-hellman-group1-sha1"):
        algorithms.choose("ssh_key_exchange_algorithms", ["diffie-hellman-group1-sha1"], algorithms.KEX)


def test_connect_says_which_names_it_left_out(strict_sshd: SshServer) -> None:
    said: list[str] = []
    settings = strict_sshd.settings(ciphers=("chacha20-poly1305@openssh.com", "aes128-ctr"))
    with connect(settings, notify=said.append) as c:
        assert c.transport.local_cipher == "aes128-ctr"
    assert said == ["not offered (factory's SSH lacks them): chacha20-poly1305@openssh.com"]
