"""manifest: Packer's packer-manifest.json layout, appending across runs, -force, and concurrent writers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from factory.artifact.model import Artifact
from factory.errors import FactoryError
from factory.post import PostContext
from factory.post.manifest import Manifest
from factory.schema.post_processors import ManifestPostProcessor


def test_packer_layout(artifact: Artifact, ctx: PostContext) -> None:
    cfg = ManifestPostProcessor(custom_data={"os": "debian"})
    Manifest().process(cfg, artifact, ctx)
    data = json.loads((ctx.root / "packer-manifest.json").read_text())
    assert list(data) == ["builds", "last_run_uuid"] and data["last_run_uuid"] == "run-1"
    build = data["builds"][0]
    assert list(build) == ["name", "builder_type", "build_time", "files", "artifact_id", "packer_run_uuid",
                           "custom_data"]
    assert build["name"] == "cloud" and build["builder_type"] == "qemu" and build["artifact_id"] == "VM"
    assert build["files"] == [{"name": "output-cloud/cloud.qcow2", "size": artifact.files[0].stat().st_size}]
    assert build["custom_data"] == {"os": "debian"} and isinstance(build["build_time"], int)
    # Nothing but the manifest appears beside it (no stray lock file in the user's directory).
    assert [p.name for p in ctx.root.iterdir() if p.is_file()] == ["packer-manifest.json"]


def test_strip_path_strip_time_and_append_then_force(artifact: Artifact, ctx: PostContext) -> None:
    cfg = ManifestPostProcessor(output="out/m.json", strip_path=True, strip_time=True)
    Manifest().process(cfg, artifact, ctx)
    Manifest().process(cfg, artifact, replace(ctx, run_uuid="run-2"))
    path = ctx.root / "out" / "m.json"
    data = json.loads(path.read_text())
    assert [b["packer_run_uuid"] for b in data["builds"]] == ["run-1", "run-2"]
    assert data["builds"][0]["files"][0]["name"] == "cloud.qcow2" and "build_time" not in data["builds"][0]
    assert data["builds"][0]["custom_data"] is None
    # -force in the same run keeps appending; -force in a new run starts the file afresh (Packer's rule).
    Manifest().process(cfg, artifact, replace(ctx, run_uuid="run-2", force=True))
    assert len(json.loads(path.read_text())["builds"]) == 3
    Manifest().process(cfg, artifact, replace(ctx, run_uuid="run-3", force=True))
    assert [b["packer_run_uuid"] for b in json.loads(path.read_text())["builds"]] == ["run-3"]


def test_concurrent_builds_all_land(artifact: Artifact, ctx: PostContext) -> None:
    cfg = ManifestPostProcessor()
    threads = [threading.Thread(target=Manifest().process, args=(cfg, artifact, replace(ctx, source_name=f"b{i}")))
               for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    data = json.loads((ctx.root / "packer-manifest.json").read_text())
    assert sorted(b["name"] for b in data["builds"]) == [f"b{i}" for i in range(8)]


def test_a_writer_with_another_cache_dir_waits_for_the_same_lock(artifact: Artifact, ctx: PostContext,
                                                                 tmp_path: Path) -> None:
    """The lock is the host's, keyed by the manifest's path: a build with another FACTORY_CACHE_DIR and runtime dir
    (another CI job, another user) holding it makes this one wait, so neither loses the other's entry."""
    out = ctx.root / "packer-manifest.json"
    code = ("import sys; from pathlib import Path; from factory.fsutil import file_lock; "
            "from factory.post.manifest import _lock_path\n"
            "with file_lock(_lock_path(Path(sys.argv[1]))):\n print('held', flush=True); sys.stdin.readline()")
    env = {**os.environ, "FACTORY_CACHE_DIR": str(tmp_path / "other-cache"), "XDG_RUNTIME_DIR": str(tmp_path / "run")}
    holder = subprocess.Popen([sys.executable, "-c", code, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, env=env)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        writer = threading.Thread(target=Manifest().process, args=(ManifestPostProcessor(), artifact, ctx))
        writer.start()
        writer.join(1.0)
        assert writer.is_alive() and not out.exists()  # waiting for the other build's lock
    finally:
        holder.communicate("\n", timeout=30)
    writer.join(30)
    assert [b["name"] for b in json.loads(out.read_text())["builds"]] == ["cloud"]


def test_corrupt_manifest_is_a_clear_error(artifact: Artifact, ctx: PostContext, tmp_path: Path) -> None:
    (tmp_path / "packer-manifest.json").write_text("{not json")
    with pytest.raises(FactoryError, match="not valid JSON"):
        Manifest().process(ManifestPostProcessor(), artifact, ctx)
