"""The SSH communicator against a real OpenSSH server (tests/fixtures/sshd.py): wait, auth, run, diagnostics."""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.sshd import PASSWORD, SshServer, free_port, launch, prepare, stop, wait_listening

from factory import secrets
from factory.comm.keys import KeyPair
from factory.comm.ssh import Communicator, Disconnected, SSHSettings, connect
from factory.errors import FactoryError


@pytest.fixture
def comm(sshd: SshServer) -> Iterator[Communicator]:
    with connect(sshd.settings()) as c:
        yield c


def test_generated_keypair_is_openssh_ed25519_and_private_half_is_masked(tmp_path: Path) -> None:
    pair = KeyPair.generate()
    assert pair.public_openssh.startswith("ssh-ed25519 ")
    assert pair.private_openssh.startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
    assert pair.private_openssh not in repr(pair)
    assert "OPENSSH PRIVATE KEY" not in secrets.mask(pair.private_openssh).replace("-----BEGIN", "")
    body = pair.private_openssh.splitlines()[1]
    assert body not in secrets.mask(f"log line {body}")
    # OpenSSH's own tool agrees that the two halves belong together.
    derived = subprocess.run(["ssh-keygen", "-y", "-f", str(pair.write_private(tmp_path / "id"))],
                             check=True, capture_output=True, text=True).stdout.split()[:2]
    assert derived == pair.public_openssh.split()[:2]
    assert (tmp_path / "id").stat().st_mode & 0o777 == 0o600


def test_key_auth_runs_commands_and_returns_exit_status(comm: Communicator) -> None:
    lines: list[str] = []
    assert comm.run("id -u; hostname >/dev/null", on_line=lines.append) == 0
    assert lines == ["0"]
    assert comm.run("exit 3") == 3
    assert comm.run("false") == 1


def test_password_auth(sshd: SshServer) -> None:
    lines: list[str] = []
    with connect(sshd.settings(keypair=None, password=PASSWORD)) as c:
        assert c.run("echo password-login-ok", on_line=lines.append) == 0
    assert lines == ["password-login-ok"]
    assert PASSWORD not in secrets.mask(f"pw {PASSWORD}")


def test_private_key_file_login_and_unusable_key_file(sshd: SshServer, tmp_path: Path) -> None:
    key_file = sshd.keypair.write_private(tmp_path / "id_ed25519")
    with connect(sshd.settings(keypair=None, private_key_file=str(key_file))) as c:
        assert c.run("true") == 0
    (tmp_path / "junk").write_text("not a key")
    with pytest.raises(FactoryError, match="is not a usable private key"):
        connect(sshd.settings(keypair=None, private_key_file=tmp_path / "junk"))
    with pytest.raises(FactoryError, match="does not exist"):  # at once, before any waiting for sshd
        connect(sshd.settings(keypair=None, port=free_port(), timeout=60, private_key_file=tmp_path / "missing"))


def test_output_lines_stream_live_from_stdout_and_stderr(comm: Communicator) -> None:
    seen: list[tuple[float, str]] = []
    start = time.monotonic()
    status = comm.run("echo first; sleep 1; echo to-stderr >&2; sleep 1; printf 'no-newline'",
                      on_line=lambda line: seen.append((time.monotonic() - start, line)))
    assert status == 0
    assert [line for _, line in seen] == ["first", "to-stderr", "no-newline"]
    # Each line arrived when it was printed, not all at the end: the arrivals are as far apart as the sleeps
    # (gaps, not absolute times, so a loaded host that delays the login does not matter).
    assert seen[1][0] - seen[0][0] >= 0.8 and seen[2][0] - seen[1][0] >= 0.8, seen


def test_secrets_are_masked_in_streamed_output(comm: Communicator) -> None:
    secrets.register("s3cr3t-token-value")
    lines: list[str] = []
    comm.run("echo token=s3cr3t-token-value; echo s3cr3t-token-value >&2", on_line=lines.append)
    assert lines == ["token=<sensitive>", "<sensitive>"]


def test_command_timeout_is_a_clear_error(comm: Communicator) -> None:
    start = time.monotonic()
    with pytest.raises(FactoryError, match="timed out after 1s"):
        comm.run("sleep 20", timeout=1)
    assert time.monotonic() - start < 5
    assert comm.run("true") == 0  # the session is still usable


