"""Checkpoints and resume, through the code `factory build` runs (build_source), on the loopback driver: the
"guest" is a real sshd whose disk is a plain file that provisioners write into ($FACTORY_DISK), so what a
resumed build starts from is visible byte for byte. No VM boots (the QEMU side: tests/machine/test_checkpoint_vm.py).

Each kind of input is changed in turn (base image bytes, a VM option, a provisioner's config, an uploaded
file's content, a script's content, a variable) and the test proves that exactly the steps from the first one
that reads it run again, and that a resumed build's artifact equals a cold build's."""

from __future__ import annotations

import json
import os
import traceback
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.loopback import LoopbackDriver

from factory import checkpoints
from factory.build import Event, EventBus, EventKind
from factory.checkpoints import CheckpointMode
from factory.errors import FactoryError
from factory.steps.plan import BuildOptions, build_source
from factory.store import Store
from factory.template import load

USER = "root" if os.geteuid() == 0 else os.environ.get("USER", "root")
BASE = b"BASE" * 128
PROVISIONED = ["provision-1", "provision-2", "provision-3", "provision-4"]


def _write_at(offset: int, text: str) -> str:
    return f'printf "%s" "{text}" | dd of="$FACTORY_DISK" bs=1 seek={offset} conv=notrunc status=none'


TEMPLATE = """
variable "greeting" {{
  type    = string
  default = "hello"
}}
source "qemu" "cp" {{
  disk_image       = true
  iso_url          = "base.raw"
  iso_checksum     = "none"
  format           = "raw"
  disk_size        = "2M"
  memory           = {memory}
  vm_name          = "{name}"
  output_directory = "{root}/out"
  ssh_username     = "{user}"
  ssh_timeout      = "60s"
  shutdown_timeout = "30s"
  shutdown_command = "touch \\"$FACTORY_POWEROFF\\""
}}
build {{
  sources = ["source.qemu.cp"]
  provisioner "shell" {{
    inline = [{p1}]
  }}
  provisioner "file" {{
    source      = "{root}/{file_source}"
    destination = "{root}/{file_destination}"
    direction   = "{direction}"
  }}
  provisioner "shell" {{
    script = "{root}/step.sh"
  }}
  provisioner "shell" {{
    inline = [{p4}]
  }}
  post-processor "manifest" {{
    output = "{root}/out/manifest.json"
  }}
}}
"""


