"""qemu+ssh:// without a guest: libvirt's ssh transport reaches qemu:///system through an sshd on 127.0.0.1 with
a fixture key, and factory's tunnel (the same login, from the URI) carries a TCP connection to a port on that
host's loopback, as it carries the guest's SSH forward of a remote domain."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from factory.errors import FactoryError
from factory.machine import libvirt as lv
from factory.machine.libvirt_tunnel import SshTarget, SshTunnel, ssh_target
from tests.fixtures.sshd import running_sshd

# The tunnel's local ports. reserve() only checks a port; ssh binds it after logging in, and the tunnel counts the
# port as open once anything listens there. So: below the kernel's ephemeral range (32768-60999), where no outgoing
# connection takes the port meanwhile, and away from other tests' ranges (test_build_install's QEMU forwards SSH
# from 47700..47800: a forward there would pass for the tunnel).
LOCAL = (17700, 17800)


def test_ssh_target_comes_from_the_uri() -> None:
    assert ssh_target("qemu:///system") is None
    assert ssh_target("qemu+unix:///session?socket=/x") is None
    assert ssh_target("qemu+ssh://ann@host.example:2200/system?keyfile=/k&no_verify=1") == SshTarget(
        host="host.example", user="ann", port=2200, keyfile="/k", verify=False)
    assert ssh_target("qemu+ssh://host/system") == SshTarget(host="host")


def test_libvirt_over_ssh_and_the_tunnel_to_the_hosts_loopback(libvirt_system: str, tmp_path: Path) -> None:
    with running_sshd(tmp_path / "sshd") as server:
        key = server.keypair.write_private(tmp_path / "client_key")
        uri = f"qemu+ssh://root@127.0.0.1:{server.port}/system?keyfile={key}&no_verify=1"
        with lv.connection(uri) as conn:
            assert conn.getURI() == uri and conn.getLibVersion() > 0
        with socket.socket() as listener:       # stands in for the domain's forward on the remote loopback
            listener.bind(("127.0.0.1", 0))
            listener.listen()

            def echo() -> None:
                peer, _ = listener.accept()
                with peer:
                    peer.sendall(peer.recv(64).upper())

            threading.Thread(target=echo, daemon=True).start()
            tunnel = SshTunnel(ssh_target(uri) or pytest.fail("not an ssh URI"))
            try:
                local = tunnel.open(listener.getsockname()[1], *LOCAL)
                assert local != listener.getsockname()[1]
                with socket.create_connection(("127.0.0.1", local), timeout=20) as client:
                    client.sendall(b"through the tunnel")
                    assert client.recv(64) == b"THROUGH THE TUNNEL"
            finally:
                tunnel.stop()
            assert tunnel.proc is None


def test_a_tunnel_that_cannot_log_in_is_one_clear_message(tmp_path: Path) -> None:
    with running_sshd(tmp_path / "sshd") as server:
        tunnel = SshTunnel(SshTarget(host="127.0.0.1", user="root", port=server.port,
                                     keyfile=str(tmp_path / "no-such-key"), verify=False))
        with pytest.raises(FactoryError) as info:
            tunnel.open(22, *LOCAL, timeout=30)
        assert "the SSH tunnel to 127.0.0.1 for the guest's SSH port failed" in info.value.message
        assert tunnel.proc is None and tunnel.lease is None
