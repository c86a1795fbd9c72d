"""What every post-processor shares: its context, its result, the registry, and Packer's output templates."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from factory import ui
from factory.artifact.model import Artifact


@dataclass(frozen=True)
class PostContext:
    """The build a chain runs for. run_uuid is Packer's PACKER_RUN_UUID (one per `factory build`)."""

    build_name: str
    source_type: str
    source_name: str
    run_uuid: str
    force: bool = False
    emit: Callable[[str], None] = ui.info
    root: Path = field(default_factory=Path.cwd)          # relative outputs resolve here (Packer: the cwd)
    extra_env: Mapping[str, str] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return f"{self.source_type}.{self.source_name}"


@dataclass(frozen=True)
class Result:
    """A post-processor's output artifact and Packer's (keep, force_keep) pair for its input."""

    artifact: Artifact
    keep_input: bool            # the default when the template does not set keep_input_artifact
    force_keep: bool = False    # keep the input even if the template says false (e.g. manifest)


class PostProcessor:
    """Implementation of one post-processor type; subclasses register with `class X(PostProcessor, type="x")`."""

    registry: ClassVar[dict[str, type[PostProcessor]]] = {}
    type_name: ClassVar[str]

    def __init_subclass__(cls, type: str | None = None, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if type is not None:
            cls.type_name = type
            PostProcessor.registry[type] = cls

    def process(self, config: Any, artifact: Artifact, ctx: PostContext) -> Result:
        raise NotImplementedError


# Packer's `{{.Name}}` placeholders in output options: the same substitution the provisioners use.


def resolve(path: str, ctx: PostContext) -> Path:
    p = Path(os.path.expanduser(path))
    return p if p.is_absolute() else ctx.root / p
