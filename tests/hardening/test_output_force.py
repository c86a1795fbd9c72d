"""`-force` replaces only an output folder factory created (it holds .factory-output); names that would put the
output over the user's files are refused, by `validate` when the text alone shows it, by `build` otherwise.

Refusals go through the real `factory build` CLI (the output folder is checked by the first step, before any VM);
the success path (marker written, `-force` replacing factory's own folder) runs a whole build on the test-only
loopback driver (tests/fixtures/loopback.py: no VM, a real sshd)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fixtures.loopback import LoopbackDriver

from factory.build import Cleanups, EventBus
from factory.errors import FactoryError
from factory.fsutil import OUTPUT_MARKER, check_output_dir, mark_output_dir
from factory.steps.plan import BuildOptions, build_source
from factory.steps.prepare import publish_output
from factory.template import load
from hardening.harness import assert_user_error, run_cli, template

USER = "root" if os.geteuid() == 0 else os.environ.get("USER", "root")


def _tpl(tmp_path: Path, line: str) -> Path:
    path = tmp_path / "t.pkr.hcl"
    path.write_text(template(f"  {line}\n"))
    return path


def _user_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "thesis.tex").write_text("years of work")
    return folder


@pytest.mark.parametrize(("line", "expected"), [
    ('output_directory = "."', "is the folder factory runs in, one of its parents or /"),
    ('output_directory = "./"', "is the folder factory runs in"),
    ('output_directory = ".."', "one of its parents"),
    ('output_directory = "../../.."', "one of its parents"),
    ('output_directory = "x/../.."', "one of its parents"),
    ('output_directory = "/"', "or /"),
    ('output_directory = "~"', "is a home folder"),
    ('vm_name = "a/b"', "vm_name 'a/b' contains '/'"),
    ('vm_name = "../escape"', "contains '/'"),
    ('vm_name = ".."', "is '.' or '..'"),
    ('vm_name = ""', "is empty"),
    ('vm_name = "' + "x" * 201 + '"', "longer than 200 bytes"),
])
@pytest.mark.parametrize("command", ["validate", "build"])
def test_output_names_that_escape_are_refused_at_their_line(tmp_path: Path, command: str, line: str,
                                                             expected: str) -> None:
    path = _tpl(tmp_path, line)
    keep = _user_folder(tmp_path / "mine")
    res = run_cli([command, "-force", str(path)] if command == "build" else [command, str(path)], cwd=tmp_path)
    if line == 'vm_name = ""':   # Packer reads "" as unset: the default name
        assert res.code != 70 and "Traceback" not in res.err
        return
    assert_user_error(res, f"{path}:5:3", expected)
    assert (keep / "thesis.tex").read_text() == "years of work"


@pytest.mark.parametrize("force", [False, True])
def test_existing_folder_factory_did_not_make_is_never_replaced(tmp_path: Path, force: bool) -> None:
    mine = _user_folder(tmp_path / "out")
    path = _tpl(tmp_path, 'output_directory = "out"')
    res = run_cli(["build", *(["-force"] if force else []), str(path)], cwd=tmp_path)
    if force:
        assert_user_error(res, f"output directory {mine}", f"was not created by factory (it has no {OUTPUT_MARKER})",
                          "hint: move or remove it yourself")
    else:
        assert_user_error(res, "already exists and is not empty", "-force")
    assert (mine / "thesis.tex").read_text() == "years of work"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "t.pkr.hcl"], "a refused build left files"


@pytest.mark.parametrize(("setup", "expected"), [
    ("template folder parent", "is a parent of the folder factory runs in"),
    ("home", "is your home folder"),
    ("file", "is a file, not a folder"),
    ("symlink", "is a symbolic link"),
    ("unwritable", "output_directory /proc/1/out: cannot create it in /proc/1"),
])
def test_dangerous_output_folders_are_refused_by_build(tmp_path: Path, setup: str, expected: str) -> None:
    work = tmp_path / "proj"
    work.mkdir()
    env: dict[str, str] = {}
    if setup == "template folder parent":
        out = str(tmp_path)
    elif setup == "home":
        home = _user_folder(tmp_path / "home")
        (home / OUTPUT_MARKER).write_text("even with a marker")
        env["HOME"] = str(home)
        out = str(home)
    elif setup == "file":
        (work / "out").write_text("a file")
        out = "out"
    elif setup == "unwritable":
        out = "/proc/1/out"  # no user, root included, can make a folder there
    else:
        target = _user_folder(tmp_path / "real")
        (work / "out").symlink_to(target)
        out = "out"
    path = _tpl(work, f'output_directory = "{out}"')
    res = run_cli(["build", "-force", str(path)], cwd=work, env=env)
    assert_user_error(res, expected)
    assert path.exists()
    for keep in tmp_path.rglob("thesis.tex"):
        assert keep.read_text() == "years of work"


def test_check_output_dir_accepts_missing_empty_and_marked(tmp_path: Path) -> None:
    protected = {"the folder factory runs in": tmp_path / "proj"}
    check_output_dir(tmp_path / "new", force=False, protected=protected)
    (tmp_path / "empty").mkdir()
    check_output_dir(tmp_path / "empty", force=False, protected=protected)
    marked = _user_folder(tmp_path / "marked")
    (marked / OUTPUT_MARKER).write_text("x")
    with pytest.raises(FactoryError, match="not empty"):
        check_output_dir(marked, force=False, protected=protected)
    check_output_dir(marked, force=True, protected=protected)
    with pytest.raises(FactoryError, match="is the folder factory runs in"):
        check_output_dir(tmp_path / "proj" / "sub" / "..", force=True, protected=protected)


def test_force_replaces_the_folder_factory_made_and_only_that(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    """A whole build (loopback driver) writes the marker; a second build without -force is refused, with -force
    it replaces the folder; the marker is no artifact file."""
    monkeypatch.setenv("FACTORY_CACHE_DIR", str(tmp_path / "cache"))
    base = tmp_path / "base.raw"
    base.write_bytes(bytes(1024 * 1024))
    name = f"force-{uuid.uuid4().hex[:8]}"
    tpl = tmp_path / "t.pkr.hcl"
    tpl.write_text(f"""
