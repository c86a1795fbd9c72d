"""Packer's communicator options as a template gives them (QemuSource) → the communicator's settings, and a
real connection made from them: bastion, tunnels, SCP, pty and timeouts through the option names."""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.sshd import PASSWORD, SshServer, free_port, running_sshd

from factory.comm.config import ssh_settings_from
from factory.comm.route import Bastion, Proxy
from factory.comm.ssh import connect
from factory.comm.tunnel import Tunnel
from factory.schema.qemu import QemuSource

BASE = {"iso_url": "a.iso", "iso_checksum": "none", "ssh_username": "builder"}


def test_every_option_reaches_the_settings(tmp_path: Path) -> None:
    config = QemuSource(**BASE, ssh_host="10.1.2.3", ssh_port=2200, ssh_pty=True, ssh_agent_auth=True,
                        ssh_disable_agent_forwarding=True, ssh_private_key_file="keys/id",
                        ssh_certificate_file="keys/id-cert.pub",
                        ssh_ciphers=["chacha20-poly1305@openssh.com", "aes256-ctr", "aes128-ctr"],
                        ssh_key_exchange_algorithms=["curve25519-sha256@libssh.org"],
                        ssh_file_transfer_method="scp", ssh_keep_alive_interval="-1s",
                        ssh_read_write_timeout="2m", ssh_local_tunnels=["8080:localhost:80"],
                        ssh_remote_tunnels=["9090:127.0.0.1:3128"], ssh_proxy_host="socks.example",
                        ssh_proxy_port=1081, ssh_proxy_username="u", ssh_proxy_password="p")
    s = ssh_settings_from(config, tmp_path, "builder")
    assert (s.host, s.port, s.username, s.pty, s.agent_auth, s.forward_agent) == (
        "10.1.2.3", 2200, "builder", True, True, False)
    assert s.private_key_file == tmp_path / "keys/id" and s.certificate_file == tmp_path / "keys/id-cert.pub"
    assert s.ciphers == ("chacha20-poly1305@openssh.com", "aes256-ctr", "aes128-ctr")  # connect() filters
    assert s.kex_algorithms == ("curve25519-sha256@libssh.org",)
    assert (s.file_transfer, s.keepalive_interval, s.read_write_timeout) == ("scp", -1.0, 120.0)
    assert s.probe_every == 60.0 and s.silence_limit == 120.0
    assert s.local_tunnels == (Tunnel(8080, "localhost", 80),) and s.remote_tunnels == (Tunnel(9090, "127.0.0.1",
                                                                                            3128),)
    assert s.proxy == Proxy("socks.example", 1081, "u", "p") and s.bastion is None


def test_defaults_are_factorys(tmp_path: Path) -> None:
    s = ssh_settings_from(QemuSource(**BASE), tmp_path, "builder")
    assert (s.host, s.port, s.pty, s.forward_agent, s.file_transfer, s.keepalive_interval) == (
        "127.0.0.1", 22, False, True, "sftp", 5.0)
    assert s.read_write_timeout is None and s.silence_limit == 30.0 and s.bastion is None and s.proxy is None


def test_bastion_borrows_the_login_key_and_user_as_packer_does(tmp_path: Path) -> None:
    config = QemuSource(**BASE, ssh_private_key_file="id", ssh_certificate_file="id-cert.pub",
                        ssh_bastion_host="jump", ssh_bastion_password="pw", ssh_bastion_interactive=True)
    assert ssh_settings_from(config, tmp_path, "builder").bastion == Bastion(
        "jump", 22, "builder", "pw", tmp_path / "id", tmp_path / "id-cert.pub", interactive=True)
    own = QemuSource(**BASE, ssh_private_key_file="id", ssh_bastion_host="jump", ssh_bastion_port=2022,
                     ssh_bastion_username="ops", ssh_bastion_private_key_file="jump-key",
                     ssh_bastion_certificate_file="jump-cert.pub", ssh_bastion_agent_auth=True)
    assert ssh_settings_from(own, tmp_path, "builder").bastion == Bastion(
        "jump", 2022, "ops", None, tmp_path / "jump-key", tmp_path / "jump-cert.pub", agent_auth=True)


@pytest.fixture(scope="module")
def jump(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    with running_sshd(tmp_path_factory.mktemp("jump")) as server:
        yield server


def test_a_template_configured_connection_works_end_to_end(sshd: SshServer, jump: SshServer,
                                                           tmp_path: Path) -> None:
    key = sshd.keypair.write_private(tmp_path / "id")
    local = free_port()
    config = QemuSource(**BASE, ssh_private_key_file=str(key), ssh_pty=True, ssh_file_transfer_method="scp",
                        ssh_keep_alive_interval="2s", ssh_read_write_timeout="10s",
                        ssh_local_tunnels=[f"{local}:127.0.0.1:{sshd.port}"],
                        ssh_bastion_host=jump.host, ssh_bastion_port=jump.port,
                        ssh_bastion_username=jump.username, ssh_bastion_password=PASSWORD)
    settings = dataclasses.replace(ssh_settings_from(config, tmp_path, sshd.username), host=sshd.host,
                                   port=sshd.port, timeout=20)
    lines: list[str] = []
    with connect(settings) as c:
        c.upload(b"scp through the bastion\n", "/tmp/factory-config-e2e")
        assert c.run("tty >/dev/null && cat /tmp/factory-config-e2e; rm -f /tmp/factory-config-e2e",
                     on_line=lines.append) == 0
        # The local tunnel reaches the guest's own sshd: OpenSSH's ssh-keyscan gets its host key through it.
        scanned = subprocess.run(["ssh-keyscan", "-p", str(local), "127.0.0.1"], capture_output=True, text=True,
                                 timeout=20).stdout
        host_key = subprocess.run(["ssh-keygen", "-y", "-f", str(sshd.workdir / "host_ed25519")], check=True,
                                  capture_output=True, text=True).stdout.split()[1]
        assert host_key in scanned
    assert lines == ["scp through the bastion"]


@pytest.mark.parametrize(("line", "message"), [
    ('ssh_local_tunnels = ["8080:localhost"]', "ssh_local_tunnels entry '8080:localhost' is not PORT:HOST:PORT"),
    ('ssh_ciphers = ["aes256-crt"]', "ssh_ciphers: unknown algorithm 'aes256-crt'"),
    ('temporary_key_pair_type = "rsa2"', "invalid temporary_key_pair_type 'rsa2'")])
def test_bad_values_are_reported_at_their_template_line(tmp_path: Path, line: str, message: str) -> None:
    from factory.errors import FactoryError
    from factory.template import load

    (tmp_path / "t.pkr.hcl").write_text('source "qemu" "x" {\n  iso_url = "a.iso"\n  iso_checksum = "none"\n'
                                        f'  ssh_username = "root"\n  {line}\n}}\nbuild {{\n'
                                        '  sources = ["source.qemu.x"]\n}\n')
    with pytest.raises(FactoryError) as info:
        load(tmp_path / "t.pkr.hcl")
    rendered = info.value.render()
    assert message in rendered and "t.pkr.hcl:5" in rendered, rendered