class Project:
    """A template and the files it reads; build() runs it and returns what happened."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.name = f"cp-{uuid.uuid4().hex[:8]}"
        self.memory = 512
        self.download = False
        self.p1 = _write_at(512, "ONE")
        self.p4 = _write_at(1536, "FOUR-${var.greeting}")
        (root / "base.raw").write_bytes(BASE + bytes(1024 * 1024 - len(BASE)))
        (root / "upload.txt").write_text("uploaded v1\n")
        (root / "step.sh").write_text("#!/bin/sh\n" + _write_at(1024, "THREE") + "\n")

    def build(self, *args: str, fail: bool = False, **opts: object) -> tuple[list[Event], bytes]:
        tpl = self.root / "t.pkr.hcl"
        tpl.write_text(TEMPLATE.format(root=self.root, name=self.name, user=USER, memory=self.memory,
                                       p1=json.dumps(self.p1), p4=json.dumps(self.p4),
                                       direction="download" if self.download else "upload",
                                       file_source="guest-file.txt" if self.download else "upload.txt",
                                       file_destination="downloaded.txt" if self.download else "guest-upload.txt"))
        project = load(tpl, vars=list(args))
        build = project.builds[0]
        bus, events = EventBus(), []
        bus.subscribe(events.append)
        options = BuildOptions(driver=LoopbackDriver.name, force=True, resume_command="factory build t.pkr.hcl",
                               **opts)  # type: ignore[arg-type]
        try:
            build_source(build, build.sources[0], self.root, bus, options)
        except FactoryError:
            if not fail:
                raise
            return events, b""
        assert not fail, "the build should have failed"
        return events, (self.root / "out" / self.name).read_bytes()


def ran(events: list[Event]) -> list[str]:
    """The provisioner steps that really ran (not restored from a checkpoint)."""
    return [e.step for e in events if e.kind is EventKind.STEP_FINISHED and e.step.startswith("provision")
            and not e.from_checkpoint]


def restored(events: list[Event]) -> list[str]:
    return [e.step for e in events if e.kind is EventKind.STEP_FINISHED and e.from_checkpoint]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    monkeypatch.setenv("FACTORY_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "p"
    root.mkdir()
    yield Project(root)


def _manifest(project: Project) -> dict[str, object]:
    data = json.loads((project.root / "out" / "manifest.json").read_text())
    for build in data["builds"]:
        build.pop("build_time", None)
        build.pop("packer_run_uuid", None)
    data.pop("last_run_uuid", None)
    return data  # type: ignore[no-any-return]


def test_a_resumed_build_reruns_only_the_edited_provisioner_and_equals_a_cold_build(project: Project) -> None:
    events, cold = project.build()
    assert ran(events) == PROVISIONED and restored(events) == []
    said = [e.message for e in events if e.kind is EventKind.MESSAGE]
    assert sum(m.startswith("checkpoint after ") for m in said) == 5, said  # connect + each provisioner
    assert cold[512:515] == b"ONE" and cold[1024:1029] == b"THREE" and cold[1536:1546] == b"FOUR-hello"
    cold_manifest = _manifest(project)

    # Nothing changed: every provisioner comes from the checkpoint; the artifact is the same, byte for byte.
    events, again = project.build()
    assert ran(events) == [] and restored(events)[-4:] == PROVISIONED
    assert again == cold and _manifest(project) == cold_manifest
    finished = [e for e in events if e.kind is EventKind.STEP_FINISHED and e.step == "provision-4"]
    assert finished and '"from_checkpoint": true' in finished[0].as_json()

    # The last provisioner edited: only it runs again, on top of the third one's checkpoint.
    project.p4 = _write_at(1536, "4444-${var.greeting}")
    events, edited = project.build()
    assert ran(events) == ["provision-4"]
    assert edited[1536:1546] == b"4444-hello" and edited[:1536] == cold[:1536]
    # ... and a cold build of the edited template makes the same artifact.
    events, cold_edited = project.build(resume=False)
    assert ran(events) == PROVISIONED and cold_edited == edited


@pytest.mark.parametrize("change, first", [
    ("base image bytes", "provision-1"),
    ("a VM option", "provision-1"),
    ("a provisioner's config", "provision-1"),
    ("an uploaded file's content", "provision-2"),
    ("a script's content", "provision-3"),
    ("a variable", "provision-4"),
])
def test_each_kind_of_input_reruns_from_the_step_that_reads_it(project: Project, change: str, first: str) -> None:
    project.build()
    if change == "base image bytes":
        (project.root / "base.raw").write_bytes(b"BASF" + BASE[4:] + bytes(1024 * 1024 - len(BASE)))
    elif change == "a VM option":
        project.memory = 768
    elif change == "a provisioner's config":
        project.p1 = _write_at(512, "one")
    elif change == "an uploaded file's content":
        (project.root / "upload.txt").write_text("uploaded v2\n")
    elif change == "a script's content":
        (project.root / "step.sh").write_text("#!/bin/sh\n" + _write_at(1024, "three") + "\n")
    events, disk = project.build(*(["greeting=bonjour"] if change == "a variable" else []))
    assert ran(events) == PROVISIONED[PROVISIONED.index(first):], change
    if change == "base image bytes":
        assert disk[:4] == b"BASF" and "disk" not in restored(events)  # nothing stale: not even the base layer
    if change == "a variable":
        assert disk[1536:1548] == b"FOUR-bonjour"
    if change == "a script's content":
        assert disk[1024:1029] == b"three"


def test_a_failed_build_keeps_its_last_good_checkpoint_and_says_how_to_resume(project: Project) -> None:
    project.p4 = "echo broken >&2; exit 3"
    events, _ = project.build(fail=True)
    assert ran(events) == PROVISIONED[:3]
    notices = [e.message for e in events if e.kind is EventKind.NOTICE]
    assert any("checkpoint after provision-3 is kept; resume the build with:\n    factory build t.pkr.hcl" in n
               for n in notices), notices
    # A cold build's failure has nothing to say about reboots ...
    assert not any("booting a checkpoint's disk" in n for n in notices), notices
    project.p4 = "echo still broken >&2; exit 4"
    events, _ = project.build(fail=True)
    assert ran(events) == [] and restored(events)[-3:] == PROVISIONED[:3]  # provision-4 ran, and failed again
    notices = [e.message for e in events if e.kind is EventKind.NOTICE]
    # ... a resumed one that booted the checkpoint's disk (this driver keeps no VM state) says what that lost.
    assert any("with its disk (the guest boots again: what earlier steps left outside the disk, such as files "
               "in /tmp or running services, is gone)" in n for n in notices), notices
    assert any("this build resumed by booting a checkpoint's disk" in n and "-resume=false" in n
               and "-checkpoint=vm" in n for n in notices), notices
    project.p4 = _write_at(1536, "FOUR-${var.greeting}")
    events, disk = project.build()
    assert ran(events) == ["provision-4"] and disk[512:515] == b"ONE" and disk[1536:1546] == b"FOUR-hello"


def test_checkpoint_none_keeps_nothing_and_force_rebuild_replaces(project: Project) -> None:
    events, _ = project.build(checkpoint=CheckpointMode.NONE)
    assert ran(events) == PROVISIONED and Store().entries(checkpoints.KIND) == []
    project.build()
    first = {e.key for e in Store().entries(checkpoints.KIND)}
    assert len(first) == 6  # layer 0, connect, four provisioners
    events, _ = project.build(resume=False)
    assert ran(events) == PROVISIONED
    # A cold rebuild made a new key pair, so new stage IDs from the seed on: its chain is new, layer 0 replaced.
    kept = Store().entries(checkpoints.KIND)
    assert all(checkpoints.chain(Store(), e.key) is not None for e in kept if e.key not in first)
    assert len([e for e in kept if checkpoints.chain(Store(), e.key) is not None]) == 6


def test_no_checkpoint_covers_a_provisioner_that_makes_files_on_the_host(project: Project) -> None:
    # A download's result is on the build host, not in the machine: a resume that skipped it would lose it.
    project.download = True
    (project.root / "guest-file.txt").write_text("from the guest\n")
    events, _ = project.build()
    assert ran(events) == PROVISIONED
    (project.root / "downloaded.txt").unlink()
    events, _ = project.build()
    assert ran(events) == PROVISIONED[1:] and restored(events)[-1] == "provision-1"
    assert (project.root / "downloaded.txt").read_text() == "from the guest\n"


def test_four_builds_of_one_template_at_once_share_the_store_safely(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    monkeypatch.setenv("FACTORY_CACHE_DIR", str(tmp_path / "cache"))
    projects = []
    for n in range(4):
        (tmp_path / f"p{n}").mkdir()
        projects.append(Project(tmp_path / f"p{n}"))
        projects[-1].name = "same-vm"  # the same machine: the same stage IDs up to the first path-bound input
    results: dict[int, object] = {}
    # Template loading registers components lazily, once per process: done here before the threads race it.
    projects[0].build(checkpoint=CheckpointMode.NONE)

    def run(n: int) -> None:
        try:
            results[n] = projects[n].build()
        except BaseException as exc:  # reported below
            results[n] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    for n in range(4):
        outcome = results[n]
        assert isinstance(outcome, tuple), (outcome.render() if isinstance(outcome, FactoryError) else
                                            "".join(traceback.format_exception(outcome)))  # type: ignore[arg-type]
        disk = outcome[1]
        assert disk[512:515] == b"ONE" and disk[1024:1029] == b"THREE" and disk[1536:1546] == b"FOUR-hello"
    store = Store()
    layers = store.entries(checkpoints.KIND)
    assert all(checkpoints.chain(store, e.key) is not None for e in layers)
    # One base layer for all four (the others waited for it and reused it).
    assert len([e for e in layers if (cp := checkpoints.read(store, e.key)) and cp.step == "disk"]) == 1
    events, again = projects[0].build()
    assert ran(events) == [] and again[1536:1546] == b"FOUR-hello"
