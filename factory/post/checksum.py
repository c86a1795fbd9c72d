"""`checksum`: one file per algorithm, lines `<hex>\\t<basename>` as Packer writes them (appended)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from factory import events
from factory.artifact import digests
from factory.artifact.model import Artifact
from factory.errors import FactoryError
from factory.placeholders import expand
from factory.post.base import PostContext, PostProcessor, Result, resolve

TYPES = ("md5", "sha1", "sha224", "sha256", "sha384", "sha512")
_CHUNK = 1 << 20


def hash_files(files: list[Path], algorithms: list[str]) -> dict[Path, dict[str, str]]:
    """Every algorithm over every file, reading each file once; digests recorded while writing are reused."""
    out: dict[Path, dict[str, str]] = {}
    for f in files:
        known = {a: d for a in algorithms if (d := digests.known(f, a))}
        missing = [a for a in algorithms if a not in known]
        if missing:
            hashes = {a: hashlib.new(a) for a in missing}
            with open(f, "rb") as fh, events.progress(f"checksumming {f.name}", f.stat().st_size) as bar:
                while chunk := fh.read(_CHUNK):
                    for h in hashes.values():
                        h.update(chunk)
                    bar.advance(len(chunk))
            known |= {a: h.hexdigest() for a, h in hashes.items()}
        out[f] = known
    return out


class Checksum(PostProcessor, type="checksum"):
    def process(self, config: Any, artifact: Artifact, ctx: PostContext) -> Result:
        types = [t.lower() for t in config.checksum_types]
        for t in types:
            if t not in TYPES:
                raise FactoryError(f"checksum_types: unknown checksum type {t!r}", hint="use: " + ", ".join(TYPES))
        files = [f for f in artifact.files if f.is_file()]
        sums = hash_files(files, types)
        written: list[Path] = []
        for t in types:
            out = resolve(expand(config.output, {"BuildName": ctx.source_name, "BuilderType": ctx.source_type,
                                                 "ChecksumType": t}, "output"), ctx)
            out.parent.mkdir(parents=True, exist_ok=True)
            with open(out, "a") as fh:   # Packer appends, so several builds can share one file
                for f in files:
                    fh.write(f"{sums[f][t]}\t{f.name}\n")
            written.append(out)
        ctx.emit("Wrote " + ", ".join(str(w) for w in written))
        return Result(Artifact("packer.post-processor.checksum", artifact.build_name, artifact.builder_type,
                               tuple(written), artifact_id=artifact.artifact_id), keep_input=True)
