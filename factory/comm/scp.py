"""File transfer with the SCP protocol (`scp -t` / `scp -f` over an exec channel), for guests whose sshd has
no SFTP subsystem (ssh_file_transfer_method = "scp"). Same operations and errors as the SFTP side."""

from __future__ import annotations

import os
import posixpath
import shlex
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import paramiko

from factory.comm import close_quietly
from factory.errors import FactoryError
from factory.fsutil import atomic_path

CHUNK = 65536


class ScpError(Exception):
    """The remote scp reported an error (its \\x01/\\x02 message) or spoke out of protocol."""


class _Stream:
    """One `scp -t`/`scp -f` exec channel: send records, read acks and lines."""

    def __init__(self, chan: paramiko.Channel) -> None:
        self.chan = chan

    def send(self, data: bytes) -> None:
        self.chan.sendall(data)

    def read_exact(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            got = self.chan.recv(min(CHUNK, n - len(out)))
            if not got:
                raise ScpError(self._stderr() or "the connection closed in the middle of a transfer")
            out += got
        return bytes(out)

    def read_line(self) -> bytes:
        line = bytearray()
        while not line.endswith(b"\n"):
            got = self.chan.recv(1)
            if not got:
                raise ScpError(self._stderr() or "the remote scp ended early")
            line += got
        return bytes(line)

    def ack(self) -> None:
        """Wait for the remote's OK (a zero byte); its error message otherwise."""
        code = self.read_exact(1)
        if code != b"\0":
            message = self.read_line().decode(errors="replace").strip()
            raise ScpError(message.removeprefix("scp: ") or f"protocol error (got {code!r})")

    def _stderr(self) -> str:
        if self.chan.recv_stderr_ready():
            return self.chan.recv_stderr(CHUNK).decode(errors="replace").strip().removeprefix("scp: ")
        return ""


class Scp:
    """SCP transfers over the transport given by transport_of() (reconnecting as the communicator does)."""

    def __init__(self, transport_of: Callable[[], paramiko.Transport], timeout: float | None = None) -> None:
        self.transport_of, self.timeout = transport_of, timeout

    @contextmanager
    def _session(self, command: str, verb: str, path: str) -> Iterator[_Stream]:
        """An `scp -t`/`scp -f` channel; protocol and connection failures become one error naming the path."""
        chan: paramiko.Channel | None = None
        try:
            chan = self.transport_of().open_session(timeout=min(30.0, self.timeout or 30.0))
            chan.settimeout(self.timeout)
            chan.exec_command(command)
            yield _Stream(chan)
            chan.shutdown_write()
            chan.status_event.wait(30)
        except ScpError as exc:
            raise FactoryError(f"cannot {verb} {path} on the guest: {exc}",
                               hint="the parent directory must exist and be writable by the SSH user; "
                                    "scp must be installed on the guest") from None
        except (OSError, EOFError, paramiko.SSHException) as exc:  # silent past ssh_read_write_timeout, or gone
            raise FactoryError(f"cannot {verb} {path} on the guest: the connection failed during the transfer: "
                               f"{exc or type(exc).__name__}",
                               hint="the guest stopped answering (ssh_read_write_timeout) or went away") from None
        finally:
            if chan is not None:
                close_quietly(chan)

    def _exec(self, command: str) -> int:
        chan = self.transport_of().open_session(timeout=30)
        try:
            chan.exec_command(command)
            chan.status_event.wait(self.timeout or 60)
            return int(chan.exit_status)
        finally:
            close_quietly(chan)

    # -- the Transfer operations --------------------------------------------------------------------------------
    def upload(self, src: Path | bytes, dest: str, mode: int | None) -> None:
        # The target is the file itself: given its parent instead, scp would write the parent when it is missing.
        name = posixpath.basename(dest) or "file"
        with self._session(f"scp -p -t -- {shlex.quote(dest)}", "upload to", dest) as s:
            s.ack()
            if isinstance(src, bytes):
                self._send_file(s, name, src, 0o644 if mode is None else mode, int(time.time()))
            else:
                info = src.stat()
                self._send_file(s, name, src, stat.S_IMODE(info.st_mode) if mode is None else mode,
                                int(info.st_mtime))

    def upload_dir(self, src: Path, dest: str) -> None:
        self.mkdirs(dest)
        with self._session(f"scp -r -p -t -- {shlex.quote(dest)}", "upload to", dest) as s:
            s.ack()
            self._send_tree(s, src)

    def _send_tree(self, s: _Stream, directory: Path) -> None:
        for entry in sorted(directory.iterdir()):
            info = entry.stat()
            if entry.is_dir() and not entry.is_symlink():
                s.send(f"T{int(info.st_mtime)} 0 {int(info.st_atime)} 0\n".encode())
                s.ack()
                s.send(f"D{stat.S_IMODE(info.st_mode):04o} 0 {entry.name}\n".encode())
                s.ack()
                self._send_tree(s, entry)
                s.send(b"E\n")
                s.ack()
            elif entry.is_file():
                self._send_file(s, entry.name, entry, stat.S_IMODE(info.st_mode), int(info.st_mtime))

    def _send_file(self, s: _Stream, name: str, src: Path | bytes, mode: int, mtime: int) -> None:
        if "\n" in name:
            raise ScpError(f"a file name with a newline cannot be sent over scp: {name!r}")
        size = len(src) if isinstance(src, bytes) else src.stat().st_size
        s.send(f"T{mtime} 0 {mtime} 0\n".encode())
        s.ack()
        s.send(f"C{mode:04o} {size} {name}\n".encode())
        s.ack()
        if isinstance(src, bytes):
            s.send(src)
        else:
            with open(src, "rb") as fh:
                while chunk := fh.read(CHUNK):
                    s.send(chunk)
        s.send(b"\0")
        s.ack()

    def mkdirs(self, path: str) -> None:
        if self._exec(f"mkdir -p -- {shlex.quote(path)}") != 0:
            raise FactoryError(f"cannot create directory {path} on the guest",
                               hint="the parent directory must exist and be writable by the SSH user")

    def remote_isdir(self, path: str) -> bool:
        return self._exec(f"test -d {shlex.quote(path)}") == 0

    def download(self, src: str, dest: Path) -> None:
        """A remote file to the local path dest (atomically), or a remote directory's contents into dest."""
        is_dir = self.remote_isdir(src)
        flags = "-r -p -f" if is_dir else "-p -f"
        with self._session(f"scp {flags} -- {shlex.quote(src)}", "download", src) as s:
            s.send(b"\0")
            if is_dir:
                self._receive_tree(s, dest)
            else:
                self._receive_one(s, dest)

    def _record(self, s: _Stream) -> tuple[str, int, int, str]:
        """The next C/D/E record (T records are acknowledged and skipped): kind, mode, size, name."""
        while True:
            line = s.read_line()
            kind = line[:1]
            if kind in (b"\x01", b"\x02"):
                raise ScpError(line[1:].decode(errors="replace").strip().removeprefix("scp: "))
            if kind == b"T":
                s.send(b"\0")
                continue
            if kind == b"E":
                s.send(b"\0")
                return "E", 0, 0, ""
            try:
                mode_text, size_text, name = line[1:].decode().rstrip("\n").split(" ", 2)
                mode, size = int(mode_text, 8), int(size_text)
            except ValueError:
                raise ScpError(f"unexpected scp record {line[:80]!r}") from None
            if kind not in (b"C", b"D") or "/" in name or name in ("", ".", "..") or size < 0:
                raise ScpError(f"unexpected scp record {line[:80]!r}")
            s.send(b"\0")
            return kind.decode(), mode, size, name

    def _receive_one(self, s: _Stream, dest: Path) -> None:
        kind, mode, size, _ = self._record(s)
        if kind != "C":
            raise ScpError("expected a file")
        self._receive_data(s, dest, mode, size)

    def _receive_data(self, s: _Stream, dest: Path, mode: int, size: int) -> None:
        with atomic_path(dest) as tmp:
            with open(tmp, "wb") as fh:
                left = size
                while left:
                    chunk = s.read_exact(min(CHUNK, left))
                    fh.write(chunk)
                    left -= len(chunk)
            s.ack()
            os.chmod(tmp, mode & 0o7777)
        s.send(b"\0")

    def _receive_tree(self, s: _Stream, dest: Path) -> None:
        kind, _, _, _ = self._record(s)  # the top directory itself: its contents go into dest
        if kind != "D":
            raise ScpError("expected a directory")
        stack = [dest]
        dest.mkdir(parents=True, exist_ok=True)
        while stack:
            kind, mode, size, name = self._record(s)
            if kind == "E":
                stack.pop()
            elif kind == "D":
                stack.append(stack[-1] / name)
                stack[-1].mkdir(parents=True, exist_ok=True)
            else:
                self._receive_data(s, stack[-1] / name, mode, size)