source "qemu" "f" {{
  disk_image       = true
  iso_url          = "{base}"
  iso_checksum     = "none"
  format           = "raw"
  disk_size        = "1M"
  vm_name          = "{name}"
  output_directory = "{tmp_path / 'out'}"
  serial_log       = "{tmp_path / 'serial.log'}"
  ssh_username     = "{USER}"
  ssh_timeout      = "60s"
  shutdown_command = "touch \\"$FACTORY_POWEROFF\\""
}}
build {{
  sources = ["source.qemu.f"]
}}
""")

    def build(force: bool) -> list[Path]:
        project = load(tpl)
        b = project.builds[0]
        arts = build_source(b, b.sources[0], tmp_path, EventBus(), BuildOptions(driver=LoopbackDriver.name,
                                                                                force=force))
        return list(arts[0].files)

    out = tmp_path / "out"
    files = build(False)
    assert (out / OUTPUT_MARKER).is_file()
    assert out / OUTPUT_MARKER not in files and out / name in files
    with pytest.raises(FactoryError, match="already exists and is not empty"):
        build(False)
    (out / "stale.txt").write_text("from an earlier run")
    build(True)
    assert not (out / "stale.txt").exists() and (out / name).is_file() and (out / OUTPUT_MARKER).is_file()
    # The replaced folder was set aside and removed before the build returned; no staging folder is left either.
    assert not list(tmp_path.glob(".out.*")), list(tmp_path.glob(".out.*"))


def _publishing(tmp_path: Path) -> SimpleNamespace:
    """What publish_output reads of a build: an output folder factory made earlier, and a staged new one."""
    out = tmp_path / "out"
    out.mkdir()
    mark_output_dir(out, "earlier")
    (out / "old.qcow2").write_text("old")
    staging = tmp_path / ".out.x.part"
    staging.mkdir()
    (staging / "new.qcow2").write_text("new")
    return SimpleNamespace(output_directory=out, staging=staging, force=True, build_name="b", vm_name="v",
                           root=tmp_path / "project", build=None, cleanups=Cleanups())


def test_publish_sets_the_replaced_output_aside_and_removes_it_before_the_build_ends(tmp_path: Path) -> None:
    ctx = _publishing(tmp_path)
    out = publish_output(ctx)  # type: ignore[arg-type]
    assert (out / "new.qcow2").read_text() == "new" and not (out / "old.qcow2").exists()
    assert ctx.cleanups.labels() == ["remove the replaced output"]
    ctx.cleanups.run_all(print)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_publish_puts_the_old_output_back_when_the_new_one_cannot_take_its_place(tmp_path: Path,
                                                                                 monkeypatch: pytest.MonkeyPatch
                                                                                 ) -> None:
    ctx = _publishing(tmp_path)
    real = os.replace

    def replace(src: Any, dst: Any) -> None:
        if Path(src) == ctx.staging:
            raise OSError(28, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="No space left"):
        publish_output(ctx)  # type: ignore[arg-type]
    assert (tmp_path / "out" / "old.qcow2").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.x.part", "out"]


@pytest.mark.parametrize(("block", "expected"), [
    ('  post-processor "ova" {\n    vm_name = "../x"\n  }\n', ["{f}:9:5", "vm_name '../x' contains '/'"]),
    ('  post-processor "export" {\n    format = "vmdk"\n    vm_name = ".."\n  }\n', ["{f}:10:5", "is '.' or '..'"]),
])
def test_export_names_that_escape_are_refused(tmp_path: Path, block: str, expected: list[str]) -> None:
    path = tmp_path / "t.pkr.hcl"
    path.write_text(template(build_lines=block))
    assert_user_error(run_cli(["validate", str(path)]), *(e.format(f=path) for e in expected))


@pytest.mark.parametrize(("line", "expected"), [
    ('vm_name = "a/b"', "vm_name 'a/b' contains '/'"),
    ('output_filename = "../up"', "output_filename '../up' contains '/'"),
    ('output_directory = ".."', "one of its parents"),
])
def test_virtualbox_output_names_are_checked_too(tmp_path: Path, line: str, expected: str) -> None:
    path = tmp_path / "t.pkr.hcl"
    path.write_text(template(f"  {line}\n").replace('source "qemu" "a"', 'source "virtualbox-iso" "a"')
                    .replace("source.qemu.a", "source.virtualbox-iso.a"))
    assert_user_error(run_cli(["validate", str(path)]), f"{path}:5:3", expected)
