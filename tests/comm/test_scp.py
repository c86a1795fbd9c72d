"""ssh_file_transfer_method = "scp": the SCP protocol against a real sshd that has no SFTP subsystem."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.sshd import SshServer, running_sshd

from factory.comm.ssh import Communicator, connect
from factory.errors import FactoryError


@pytest.fixture(scope="module")
def scp_only(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    with running_sshd(tmp_path_factory.mktemp("scp-only"), sftp=False) as server:
        yield server


@pytest.fixture
def comm(scp_only: SshServer) -> Iterator[Communicator]:
    with connect(scp_only.settings(file_transfer="scp")) as c:
        yield c


@pytest.fixture
def remote(comm: Communicator) -> Iterator[str]:
    path = f"/tmp/factory-scp-{os.getpid()}-{time.monotonic_ns()}"
    comm.run(f"mkdir -p {path}")
    yield path
    comm.run(f"rm -rf {path}")


def test_sftp_is_really_absent_so_the_default_method_fails(scp_only: SshServer) -> None:
    with connect(scp_only.settings()) as c, pytest.raises(FactoryError, match="refused SFTP"):
        c.upload(b"x", "/tmp/never")


def test_upload_bytes_and_files_with_modes(comm: Communicator, remote: str, tmp_path: Path) -> None:
    comm.upload(b"from bytes\n", f"{remote}/b.txt")
    script = tmp_path / "s.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o750)
    comm.upload(script, f"{remote}/s.sh")
    comm.upload(b"secret\n", f"{remote}/key", mode=0o600)
    comm.upload(b"again\n", f"{remote}/key", mode=0o640)  # overwrite: content and mode change
    lines: list[str] = []
    assert comm.run(f"cat {remote}/b.txt; {remote}/s.sh; stat -c %a {remote}/s.sh {remote}/key {remote}/b.txt; "
                    f"cat {remote}/key", on_line=lines.append) == 0
    assert lines == ["from bytes", "hi", "750", "640", "644", "again"]


def test_binary_round_trip_of_a_large_file(comm: Communicator, remote: str, tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    (tmp_path / "big").write_bytes(data)
    comm.upload(tmp_path / "big", f"{remote}/big")
    comm.download(f"{remote}/big", tmp_path / "back" / "big")
    assert (tmp_path / "back" / "big").read_bytes() == data


def test_directories_both_ways(comm: Communicator, remote: str, tmp_path: Path) -> None:
    src = tmp_path / "tree"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / "a.txt").write_text("a")
    (src / "sub" / "b.txt").write_text("b")
    (src / "sub" / "deeper" / "c.bin").write_bytes(bytes(range(256)))
    (src / "sub" / "deeper" / "c.bin").chmod(0o700)
    comm.upload_dir(src, f"{remote}/x/y")  # created with its parents
    assert comm.remote_isdir(f"{remote}/x/y/sub") and not comm.remote_isdir(f"{remote}/x/y/a.txt")
    lines: list[str] = []
    comm.run(f"cd {remote}/x/y && find . -type f | sort", on_line=lines.append)
    assert lines == ["./a.txt", "./sub/b.txt", "./sub/deeper/c.bin"]
    comm.download(f"{remote}/x/y", tmp_path / "back")
    assert (tmp_path / "back" / "sub" / "deeper" / "c.bin").read_bytes() == bytes(range(256))
    assert (tmp_path / "back" / "sub" / "deeper" / "c.bin").stat().st_mode & 0o777 == 0o700
    assert (tmp_path / "back" / "a.txt").read_text() == "a"


def test_errors_name_the_path(comm: Communicator, tmp_path: Path) -> None:
    with pytest.raises(FactoryError, match="cannot upload to /nonexistent-dir/x on the guest"):
        comm.upload(b"x", "/nonexistent-dir/x")
    with pytest.raises(FactoryError, match=r"cannot download /nonexistent-file on the guest: .*No such file"):
        comm.download("/nonexistent-file", tmp_path / "nope")
    assert not (tmp_path / "nope").exists()
    assert comm.run("true") == 0  # the session is still usable


def test_a_guest_that_stops_answering_mid_transfer_is_a_clear_error(scp_only: SshServer, tmp_path: Path) -> None:
    pids: list[str] = []
    with connect(scp_only.settings(file_transfer="scp", read_write_timeout=1.5)) as c:
        assert c.run("echo $PPID", on_line=pids.append) == 0
        os.kill(int(pids[0]), signal.SIGSTOP)  # the session's sshd freezes, as a guest that vanished
        try:
            start = time.monotonic()
            with pytest.raises(FactoryError, match="cannot upload to /tmp/x on the guest: the connection failed"):
                c.upload(os.urandom(4 << 20), "/tmp/x")
            assert time.monotonic() - start < 8
        finally:
            os.kill(int(pids[0]), signal.SIGKILL)
