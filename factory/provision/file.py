"""The `file` provisioner: copy files and directories to or from the guest with Packer's path semantics.

A directory source without a trailing `/` is copied as a directory into destination (destination/name); with
a trailing `/` only its contents are. A file destination ending in `/` (or naming an existing directory)
receives the file under its own name.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Any

from factory.comm.ssh import Communicator
from factory.errors import FactoryError
from factory.provision.base import ProvisionContext, Provisioner, ProvisionerType
from factory.schema.provisioners import FileProvisioner

CONTENT_FILE = "pkr-file-content"  # Packer's file name for `content` sent to a directory


class File(Provisioner, kind=ProvisionerType.FILE):
    def provision(self, config: Any, comm: Communicator | None, ctx: ProvisionContext) -> None:
        assert isinstance(config, FileProvisioner) and comm is not None
        dest = config.destination
        if not dest:
            raise FactoryError("the file provisioner needs a destination")
        sources = [config.source] if config.source else list(config.sources)
        if config.direction == "download":
            if config.content is not None:
                raise FactoryError("file provisioner: content cannot be downloaded",
                                   hint='content only works with direction = "upload"')
            for src in sources:
                self._download(comm, src, dest, ctx, many=len(sources) > 1)
            return
        if config.content is not None:
            target = posixpath.join(dest, CONTENT_FILE) if _is_remote_dir(comm, dest) else dest
            ctx.emit(f"Uploading content to {target}")
            comm.upload(config.content.encode(), target)
            return
        if not sources:
            raise FactoryError("the file provisioner needs source, sources or content")
        if len(sources) > 1 and not dest.endswith("/"):
            raise FactoryError(f"file provisioner: with several sources the destination {dest!r} must be a "
                               "directory ending in /", hint=f'write destination = "{dest}/"')
        for src in sources:
            self._upload(comm, src, dest, ctx)

    def _upload(self, comm: Communicator, src: str, dest: str, ctx: ProvisionContext) -> None:
        local = ctx.local_path(src)
        if not local.exists():
            raise FactoryError(f"file provisioner: source {local} does not exist",
                               hint="paths are relative to the directory factory runs in")
        if local.is_dir():
            target = dest if src.endswith("/") else posixpath.join(dest, local.name)
            ctx.emit(f"Uploading directory {src} => {target}")
            comm.upload_dir(local, target)
            return
        target = posixpath.join(dest, local.name) if _is_remote_dir(comm, dest) else dest
        ctx.emit(f"Uploading {src} => {target}")
        comm.upload(local, target)

    def _download(self, comm: Communicator, src: str, dest: str, ctx: ProvisionContext, *, many: bool) -> None:
        local = ctx.local_path(dest)
        into_dir = dest.endswith("/") or local.is_dir() or many
        if comm.remote_isdir(src):
            target = local if src.endswith("/") else local / posixpath.basename(src.rstrip("/"))
            ctx.emit(f"Downloading directory {src} => {target}")
        else:
            target = local / posixpath.basename(src) if into_dir else local
            ctx.emit(f"Downloading {src} => {target}")
        comm.download(src, Path(target))


def _is_remote_dir(comm: Communicator, dest: str) -> bool:
    return dest.endswith("/") or comm.remote_isdir(dest)
