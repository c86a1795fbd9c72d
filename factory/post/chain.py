"""Running post-processor chains with Packer's keep_input_artifact semantics (packer/build.go).

For each chain the artifact flows from one post-processor to the next. Whether an input survives:
the template's keep_input_artifact if set (unless the post-processor forces keeping), else the
post-processor's default. The build's own artifact is kept if any chain's FIRST post-processor keeps it;
every chain's final artifact is kept. Unlike Packer, nothing is deleted until all chains have run, and a file
that a kept artifact still lists is never deleted.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from factory.artifact.model import Artifact
from factory.errors import FactoryError, Location
from factory.options import suggest
from factory.post.base import PostContext, PostProcessor


class SpecLike(Protocol):
    """factory.template.model.PostProcessorSpec, as far as running it goes (read-only: the spec is frozen)."""

    @property
    def type(self) -> str: ...
    @property
    def config(self) -> Any: ...
    @property
    def keep_input_artifact(self) -> bool | None: ...
    @property
    def where(self) -> Location: ...

    def applies_to(self, full_name: str) -> bool: ...


def _implementation(spec: SpecLike) -> PostProcessor:
    cls = PostProcessor.registry.get(spec.type)
    if cls is None:
        near = suggest(spec.type, PostProcessor.registry)
        raise FactoryError(f"post-processor {spec.type!r} is not supported", where=spec.where,
                           hint=(f"did you mean {near!r}? " if near else "") + "known: "
                           + ", ".join(sorted(PostProcessor.registry)))
    return cls()


def run_chains(chains: Sequence[Sequence[SpecLike]], artifact: Artifact, ctx: PostContext) -> list[Artifact]:
    """Run every chain on the build's artifact; return the artifacts that remain (Packer's order)."""
    selected = [[s for s in chain if s.applies_to(ctx.full_name)] for chain in chains]
    selected = [chain for chain in selected if chain]
    if not selected:
        return [artifact]
    kept: list[Artifact] = []
    doomed: list[Artifact] = []
    keep_original = False
    for chain in selected:
        prior = artifact
        for i, spec in enumerate(chain):
            impl = _implementation(spec)
            ctx.emit(f"Running post-processor: {spec.type}")
            try:
                result = impl.process(spec.config, prior, ctx)
            except FactoryError as exc:
                if exc.where is None:
                    exc.where = spec.where
                raise
            keep = result.keep_input
            if spec.keep_input_artifact is not None:
                if result.keep_input and result.force_keep and not spec.keep_input_artifact:
                    ctx.emit(f"The {spec.type} post-processor keeps its input artifact regardless of "
                             "keep_input_artifact = false")
                else:
                    keep = spec.keep_input_artifact
            if i == 0:
                keep_original = keep_original or keep
            elif keep:
                kept.append(prior)
            else:
                doomed.append(prior)
            prior = result.artifact
        kept.append(prior)
    (kept if keep_original else doomed).append(artifact)
    _destroy(doomed, kept, ctx)
    out: list[Artifact] = []
    for a in kept:
        if not any(a is b for b in out):
            out.append(a)
    return out


def _destroy(doomed: list[Artifact], kept: list[Artifact], ctx: PostContext) -> None:
    """Delete the files of artifacts nobody keeps (Packer's Artifact.Destroy), sparing files still listed."""
    keep = {_key(f) for a in kept for f in a.files}
    for artifact in doomed:
        if any(artifact is k for k in kept):
            continue
        for f in artifact.files:
            if _key(f) in keep or not f.exists():
                continue
            ctx.emit(f"Deleting input artifact file {f}")
            if f.is_dir():
                shutil.rmtree(f)
            else:
                f.unlink()


def _key(path: Path) -> Path:
    return path.resolve()
