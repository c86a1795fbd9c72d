"""shell-local (the provisioner's runner, with the post-processor's context) and artifice, from templates."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from factory.artifact.model import Artifact
from factory.errors import FactoryError
from factory.post import PostContext, run_chains


def test_shell_local_then_artifice_then_compress(chains, artifact: Artifact, ctx: PostContext,  # type: ignore[no-untyped-def]
                                                 tmp_path: Path) -> None:
    body = '''
  post-processors {
    post-processor "shell-local" {
      inline = ["echo \\"$PACKER_BUILD_NAME $PACKER_BUILDER_TYPE\\" > ''' + str(tmp_path / "made.txt") + '''"]
    }
    post-processor "artifice" { files = ["made.txt"] }
    post-processor "compress" { output = "made.txt.gz" }
  }
'''
    out = run_chains(chains(body), artifact, ctx)
    # shell-local passes the build artifact on and keeps it (Packer), so it comes first and survives.
    assert [sorted(f.name for f in a.files) for a in out] == [["cloud.qcow2"], ["made.txt.gz"]]
    assert not (tmp_path / "made.txt").exists()       # artifice's files are compress's input, not kept
    assert gzip.decompress((tmp_path / "made.txt.gz").read_bytes()) == b"cloud qemu\n"


def test_shell_local_failure_stops_the_chain(chains, artifact: Artifact, ctx: PostContext) -> None:  # type: ignore[no-untyped-def]
    body = 'post-processor "shell-local" { inline = ["exit 3"] }'
    with pytest.raises(FactoryError):
        run_chains(chains(body), artifact, ctx)
    assert artifact.files[0].exists()


def test_artifice_missing_file(chains, artifact: Artifact, ctx: PostContext) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FactoryError, match="not found"):
        run_chains(chains('post-processor "artifice" { files = ["nope.bin"] }'), artifact, ctx)