def test_upload_and_download_files_and_bytes(comm: Communicator, tmp_path: Path) -> None:
    remote = f"/tmp/factory-comm-{os.getpid()}-{time.monotonic_ns()}"
    comm.run(f"mkdir -p {remote}")
    comm.upload(b"from bytes\n", f"{remote}/b.txt")
    script = tmp_path / "s.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o755)
    comm.upload(script, f"{remote}/s.sh")
    lines: list[str] = []
    assert comm.run(f"cat {remote}/b.txt; {remote}/s.sh", on_line=lines.append) == 0
    assert lines == ["from bytes", "hi"]
    comm.download(f"{remote}/s.sh", tmp_path / "back" / "s.sh")
    assert (tmp_path / "back" / "s.sh").read_text() == script.read_text()
    assert (tmp_path / "back" / "s.sh").stat().st_mode & 0o777 == 0o755
    with pytest.raises(FactoryError, match="cannot upload to /nonexistent-dir/x"):
        comm.upload(b"x", "/nonexistent-dir/x")
    with pytest.raises(FactoryError, match="cannot download /nonexistent-file"):
        comm.download("/nonexistent-file", tmp_path / "nope")
    assert not (tmp_path / "nope").exists()
    comm.run(f"rm -rf {remote}")


def test_a_deferred_command_rides_with_the_next_one_which_keeps_its_own_exit_status(comm: Communicator) -> None:
    remote = f"/tmp/factory-defer-{os.getpid()}-{time.monotonic_ns()}"
    assert comm.run(f"mkdir -p {remote} && touch {remote}/script.sh") == 0
    comm.defer(f"rm -f {remote}/script.sh")
    comm.defer(f"echo once >> {remote}/count; false")  # a deferred command's status is not the next command's
    lines: list[str] = []
    assert comm.run(f"test -e {remote}/script.sh || echo removed first; exit 3", on_line=lines.append) == 3
    assert lines == ["removed first"]
    assert comm.run(f"cat {remote}/count", on_line=lines.append) == 0
    assert lines == ["removed first", "once"]  # and it ran once, not again with this command
    comm.run(f"rm -rf {remote}")


def test_a_deferred_command_runs_before_a_transfer_and_at_close(sshd: SshServer) -> None:
    remote = f"/tmp/factory-defer-{os.getpid()}-{time.monotonic_ns()}"
    with connect(sshd.settings()) as c:
        assert c.run(f"mkdir -p {remote} && echo old > {remote}/s.sh") == 0
        c.defer(f"rm -f {remote}/s.sh")
        c.upload(b"new\n", f"{remote}/s.sh")  # the same path: the upload must not be what the rm removes
        lines: list[str] = []
        assert c.run(f"cat {remote}/s.sh", on_line=lines.append) == 0
        assert lines == ["new"]
        c.defer(f"rm -rf {remote}")
    with connect(sshd.settings()) as c:  # the first connection's close ran it
        assert c.run(f"test -e {remote}") == 1


def test_upload_dir_and_download_dir_round_trip(comm: Communicator, tmp_path: Path) -> None:
    src = tmp_path / "tree"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / "a.txt").write_text("a")
    (src / "sub" / "b.txt").write_text("b")
    (src / "sub" / "deeper" / "c.bin").write_bytes(bytes(range(256)))
    remote = f"/tmp/factory-tree-{os.getpid()}-{time.monotonic_ns()}/x/y"
    comm.upload_dir(src, remote)
    lines: list[str] = []
    comm.run(f"cd {remote} && find . -type f | sort", on_line=lines.append)
    assert lines == ["./a.txt", "./sub/b.txt", "./sub/deeper/c.bin"]
    comm.download(remote, tmp_path / "back")
    assert (tmp_path / "back" / "sub" / "deeper" / "c.bin").read_bytes() == bytes(range(256))
    assert (tmp_path / "back" / "a.txt").read_text() == "a"
    comm.run(f"rm -rf {remote.rsplit('/x/y', 1)[0]}")


def test_never_listening_port_times_out_naming_the_likely_cause(sshd: SshServer) -> None:
    start = time.monotonic()
    with pytest.raises(FactoryError) as info:
        connect(sshd.settings(port=free_port(), timeout=1.5))
    assert 1.4 < time.monotonic() - start < 4
    assert "connection refused the whole time" in info.value.message
    assert info.value.hint and "sshd never listened" in info.value.hint and "TCG" in info.value.hint


def test_wrong_key_gives_an_authentication_hint(sshd: SshServer) -> None:
    with pytest.raises(FactoryError) as info:
        connect(sshd.settings(keypair=KeyPair.generate(), handshake_attempts=2))
    assert "authentication failed" in info.value.message
    assert info.value.hint and "wrong ssh_username or key not injected" in info.value.hint


