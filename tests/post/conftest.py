"""Fixtures for post-processor tests: a build's artifact (a real small qcow2) and templates loaded by H3a's loader."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from factory.artifact.model import Artifact, DiskFormat, Hardware
from factory.post import PostContext
from factory.template import load
from factory.template.model import PostProcessorSpec

SOURCE = '''
source "qemu" "cloud" {
  iso_url      = "disk.qcow2"
  iso_checksum = "none"
  disk_image   = true
  ssh_username = "root"
}
'''


@pytest.fixture
def artifact(tmp_path: Path) -> Artifact:
    """What the qemu builder hands over: output-cloud/cloud.qcow2 holding 3 MiB of data in a 256 MiB disk."""
    out = tmp_path / "output-cloud"
    out.mkdir()
    disk = out / "cloud.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "256M"], check=True)
    subprocess.run(["qemu-io", "-c", "write -P 0x42 1M 2M", "-c", "write -P 0x17 200M 1M", str(disk)], check=True,
                   capture_output=True)
    return Artifact("factory.qemu", "debian.qemu.cloud", "qemu", (disk,), disk=disk, disk_format=DiskFormat.QCOW2,
                    hardware=Hardware(cpus=1, memory_mb=512), vm_name="cloud")


@pytest.fixture
def ctx(tmp_path: Path) -> PostContext:
    lines: list[str] = []
    return PostContext("debian", "qemu", "cloud", "run-1", emit=lines.append, root=tmp_path)


@pytest.fixture
def chains(tmp_path: Path) -> Callable[[str], list[list[PostProcessorSpec]]]:
    """chains(build_body): the post-processor chains of a real template with that build body."""

    def parse(body: str) -> list[list[PostProcessorSpec]]:
        path = tmp_path / "t.pkr.hcl"
        path.write_text(SOURCE + 'build {\n  sources = ["source.qemu.cloud"]\n' + body + "\n}\n")
        return load(path).builds[0].post_processors

    return parse
