"""File transfer for the communicator: bytes or files up, files or trees both ways, over SFTP (default) or SCP
(ssh_file_transfer_method; factory.comm.scp)."""

from __future__ import annotations

import io
import os
import posixpath
import stat
from pathlib import Path

import paramiko

from factory.comm import close_quietly
from factory.comm.scp import Scp
from factory.errors import FactoryError
from factory.fsutil import atomic_path


class Transfer:
    """File side of the communicator; subclasses provide the live transport. method: "sftp" or "scp"."""

    def __init__(self, method: str = "sftp", timeout: float | None = None) -> None:
        self._sftp: paramiko.SFTPClient | None = None
        self._sftp_of: paramiko.Transport | None = None
        self._timeout = timeout  # no reply within this long is an error (ssh_read_write_timeout)
        self._scp = Scp(self._sftp_transport, timeout) if method == "scp" else None

    def _sftp_transport(self) -> paramiko.Transport:
        raise NotImplementedError

    @property
    def sftp(self) -> paramiko.SFTPClient:
        transport = self._sftp_transport()
        if self._sftp is None or self._sftp_of is not transport:
            try:
                self._sftp = paramiko.SFTPClient.from_transport(transport)
            except EOFError:
                raise FactoryError("the SSH connection closed while the SFTP session started",
                                   hint="the guest's sshd went away (rebooting, or out of resources?); "
                                        "the serial log shows what the guest did") from None
            except paramiko.SSHException as exc:
                raise FactoryError(f"the guest's sshd refused SFTP: {exc}",
                                   hint="enable the sftp subsystem in sshd_config "
                                        "(Subsystem sftp /usr/lib/openssh/sftp-server)") from None
            self._sftp_of = transport
            if self._timeout:
                self._sftp.get_channel().settimeout(self._timeout)  # type: ignore[union-attr]
        assert self._sftp is not None
        return self._sftp

    def _drop_sftp(self) -> None:
        sftp, self._sftp, self._sftp_of = self._sftp, None, None
        if sftp is not None:
            close_quietly(sftp)

    def upload(self, src: Path | bytes, dest: str, *, mode: int | None = None) -> None:
        """Write bytes or a local file to the remote path dest (overwritten); a file keeps its permission bits."""
        if self._scp is not None:
            return self._scp.upload(src, dest, mode)
        with _remote_errors("upload to", dest):
            if isinstance(src, bytes):
                self.sftp.putfo(io.BytesIO(src), dest, file_size=len(src))
            else:
                self.sftp.put(os.fspath(src), dest)
                mode = stat.S_IMODE(src.stat().st_mode) if mode is None else mode
            if mode is not None:
                self.sftp.chmod(dest, mode)

    def upload_dir(self, src: Path, dest: str) -> None:
        """Copy the contents of the local directory src into the remote directory dest (created if missing)."""
        if self._scp is not None:
            return self._scp.upload_dir(src, dest)
        self.mkdirs(dest)
        for entry in sorted(src.iterdir()):
            target = posixpath.join(dest, entry.name)
            if entry.is_dir() and not entry.is_symlink():
                self.upload_dir(entry, target)
            elif entry.is_file():
                self.upload(entry, target)

    def mkdirs(self, path: str) -> None:
        """mkdir -p on the guest."""
        if self._scp is not None:
            return self._scp.mkdirs(path)
        parts = [p for p in path.split("/") if p]
        current = "/" if path.startswith("/") else ""
        for part in parts:
            current = posixpath.join(current, part) if current else part
            if self.remote_isdir(current):
                continue
            with _remote_errors("create directory", current):
                self.sftp.mkdir(current)

    def remote_isdir(self, path: str) -> bool:
        if self._scp is not None:
            return self._scp.remote_isdir(path)
        try:
            return stat.S_ISDIR(self.sftp.stat(path).st_mode or 0)
        except OSError:
            return False

    def download(self, src: str, dest: Path) -> None:
        """Copy a remote file (written atomically) or a remote directory's contents to the local path dest."""
        if self._scp is not None:
            return self._scp.download(src, dest)
        with _remote_errors("download", src):
            attrs = self.sftp.stat(src)
        if stat.S_ISDIR(attrs.st_mode or 0):
            self._download_dir(src, dest)
            return
        with atomic_path(dest) as tmp, _remote_errors("download", src):
            self.sftp.get(src, os.fspath(tmp))
            tmp.chmod(stat.S_IMODE(attrs.st_mode or 0o644))

    def _download_dir(self, src: str, dest: Path) -> None:
        dest.mkdir(parents=True, exist_ok=True)
        with _remote_errors("list", src):
            entries = self.sftp.listdir_attr(src)
        for entry in sorted(entries, key=lambda e: e.filename):
            remote = posixpath.join(src, entry.filename)
            if stat.S_ISDIR(entry.st_mode or 0):
                self._download_dir(remote, dest / entry.filename)
            elif stat.S_ISREG(entry.st_mode or 0):
                self.download(remote, dest / entry.filename)


class _remote_errors:
    """Turn SFTP's IOErrors into a FactoryError naming the remote path."""

    def __init__(self, verb: str, path: str) -> None:
        self.verb, self.path = verb, path

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, EOFError):
            raise FactoryError(f"cannot {self.verb} {self.path} on the guest: the SSH connection closed",
                               hint="the guest's sshd went away (rebooting, or out of resources?); the serial "
                                    "log shows what the guest did") from None
        if isinstance(exc, OSError) and not isinstance(exc, ConnectionError):
            reason = exc.strerror or str(exc) or type(exc).__name__
            hint = ("the parent directory must exist and be writable by the SSH user"
                    if isinstance(exc, FileNotFoundError | PermissionError) else None)
            raise FactoryError(f"cannot {self.verb} {self.path} on the guest: {reason}", hint=hint) from None