def test_port_that_closes_before_the_banner_is_diagnosed_like_qemu_port_forwarding() -> None:
    # QEMU's user-mode hostfwd accepts on the host and closes at once while the guest's sshd is down.
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop_event = threading.Event()

    def accept_and_close() -> None:
        listener.settimeout(0.2)
        while not stop_event.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.close()

    thread = threading.Thread(target=accept_and_close, daemon=True)
    thread.start()
    try:
        with pytest.raises(FactoryError) as info:
            connect(SSHSettings(port=port, keypair=KeyPair.generate(), timeout=1.5))
    finally:
        stop_event.set()
        thread.join()
        listener.close()
    assert "connection closed before the SSH banner" in info.value.message
    assert info.value.hint and "QEMU" in info.value.hint


def test_port_that_accepts_but_never_speaks_is_diagnosed_within_the_timeout() -> None:
    listener = socket.create_server(("127.0.0.1", 0), backlog=64)  # the kernel accepts; nobody ever talks
    try:
        start = time.monotonic()
        with pytest.raises(FactoryError) as info:
            connect(SSHSettings(port=listener.getsockname()[1], keypair=KeyPair.generate(), timeout=3))
        assert time.monotonic() - start < 4.5
    finally:
        listener.close()
    assert "no SSH banner" in info.value.message
    assert info.value.hint and "something other than sshd" in info.value.hint


def test_alive_raising_ends_the_wait_at_once(sshd: SshServer) -> None:
    start = time.monotonic()

    def alive() -> None:
        if time.monotonic() - start > 0.5:
            raise FactoryError("qemu exited with status 1")

    with pytest.raises(FactoryError, match="qemu exited"):
        connect(sshd.settings(port=free_port(), timeout=60), alive=alive)
    assert time.monotonic() - start < 2


def test_wait_started_before_sshd_connects_within_a_second_of_it_listening(tmp_path: Path) -> None:
    server = prepare(tmp_path / "late")
    result: dict[str, float | BaseException] = {}

    def client() -> None:
        try:
            with connect(server.settings(timeout=30)) as c:
                result["connected"] = time.monotonic()
                c.run("true")
                result["done"] = time.monotonic()
        except BaseException as exc:
            result["error"] = exc

    thread = threading.Thread(target=client)
    thread.start()
    time.sleep(1.5)  # the client is polling a port nobody listens on
    launch(server)
    try:
        wait_listening(server)
        listening = time.monotonic()
        thread.join(30)
        # What one connect+command costs on this shared machine once sshd listens: the floor.
        floor = statistics.median(_timed_first_command(server) for _ in range(3))
    finally:
        stop(server)
    assert "error" not in result, result.get("error")
    # Our part: noticing the port and logging in (one poll interval plus the handshake).
    lag = float(result["connected"]) - listening
    assert lag <= 0.6, f"logged in {lag:.2f}s after sshd listened"
    # The target is <= 1 s from sshd listening to the first command done. This machine is shared and often
    # loaded; beyond 1 s the excess must be the server's (the command took no more than a few floors).
    latency = float(result["done"]) - listening
    command = float(result["done"]) - float(result["connected"])
    assert latency <= 1.0 or command <= 3 * floor, (
        f"first command {latency:.2f}s after sshd listened (login {lag:.2f}s, command {command:.2f}s, "
        f"floor {floor:.2f}s)")


def _timed_first_command(server: SshServer) -> float:
    start = time.monotonic()
    with connect(server.settings()) as c:
        c.run("true")
    return time.monotonic() - start


def test_server_side_disconnect_raises_disconnected_then_reconnects(comm: Communicator) -> None:
    with pytest.raises(Disconnected, match="dropped while running") as info:
        comm.run("sleep 0.3; kill -9 $PPID; sleep 5")
    assert info.value.hint and "expect_disconnect" in info.value.hint
    lines: list[str] = []
    assert comm.run("echo back", on_line=lines.append) == 0
    assert lines == ["back"]


def test_closing_after_the_guest_went_away_under_an_open_sftp_session_is_quiet(comm: Communicator,
                                                                                tmp_path: Path) -> None:
    # The shutdown step closes the session after the guest powered off. If the connection died before paramiko's
    # reader thread saw it, closing the SFTP channel wrote to a dead socket and raised a bare EOFError (seen with
    # four builds at once under load). Here the socket is shut for writing, so the first write fails at once.
    comm.upload(b"x", str(tmp_path / "f"))  # opens the SFTP session
    comm.transport.sock.shutdown(socket.SHUT_WR)  # type: ignore[union-attr]
    comm.close()
    assert not comm.is_connected()


