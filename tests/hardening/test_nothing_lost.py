"""Nothing is lost: no command writes onto one of its inputs (real path or inode), fmt writes only when every
file formatted, iso-build refuses a non-installer ISO."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from factory.media.seed import make_iso
from hardening.harness import assert_user_error, run_cli

CLOUD_CONFIG = b"#cloud-config\nhostname: keep-me\n"


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    files = {"user-data": b"#cloud-config\n", "meta-data": b"instance-id: x\n", "network-config": b"version: 2\n",
             "extra.txt": b"extra\n"}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return {name: tmp_path / name for name in files}


def _seed_args(inputs: dict[str, Path]) -> list[str]:
    return ["seed-iso", "--user-data", str(inputs["user-data"]), "--meta-data", str(inputs["meta-data"]),
            "--network-config", str(inputs["network-config"]), "--file", f"{inputs['extra.txt']}:docs/extra.txt"]


@pytest.mark.parametrize("victim", ["user-data", "meta-data", "network-config", "extra.txt"])
@pytest.mark.parametrize("how", ["same path", "symlink", "hard link", "dotted path"])
def test_seed_iso_never_writes_onto_an_input(tmp_path: Path, inputs: dict[str, Path], victim: str,
                                             how: str) -> None:
    target = inputs[victim]
    before = target.read_bytes()
    if how == "symlink":
        out = tmp_path / "link.iso"
        out.symlink_to(target)
    elif how == "hard link":
        out = tmp_path / "hard.iso"
        os.link(target, out)
    elif how == "dotted path":
        (tmp_path / "sub").mkdir()
        out = tmp_path / "sub" / ".." / victim
    else:
        out = target
    res = run_cli([*_seed_args(inputs), "-o", str(out)])
    assert_user_error(res, "-o", "writing it would destroy that input")
    assert target.read_bytes() == before


def test_seed_iso_output_naming_a_folder_is_refused(tmp_path: Path, inputs: dict[str, Path]) -> None:
    folder = tmp_path / "existing"
    folder.mkdir()
    (folder / "keep").write_text("keep")
    assert_user_error(run_cli([*_seed_args(inputs), "-o", str(folder)]), f"-o {folder} is a folder")
    assert (folder / "keep").read_text() == "keep"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


@pytest.mark.parametrize(("dest", "expected"), [
    ("../escape", "'.' or '..' part"), ("a/../../b", "'.' or '..' part"), ("./a", "'.' or '..' part"),
    ("a//b", "empty folder name"), ("/", "is empty"), ("x" * 65, "longer than 64 characters"),
    ("user-data", "already on the ISO"),
])
def test_seed_iso_file_destination_is_checked(tmp_path: Path, inputs: dict[str, Path], dest: str,
                                              expected: str) -> None:
    res = run_cli(["seed-iso", "--user-data", str(inputs["user-data"]), "--file", f"{inputs['extra.txt']}:{dest}",
                   "-o", str(tmp_path / "o.iso")])
    assert_user_error(res, f"--file {inputs['extra.txt']}:{dest}", expected)
    assert not (tmp_path / "o.iso").exists()


@pytest.mark.parametrize("label", ["ÄÖÜ", "日本語", "x\u200b", "", "a" * 33, "tab\there"])
def test_seed_iso_label_must_be_ascii(tmp_path: Path, inputs: dict[str, Path], label: str) -> None:
    res = run_cli(["seed-iso", "--user-data", str(inputs["user-data"]), "--label", label,
                   "-o", str(tmp_path / "o.iso")])
    assert_user_error(res, "volume label", "1 to 32 printable ASCII characters")


@pytest.mark.parametrize("option", ["--iso", "--preseed", "--template"])
def test_iso_build_never_writes_onto_an_input(tmp_path: Path, option: str) -> None:
    victim = tmp_path / "input"
    victim.write_bytes(CLOUD_CONFIG)
    args = ["iso-build", "ubuntu-24.04", option, str(victim), "-o", str(victim), "--var", "password=pw", "--offline"]
    assert_user_error(run_cli(args), f"-o {victim} is also the {option}")
    assert victim.read_bytes() == CLOUD_CONFIG


def test_iso_build_output_naming_a_folder_is_refused(tmp_path: Path) -> None:
    res = run_cli(["iso-build", "ubuntu-24.04", "--iso", str(tmp_path / "x.iso"), "-o", str(tmp_path),
                   "--var", "password=pw", "--offline"])
    assert_user_error(res, f"-o {tmp_path} is a folder")


def test_iso_build_refuses_an_iso_that_is_not_the_installer(tmp_path: Path) -> None:
    data_iso = make_iso({"hello.txt": b"hi\n"}, tmp_path / "data.iso", label="DATA")
    out = tmp_path / "out.iso"
    res = run_cli(["iso-build", "ubuntu-24.04", "--iso", str(data_iso), "--iso-checksum", "none", "-o", str(out),
                   "--var", "password=pw", "--offline"])
    assert_user_error(res, "is not a Ubuntu Server", "installer", "it has no casper/vmlinuz",
                      "looked for casper/vmlinuz, casper/initrd and one of boot/grub/grub.cfg")
    assert not out.exists()


@pytest.mark.parametrize(("content", "expected"), [
    (b"", "not an ISO9660 image"), (b"\0" * 40000, "not an ISO9660 image"),
    (b"CD001" * 10000, "not an ISO9660 image"),
])
def test_iso_build_refuses_truncated_or_non_iso_media(tmp_path: Path, content: bytes, expected: str) -> None:
    src = tmp_path / "bad.iso"
    src.write_bytes(content)
    res = run_cli(["iso-build", "ubuntu-24.04", "--iso", str(src), "--iso-checksum", "none",
                   "-o", str(tmp_path / "o.iso"), "--var", "password=pw", "--offline"])
    assert_user_error(res, expected)


def test_iso_build_refuses_a_truncated_iso(tmp_path: Path) -> None:
    whole = make_iso({"casper/vmlinuz": b"k" * 100000}, tmp_path / "whole.iso", label="X")
    cut = tmp_path / "cut.iso"
    cut.write_bytes(whole.read_bytes()[:17 * 2048 + 100])
    res = run_cli(["iso-build", "ubuntu-24.04", "--iso", str(cut), "--iso-checksum", "none",
                   "-o", str(tmp_path / "o.iso"), "--var", "password=pw", "--offline"])
    assert_user_error(res)


# -- fmt ---------------------------------------------------------------------------------------------------------
def test_fmt_writes_nothing_when_one_file_fails(tmp_path: Path) -> None:
    good, bad = tmp_path / "a.pkr.hcl", tmp_path / "b.pkr.hcl"
    good.write_text('locals {\n  a    =   1\n}\n')
    bad.write_text('locals {\n  a = \n')
    before = good.read_text()
    assert_user_error(run_cli(["fmt", str(tmp_path)]), f"{bad}:")
    assert good.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pkr.hcl", "b.pkr.hcl"]


def test_fmt_through_a_symlink_keeps_the_link(tmp_path: Path) -> None:
    real = tmp_path / "real.pkr.hcl"
    real.write_text('locals {\n  a    =   1\n}\n')
    link = tmp_path / "link.pkr.hcl"
    link.symlink_to(real)
    assert run_cli(["fmt", str(link)]).code == 0
    assert link.is_symlink() and real.read_text() == 'locals {\n  a = 1\n}\n'


# -- export ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["qcow2", "raw", "vmdk", "ova"])
@pytest.mark.parametrize("how", ["same path", "symlink", "hard link", "dotted path"])
def test_export_never_writes_onto_its_disk(tmp_path: Path, fmt: str, how: str) -> None:
    disk = tmp_path / "disk.raw"
    disk.write_bytes(b"KEEP" + bytes(1024 * 1024 - 4))
    if how == "symlink":
        out = tmp_path / "link.out"
        out.symlink_to(disk)
    elif how == "hard link":
        out = tmp_path / "hard.out"
        os.link(disk, out)
    elif how == "dotted path":
        out = tmp_path / "nowhere" / ".." / "disk.raw"
    else:
        out = disk
    res = run_cli(["export", str(disk), "-f", fmt, "-o", str(out)])
    assert_user_error(res, f"-o {out} is also the disk exported", "writing it would destroy that input")
    assert disk.read_bytes()[:4] == b"KEEP" and disk.stat().st_size == 1024 * 1024


@pytest.mark.parametrize("out", ["", ".", "existing"])
def test_export_output_naming_a_folder_is_refused(tmp_path: Path, out: str) -> None:
    disk = tmp_path / "disk.raw"
    disk.write_bytes(bytes(1024 * 1024))
    (tmp_path / "existing").mkdir()
    (tmp_path / "existing" / "keep").write_text("keep")
    res = run_cli(["export", str(disk), "-f", "qcow2", "-o", out], cwd=tmp_path)
    assert_user_error(res, "is a folder", "hint: name the file to write", "vm.qcow2")
    assert (tmp_path / "existing" / "keep").read_text() == "keep"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk.raw", "existing"]


# -- outputs that are not regular files, or in a folder that cannot be made ----------------------------------------
def _output_cases(tmp_path: Path, inputs: dict[str, Path]) -> dict[str, list[str]]:
    disk = tmp_path / "disk.raw"
    disk.write_bytes(bytes(1024 * 1024))
    return {"export": ["export", str(disk), "-f", "qcow2"],
            "seed-iso": ["seed-iso", "--user-data", str(inputs["user-data"])]}


@pytest.mark.parametrize("command", ["export", "seed-iso"])
def test_output_that_is_a_fifo_is_refused_not_replaced(tmp_path: Path, inputs: dict[str, Path],
                                                      command: str) -> None:
    # A FIFO stands for /dev/null and other special files (replacing /dev/null as root broke the host's).
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    res = run_cli([*_output_cases(tmp_path, inputs)[command], "-o", str(fifo)])
    assert_user_error(res, f"-o {fifo} is not a regular file", "hint: name a regular file")
    assert fifo.is_fifo()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


@pytest.mark.parametrize("command", ["export", "seed-iso"])
def test_output_in_a_folder_that_cannot_be_made_is_a_user_error(tmp_path: Path, inputs: dict[str, Path],
                                                                command: str) -> None:
    # A parent that is a file stands for any folder that cannot be created (/proc/x, a read-only mount).
    out = inputs["extra.txt"] / "sub" / "out.img"
    res = run_cli([*_output_cases(tmp_path, inputs)[command], "-o", str(out)])
    assert_user_error(res, f"cannot write {out}", "hint: choose a path in a folder you can write to")
    assert inputs["extra.txt"].read_bytes() == b"extra\n"


# -- docs -o -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("check", [False, True])
@pytest.mark.parametrize("kind", ["folder", "fifo", "empty path"])
def test_docs_output_that_is_not_a_file_is_refused(tmp_path: Path, kind: str, check: bool) -> None:
    target = tmp_path / "out"
    if kind == "folder":
        target.mkdir()
        (target / "keep").write_text("keep")
    elif kind == "fifo":
        os.mkfifo(target)
    arg = "" if kind == "empty path" else str(target)
    res = run_cli(["docs", "-o", arg, *(["--check"] if check else [])], cwd=tmp_path)
    assert_user_error(res, "is a folder" if kind != "fifo" else "is not a regular file", "reference.md")
    if kind == "folder":
        assert (target / "keep").read_text() == "keep"
    elif kind == "fifo":
        assert target.is_fifo()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_docs_check_of_a_non_utf8_file_says_out_of_date(tmp_path: Path) -> None:
    old = tmp_path / "ref.md"
    old.write_bytes(b"\xff\xfe old page in UTF-16?\n")
    res = run_cli(["docs", "--check", "-o", str(old)])
    assert res.code == 3 and "out of date" in res.out and "internal error" not in res.err, str(res)
    assert old.read_bytes().startswith(b"\xff\xfe")


def test_docs_output_in_a_folder_that_cannot_be_made_is_a_user_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("keep")
    assert_user_error(run_cli(["docs", "-o", str(blocker / "ref.md")]), f"cannot write {blocker / 'ref.md'}")
    assert blocker.read_text() == "keep"


# -- hcl2_upgrade ------------------------------------------------------------------------------------------------
LEGACY = b'{"builders": [{"type": "null", "communicator": "none"}]}\n'


@pytest.mark.parametrize("how", ["same path", "symlink", "hard link", "dotted path"])
def test_hcl2_upgrade_never_writes_onto_its_template(tmp_path: Path, how: str) -> None:
    legacy = tmp_path / "legacy.json"
    legacy.write_bytes(LEGACY)
    out = {"same path": legacy, "symlink": tmp_path / "link.json", "hard link": tmp_path / "hard.json",
           "dotted path": tmp_path / "nowhere" / ".." / "legacy.json"}[how]
    if how == "symlink":
        out.symlink_to(legacy)
    elif how == "hard link":
        os.link(legacy, out)
    res = run_cli(["hcl2_upgrade", str(legacy), "--output-file", str(out)])
    assert_user_error(res, f"--output-file {out} is also the template", "writing it would destroy that input")
    assert legacy.read_bytes() == LEGACY


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_hcl2_upgrade_output_that_is_not_a_file_is_refused(tmp_path: Path, kind: str) -> None:
    legacy = tmp_path / "legacy.json"
    legacy.write_bytes(LEGACY)
    out = tmp_path / "out"
    if kind == "fifo":
        os.mkfifo(out)
    else:
        out.mkdir()
    res = run_cli(["hcl2_upgrade", str(legacy), "--output-file", str(out)])
    assert_user_error(res, f"--output-file {out} is", "legacy.pkr.hcl")
    assert out.is_fifo() if kind == "fifo" else out.is_dir()


@pytest.mark.parametrize(("kind", "expected"), [("missing", "does not exist"), ("folder", "is not a file"),
                                                ("fifo", "is not a file")])
def test_hcl2_upgrade_template_that_is_not_a_file_is_refused(tmp_path: Path, kind: str, expected: str) -> None:
    template = tmp_path / "legacy.json"
    if kind == "folder":
        template.mkdir()
    elif kind == "fifo":
        os.mkfifo(template)   # read, it would block forever
    res = run_cli(["hcl2_upgrade", str(template)])
    assert_user_error(res, f"template {template} {expected}", "hint: pass a legacy Packer JSON template")
    assert [p.name for p in tmp_path.iterdir()] == ([] if kind == "missing" else ["legacy.json"])
