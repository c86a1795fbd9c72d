"""`manifest`: Packer's packer-manifest.json, appended to across runs under a lock."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from factory.artifact.model import Artifact
from factory.errors import FactoryError
from factory.fsutil import atomic_path, file_lock
from factory.paths import host_lock_dir
from factory.post.base import PostContext, PostProcessor, Result, resolve


def build_entry(config: Any, artifact: Artifact, ctx: PostContext) -> dict[str, Any]:
    """One element of builds[], with Packer's field names and order (build_time omitted under strip_time)."""
    files = []
    for f in artifact.files:
        size = f.stat().st_size if f.exists() else 0
        files.append({"name": f.name if config.strip_path else _shown(f, ctx.root), "size": size})
    entry: dict[str, Any] = {"name": ctx.source_name, "builder_type": ctx.source_type}
    if not config.strip_time:
        entry["build_time"] = int(time.time())
    entry |= {"files": files, "artifact_id": artifact.artifact_id, "packer_run_uuid": ctx.run_uuid,
              "custom_data": dict(config.custom_data) or None}
    return entry


def _shown(path: Path, root: Path) -> str:
    """Packer records paths as the template gave them, e.g. output-qemu/disk: relative to where factory runs."""
    try:
        return str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _read(path: Path) -> dict[str, Any]:
    if not path.exists() or path.stat().st_size == 0:
        return {"builds": [], "last_run_uuid": ""}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise FactoryError(f"manifest {path} is not valid JSON (line {exc.lineno}): {exc.msg}",
                           hint="fix or delete it; factory appends builds to an existing manifest") from None
    if not isinstance(data, dict) or not isinstance(data.get("builds", []), list):
        raise FactoryError(f"manifest {path} is not a Packer manifest (no builds list)",
                           hint="point `output` at another file or delete this one")
    return data


def _lock_path(out: Path) -> Path:
    """The manifest's lock, keyed by its real path in the host-wide lock folder: concurrent builds writing the same
    manifest serialise whatever their user or cache dir, without a stray `.lock` beside the user's files."""
    key = hashlib.sha256(str(out.resolve()).encode()).hexdigest()[:24]
    return host_lock_dir("manifests") / f"{key}.lock"


class Manifest(PostProcessor, type="manifest"):
    def process(self, config: Any, artifact: Artifact, ctx: PostContext) -> Result:
        out = resolve(config.output, ctx)
        with file_lock(_lock_path(out)):
            data = _read(out)
            # Packer: with -force, a manifest from another run is started afresh; otherwise builds accumulate.
            if ctx.force and data.get("last_run_uuid") != ctx.run_uuid:
                data = {"builds": []}
            data["builds"] = [*data.get("builds", []), build_entry(config, artifact, ctx)]
            data["last_run_uuid"] = ctx.run_uuid
            with atomic_path(out) as tmp:
                tmp.write_text(json.dumps(data, indent=2) + "\n")
        ctx.emit(f"Recorded {len(artifact.files)} file(s) in {out}")
        return Result(artifact, keep_input=True, force_keep=True)