def test_a_command_whose_connection_dies_under_it_ends_in_a_factory_error_not_a_bare_eoferror(
        comm: Communicator) -> None:
    # What a shutdown_command can meet when the guest powers off: the connection is dead but paramiko has not
    # noticed, so closing the command's channel writes to a dead socket (seen in CI as an EOFError out of the
    # build). Here the server side is frozen (it never closes anything) and our socket is shut for writing.
    pids: list[str] = []

    def cut(line: str) -> None:
        pids.append(line)
        _wait_stopped(int(line))  # the command has stopped its sshd (a fixed sleep could end before, under load)
        comm.transport.sock.shutdown(socket.SHUT_WR)  # type: ignore[union-attr]

    try:
        with pytest.raises(FactoryError):
            comm.run("echo $PPID; sleep 0.3; kill -STOP $PPID; sleep 60", on_line=cut, timeout=2)
    finally:
        for pid in pids:
            os.kill(int(pid), signal.SIGKILL)


def _wait_stopped(pid: int, timeout: float = 30.0) -> None:
    """Wait until pid is stopped (state T in /proc: the command's `kill -STOP $PPID` has happened)."""
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "T":
        assert time.monotonic() < deadline, f"process {pid} was not stopped within {timeout:g}s"
        time.sleep(0.02)


def test_silent_dead_peer_is_detected_by_liveness_probe(sshd: SshServer) -> None:
    # A guest that reboots behind QEMU's port forward never closes the host socket: freeze the server side.
    pids: list[str] = []
    with connect(sshd.settings(keepalive_interval=1, dead_after=2)) as c:
        start = time.monotonic()
        try:
            with pytest.raises(Disconnected):
                c.run("echo $PPID; sleep 0.3; kill -STOP $PPID; sleep 60", on_line=pids.append)
            assert time.monotonic() - start < 8
        finally:
            for pid in pids:
                os.kill(int(pid), signal.SIGKILL)
        assert c.run("true") == 0


def test_command_killed_by_signal_returns_minus_one(comm: Communicator) -> None:
    assert comm.run("kill -9 $$") == -1
    assert comm.run("true") == 0


def test_expect_pins_the_host_key(sshd: SshServer) -> None:
    with connect(sshd.settings(), expect=sshd.host_fingerprint) as c:
        assert c.run("true") == 0
    with pytest.raises(FactoryError) as info:
        connect(sshd.settings(timeout=1.5), expect="SHA256:not-this-host")
    assert "unexpected host key" in info.value.message


def test_expect_command_skips_the_wrong_system(sshd: SshServer) -> None:
    with connect(sshd.settings(), expect="test -d /proc") as c:
        assert c.run("true") == 0
    with pytest.raises(FactoryError) as info:
        connect(sshd.settings(timeout=2), expect="test -e /etc/installed-by-factory-never")
    assert "expect check" in info.value.message
    assert info.value.hint and "installer" in info.value.hint


def test_pause_before_connecting_waits_after_first_contact(sshd: SshServer) -> None:
    start = time.monotonic()
    with connect(sshd.settings(pause_before_connecting=1.0)) as c:
        assert time.monotonic() - start >= 1.0
        assert c.run("true") == 0


def test_no_credentials_is_a_user_error(sshd: SshServer) -> None:
    with pytest.raises(FactoryError, match="no SSH credentials"):
        connect(sshd.settings(keypair=None))


def test_pty_runs_commands_on_a_terminal(sshd: SshServer) -> None:
    lines: list[str] = []
    with connect(sshd.settings(pty=True)) as c:
        assert c.run("tty; echo to-stderr >&2", on_line=lines.append) == 0
    assert lines[0].startswith("/dev/pts/") and lines[1] == "to-stderr"
    with connect(sshd.settings()) as c:
        assert c.run("tty", on_line=lines.append) == 1  # no terminal without ssh_pty
    assert lines[-1] == "not a tty"


def _frozen_server_run(sshd: SshServer, **kw: object) -> tuple[type[BaseException], float]:
    """Run a command whose server side freezes (a guest that vanished); what ended it, and when."""
    pids: list[str] = []
    with connect(sshd.settings(**kw)) as c:
        start = time.monotonic()
        try:
            c.run("echo $PPID; sleep 0.3; kill -STOP $PPID; sleep 60", on_line=pids.append, timeout=6)
        except FactoryError as exc:
            return type(exc), time.monotonic() - start
        finally:
            for pid in pids:
                os.kill(int(pid), signal.SIGKILL)
    raise AssertionError("the command did not fail")


def test_read_write_timeout_declares_a_silent_server_dead(sshd: SshServer) -> None:
    kind, took = _frozen_server_run(sshd, keepalive_interval=-1, read_write_timeout=1.5)
    assert kind is Disconnected and took < 5


def test_negative_keep_alive_interval_disables_probing(sshd: SshServer) -> None:
    # No keep-alives and no read/write timeout: only the command's own timeout ends the wait (Packer's -1s).
    kind, took = _frozen_server_run(sshd, keepalive_interval=-1, dead_after=1)
    assert kind is FactoryError and took >= 5.9
