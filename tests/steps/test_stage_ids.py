"""Stage IDs are content hashes chained through the parent: a changed input renames its stage and every later
one, never an earlier one. Computed from a real template's real step list (nothing is run)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from factory.build import EventBus, stage_chain
from factory.steps.plan import BuildOptions, context_for, steps_for
from factory.template import load

TEMPLATE = """
source "qemu" "web" {
  iso_url          = "base.qcow2"
  iso_checksum     = "none"
  disk_image       = true
  ssh_username     = "u"
  ssh_password     = "pw"
  cpus             = CPUS
  output_directory = "out"
  cd_files         = ["seed/*"]
  cd_label         = "cidata"
}

build {
  sources = ["source.qemu.web"]
  provisioner "shell" {
    script = "setup.sh"
  }
  provisioner "file" {
    source      = "files/"
    destination = "/etc/app/"
  }
}
"""


@pytest.fixture(autouse=True)
def _keep_cwd() -> Iterator[None]:
    cwd = os.getcwd()
    yield
    os.chdir(cwd)


def _project(root: Path, cpus: int = 2) -> Path:
    (root / "seed").mkdir(exist_ok=True)
    (root / "seed" / "user-data").write_text("#cloud-config\n")
    (root / "seed" / "meta-data").write_text("instance-id: web\n")
    (root / "files").mkdir(exist_ok=True)
    (root / "files" / "app.conf").write_text("port = 80\n")
    (root / "base.qcow2").write_bytes(b"QFI\xfb" + b"\0" * 508)
    (root / "setup.sh").write_text("#!/bin/sh\necho hello\n")
    template = root / "web.pkr.hcl"
    template.write_text(TEMPLATE.replace("CPUS", str(cpus)))
    return template


def _ids(template: Path) -> dict[str, str]:
    os.chdir(template.parent)  # relative paths in a template resolve against the current directory, as in Packer
    project = load(template)
    (build,) = project.builds
    (source,) = build.sources
    ctx = context_for(build, source, template.parent, EventBus(), BuildOptions())
    return stage_chain(steps_for(ctx), ctx)


def _changed(before: dict[str, str], after: dict[str, str]) -> list[str]:
    assert list(before) == list(after)
    return [name for name in before if before[name] != after[name]]


# clear-authorized-keys runs only with an ephemeral key; this template logs in with a password.
ORDER = ["output", "accelerator", "media", "disk", "ssh-key", "seed", "console", "boot", "connect", "provision-1",
         "provision-2", "shutdown", "compact", "finalize"]


def test_one_byte_of_a_script_renames_its_stage_and_every_later_one_only(tmp_path: Path) -> None:
    template = _project(tmp_path)
    first = _ids(template)
    assert list(first) == ORDER, list(first)
    assert _ids(template) == first  # deterministic
    script = tmp_path / "setup.sh"
    script.write_text(script.read_text().replace("hello", "hellO"))
    changed = _changed(first, _ids(template))
    assert changed == list(first)[list(first).index("provision-1"):]


def test_ids_follow_content_not_times_or_places(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    template = _project(tmp_path / "a")
    first = _ids(template)
    os.utime(tmp_path / "a" / "setup.sh", (1, 1))   # a new mtime, same content
    os.utime(tmp_path / "a" / "files" / "app.conf", (2, 2))
    assert _ids(template) == first
    # An uploaded file's content is an input of the provision stage too.
    (tmp_path / "a" / "files" / "app.conf").write_text("port = 81\n")
    changed = _changed(first, _ids(template))
    assert changed[0] == "provision-2"
    # A copy of the project in another folder (another output directory) has the same IDs: content, not places.
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    (tmp_path / "b" / "files" / "app.conf").write_text("port = 80\n")
    elsewhere = _ids(tmp_path / "b" / "web.pkr.hcl")
    assert _changed(first, elsewhere) == ["finalize"]


def test_a_source_option_renames_the_stages_from_the_one_that_uses_it(tmp_path: Path) -> None:
    first = _ids(_project(tmp_path, cpus=2))
    changed = _changed(first, _ids(_project(tmp_path, cpus=4)))
    assert changed == list(first)[list(first).index("boot"):]
    # A seed file is read by the seed stage: it and everything after change, the disk before it does not.
    template = _project(tmp_path, cpus=2)
    (tmp_path / "seed" / "meta-data").write_text("instance-id: web2\n")
    changed = _changed(first, _ids(template))
    assert changed == list(first)[list(first).index("seed"):]


def test_the_cpu_a_guest_gets_by_default_is_part_of_the_boot_stage(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """A saved VM state only loads into the CPU it was saved on: a factory whose default -cpu differs (another
    release, another accelerator) must not resume a checkpoint made under the old one."""
    from factory.machine import qemu

    template = _project(tmp_path)
    first = _ids(template)
    monkeypatch.setattr(qemu, "TCG_CPU", "max")
    changed = _changed(first, _ids(template))
    assert changed == list(first)[list(first).index("boot"):]
    # An explicit cpu_model is the CPU whatever the default: only the option itself counts.
    template.write_text(template.read_text().replace('cpus             = 2', 'cpus = 2\n  cpu_model = "qemu64"'))
    pinned = _ids(template)
    monkeypatch.setattr(qemu, "TCG_CPU", "max,la57=off,svm=off")
    assert _ids(template) == pinned
