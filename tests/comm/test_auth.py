"""Logging in with the agent, agent forwarding, OpenSSH user certificates (real ssh-agent, ssh-keygen, sshd)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.sshd import SshServer, running_sshd, ssh_agent

from factory.comm.keys import KeyPair
from factory.comm.ssh import connect
from factory.errors import FactoryError


@pytest.fixture
def agent(tmp_path: Path, sshd: SshServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A real ssh-agent holding the sshd fixture's client key (and nothing else has it); SSH_AUTH_SOCK set."""
    key = sshd.keypair.write_private(tmp_path / "id_agent")
    with ssh_agent(tmp_path, key) as sock:
        key.unlink()  # from now on only the agent has it
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        yield sock


def test_agent_auth_logs_in_with_the_agents_key_only(sshd: SshServer, agent: Path) -> None:
    with connect(sshd.settings(keypair=None, agent_auth=True)) as c:
        assert c.run("true") == 0


def test_agent_auth_without_an_agent_is_a_clear_error(sshd: SshServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    with pytest.raises(FactoryError, match="SSH_AUTH_SOCK is not") as info:
        connect(sshd.settings(keypair=None, agent_auth=True))
    assert info.value.hint and "ssh-agent" in info.value.hint


def test_agent_is_forwarded_unless_disabled(sshd: SshServer, agent: Path) -> None:
    fingerprint = sshd.keypair.pkey().fingerprint
    lines: list[str] = []
    with connect(sshd.settings()) as c:
        # The guest side sees a forwarded agent socket, and it holds our key.
        assert c.run("ssh-add -l", on_line=lines.append) == 0
    assert any(fingerprint in line for line in lines), lines
    lines.clear()
    with connect(sshd.settings(forward_agent=False)) as c:
        assert c.run('test -z "$SSH_AUTH_SOCK" && echo no-agent', on_line=lines.append) == 0
    assert lines == ["no-agent"]


@pytest.fixture(scope="module")
def ca_sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[SshServer, Path]]:
    """An sshd that trusts a user CA and has no authorized keys: only certificates get in."""
    work = tmp_path_factory.mktemp("ca")
    ca = KeyPair.generate("ca").write_private(work / "ca")
    (work / "ca.pub").write_text(subprocess.run(["ssh-keygen", "-y", "-f", str(ca)], check=True,
                                                capture_output=True, text=True).stdout)
    extra = f"TrustedUserCAKeys {work}/ca.pub\nAuthorizedKeysFile none\n"
    with running_sshd(work / "sshd", extra=extra) as server:
        yield server, ca


def _sign(ca: Path, key: KeyPair, work: Path, principal: str) -> tuple[Path, Path]:
    private = key.write_private(work / "id_user")
    (work / "id_user.pub").write_text(key.public_openssh + "\n")
    subprocess.run(["ssh-keygen", "-q", "-s", str(ca), "-I", "factory-test", "-n", principal, "-V", "+1h",
                    str(work / "id_user.pub")], check=True, capture_output=True)
    # Moved away from id_user-cert.pub, which paramiko (like OpenSSH) would pick up by itself.
    return private, (work / "id_user-cert.pub").rename(work / "user-certificate.pub")


def test_certificate_login(ca_sshd: tuple[SshServer, Path], tmp_path: Path) -> None:
    server, ca = ca_sshd
    private, cert = _sign(ca, KeyPair.generate("user"), tmp_path, server.username)
    with pytest.raises(FactoryError, match="authentication failed"):  # the bare key is not authorized
        connect(server.settings(keypair=None, private_key_file=private, handshake_attempts=1, timeout=3))
    with connect(server.settings(keypair=None, private_key_file=private, certificate_file=cert)) as c:
        assert c.run("true") == 0


def test_certificate_errors_are_clear(ca_sshd: tuple[SshServer, Path], tmp_path: Path) -> None:
    server, ca = ca_sshd
    private, cert = _sign(ca, KeyPair.generate("user"), tmp_path, server.username)
    other = KeyPair.generate("other").write_private(tmp_path / "other")
    with pytest.raises(FactoryError, match="cannot be used with") as info:
        connect(server.settings(keypair=None, private_key_file=other, certificate_file=cert))
    assert info.value.hint and "ssh-keygen -s" in info.value.hint
    with pytest.raises(FactoryError, match="needs ssh_private_key_file"):
        connect(server.settings(certificate_file=cert))
    with pytest.raises(FactoryError, match="does not exist"):
        connect(server.settings(keypair=None, private_key_file=private, certificate_file=tmp_path / "nope"))
