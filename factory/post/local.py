"""`shell-local` (the provisioner's runner, reused) and `artifice` (replace the artifact with files)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from factory.artifact.model import Artifact
from factory.errors import FactoryError
from factory.post.base import PostContext, PostProcessor, Result, resolve
from factory.provision.shell_local import run_local


class ShellLocal(PostProcessor, type="shell-local"):
    def process(self, config: Any, artifact: Artifact, ctx: PostContext) -> Result:
        run_local(config, ctx)
        return Result(artifact, keep_input=True)


class Artifice(PostProcessor, type="artifice"):
    def process(self, config: Any, artifact: Artifact, ctx: PostContext) -> Result:
        if not config.files:
            raise FactoryError("artifice: no files given", hint='e.g. files = ["output/app.tar.gz"]')
        files = tuple(resolve(f, ctx) for f in config.files)
        missing = [str(f) for f in files if not Path(f).exists()]
        if missing:
            raise FactoryError("artifice: file(s) not found: " + ", ".join(missing),
                               hint="artifice only names files; create them earlier (e.g. with shell-local)")
        ctx.emit("Using these artifact files: " + ", ".join(str(f) for f in files))
        return Result(Artifact("packer.post-processor.artifice", artifact.build_name, artifact.builder_type, files,
                               artifact_id=",".join(str(f) for f in files)), keep_input=True)
