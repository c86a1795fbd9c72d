"""Reaching sshd through a bastion (a second real sshd) or a SOCKS5 proxy (OpenSSH's `ssh -D`, microsocks)."""

from __future__ import annotations

import contextlib
import os
import pty
import select
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.sshd import PASSWORD, SshServer, free_port, running_sshd, ssh_agent

from factory import secrets
from factory.comm.route import Bastion, Proxy
from factory.comm.ssh import connect
from factory.errors import FactoryError


@pytest.fixture(scope="module")
def bastion(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    """A second sshd as jump host: logs direct-tcpip requests; keyboard-interactive through PAM."""
    extra = "LogLevel DEBUG1\nUsePAM yes\nKbdInteractiveAuthentication yes\n"
    with running_sshd(tmp_path_factory.mktemp("bastion"), extra=extra) as server:
        yield server


def _forwarded_to(bastion: SshServer, port: int) -> bool:
    return f"target 127.0.0.1 port {port}" in bastion.log()


def test_bastion_with_password(sshd: SshServer, bastion: SshServer) -> None:
    jump = Bastion(bastion.host, bastion.port, username=bastion.username, password=PASSWORD)
    with connect(sshd.settings(bastion=jump)) as c:
        lines: list[str] = []
        assert c.run("echo via-bastion", on_line=lines.append) == 0
        c.upload(b"over the jump\n", f"/tmp/factory-bastion-{os.getpid()}")
        c.run(f"cat /tmp/factory-bastion-{os.getpid()}; rm /tmp/factory-bastion-{os.getpid()}", on_line=lines.append)
    assert lines == ["via-bastion", "over the jump"]
    assert _forwarded_to(bastion, sshd.port)
    assert PASSWORD not in repr(jump)


def test_bastion_with_key_and_with_agent(sshd: SshServer, bastion: SshServer, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    key = bastion.keypair.write_private(tmp_path / "bastion_key")
    with connect(sshd.settings(bastion=Bastion(bastion.host, bastion.port, private_key_file=key))) as c:
        assert c.run("true") == 0
    with ssh_agent(tmp_path, key) as sock:
        monkeypatch.setenv("SSH_AUTH_SOCK", str(sock))
        with connect(sshd.settings(bastion=Bastion(bastion.host, bastion.port, agent_auth=True),
                                   forward_agent=False)) as c:
            assert c.run("true") == 0


def test_wrong_bastion_password_fails_at_once(sshd: SshServer, bastion: SshServer) -> None:
    start = time.monotonic()
    with pytest.raises(FactoryError, match="cannot log in to the bastion") as info:
        connect(sshd.settings(timeout=60, bastion=Bastion(bastion.host, bastion.port, password="wrong-pw")))
    assert time.monotonic() - start < 15
    assert info.value.hint and "ssh_bastion_password" in info.value.hint


def test_bastion_that_cannot_reach_the_target_is_diagnosed(sshd: SshServer, bastion: SshServer) -> None:
    closed = free_port()
    jump = Bastion(bastion.host, bastion.port, password=PASSWORD)
    with pytest.raises(FactoryError) as info:
        connect(sshd.settings(port=closed, timeout=2, bastion=jump))
    assert "the bastion could not connect to 127.0.0.1" in info.value.message
    assert "through the bastion root@127.0.0.1" in info.value.message


def test_bastion_and_proxy_exclude_each_other(sshd: SshServer, bastion: SshServer) -> None:
    with pytest.raises(FactoryError, match="cannot both be set"):
        connect(sshd.settings(bastion=Bastion(bastion.host, bastion.port, password=PASSWORD),
                              proxy=Proxy("127.0.0.1", 1)))


_INTERACTIVE = textwrap.dedent("""
    import os, sys
    # A session leader opening a terminal gets it as its controlling terminal, as a user at a console has.
    tty = os.open(sys.argv[5], os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(tty, fd)
    from factory.comm.route import Bastion
    from factory.comm.ssh import SSHSettings, connect
    host, port, bport, key = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    jump = Bastion(host, bport, username="root", interactive=True)
    with connect(SSHSettings(host=host, port=port, private_key_file=key, bastion=jump, timeout=20)) as c:
        c.run("echo interactive-ok", on_line=print)
""")


def test_bastion_interactive_asks_at_the_terminal(sshd: SshServer, bastion: SshServer, tmp_path: Path) -> None:
    key = sshd.keypair.write_private(tmp_path / "target_key")
    fd, child_end = pty.openpty()
    # No fork of this (threaded) process: a new session whose first act is to open the pty (see above).
    child = subprocess.Popen([sys.executable, "-c", _INTERACTIVE, sshd.host, str(sshd.port), str(bastion.port),
                              str(key), os.ttyname(child_end)], start_new_session=True,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen = b""  # child_end stays open here until the end: closed before the child opens it, reads would fail
    try:
        seen = _read_until(fd, b"assword:", 20)
        os.write(fd, PASSWORD.encode() + b"\n")
        seen += _read_until(fd, b"interactive-ok", 20)
    finally:
        child.kill()
        child.wait()
        os.close(fd)
        os.close(child_end)
    assert b"interactive-ok" in seen
    assert PASSWORD.encode() not in seen  # no echo of the answer


def _read_until(fd: int, marker: bytes, timeout: float) -> bytes:
    out, end = b"", time.monotonic() + timeout
    while marker not in out:
        ready, _, _ = select.select([fd], [], [], max(end - time.monotonic(), 0))
        if not ready:
            raise AssertionError(f"no {marker!r} within {timeout}s: {out!r}")
        try:
            out += os.read(fd, 1024)
        except OSError:
            raise AssertionError(f"the child ended before {marker!r}: {out!r}") from None
    return out


# -- SOCKS5 ---------------------------------------------------------------------------------------------------
@pytest.fixture
def ssh_dynamic(sshd: SshServer, tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """OpenSSH's own SOCKS5 server (`ssh -D`), logging each forwarded connection."""
    port, log = free_port(), tmp_path / "ssh-D.log"
    key = sshd.keypair.write_private(tmp_path / "key")
    proc = subprocess.Popen(["ssh", "-N", "-v", "-D", f"127.0.0.1:{port}", "-i", str(key), "-p", str(sshd.port),
                             "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                             "-o", "BatchMode=yes", f"{sshd.username}@{sshd.host}"],
                            stdout=subprocess.DEVNULL, stderr=open(log, "wb"))  # noqa: SIM115
    try:
        _wait_port(port, proc)
        yield port, log
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture
def microsocks() -> Iterator[int]:
    """microsocks with RFC 1929 user/password authentication."""
    port = free_port()
    proc = subprocess.Popen(["microsocks", "-i", "127.0.0.1", "-p", str(port), "-u", "builder",
                             "-P", "socks-pw-3"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port, proc)
        yield port
    finally:
        proc.kill()
        proc.wait()


def _wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(500):
        assert proc.poll() is None, "the SOCKS server exited"
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return
        time.sleep(0.02)
    raise AssertionError(f"nothing listens on {port}")


def test_socks5_proxy_openssh_dynamic_forward(sshd: SshServer, ssh_dynamic: tuple[int, Path]) -> None:
    port, log = ssh_dynamic
    before = log.read_text().count("new dynamic-tcpip")
    with connect(sshd.settings(proxy=Proxy("127.0.0.1", port))) as c:
        assert c.run("true") == 0
    assert log.read_text().count("new dynamic-tcpip") > before  # ssh -D carried our connection


def test_socks5_proxy_with_user_and_password(sshd: SshServer, microsocks: int) -> None:
    with connect(sshd.settings(proxy=Proxy("127.0.0.1", microsocks, "builder", "socks-pw-3"))) as c:
        assert c.run("true") == 0
    assert "socks-pw-3" not in secrets.mask("socks-pw-3")
    start = time.monotonic()
    with pytest.raises(FactoryError, match="refused the connection") as info:
        connect(sshd.settings(timeout=60, proxy=Proxy("127.0.0.1", microsocks, "builder", "wrong")))
    assert time.monotonic() - start < 10
    assert info.value.hint and "ssh_proxy_password" in info.value.hint


def test_unreachable_proxy_times_out_naming_it(sshd: SshServer) -> None:
    with pytest.raises(FactoryError) as info:
        connect(sshd.settings(timeout=1.5, proxy=Proxy("127.0.0.1", free_port())))
    assert "SOCKS proxy 127.0.0.1" in info.value.message and "not reachable" in info.value.message
