"""Floppy images: Packer's floppy_* rules, a FAT12 1.44 MB image checked by mtools and fsck.vfat, determinism,
and the errors a template can run into."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from factory.errors import FactoryError
from factory.media import floppy

MTOOLS_ENV = {"MTOOLS_SKIP_CHECK": "1", "MTOOLSRC": "/dev/null", "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}


def _tree(root: Path) -> Path:
    (root / "drivers" / "net").mkdir(parents=True)
    (root / "drivers" / "net" / "e1000.inf").write_text("[e1000]\n")
    (root / "drivers" / "readme.txt").write_text("drivers\n")
    (root / "Autounattend.xml").write_text("<unattend/>\n")
    (root / "a.ps1").write_text("echo a\n")
    (root / "b.ps1").write_text("echo b\n")
    return root


def _mtools(*argv: str) -> str:
    return subprocess.run(list(argv), capture_output=True, text=True, check=True, env=MTOOLS_ENV).stdout


def test_packer_rules_flat_files_structured_dirs_content_wins(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    notes: list[str] = []
    files = floppy.collect(root, ["Autounattend.xml", "*.ps1", "drivers", "nothing-*.cmd"], ["drivers"],
                           {"a.ps1": "echo {{ .Name }}", "/scripts/run.cmd": "x"}, {"Name": "vm1"}, notes.append)
    assert sorted(files) == ["Autounattend.xml", "a.ps1", "b.ps1", "drivers/net/e1000.inf", "drivers/readme.txt",
                             "e1000.inf", "readme.txt", "scripts/run.cmd"]
    assert files["e1000.inf"] == root / "drivers" / "net" / "e1000.inf"     # floppy_files: flat
    assert files["a.ps1"] == b"echo vm1"                                        # floppy_content wins
    assert notes and "nothing-*.cmd" in notes[0] and "floppy_files" in notes[0]


def test_a_missing_literal_path_names_the_option(tmp_path: Path) -> None:
    with pytest.raises(FactoryError, match=r"floppy_files: 'answer\.xml' does not exist") as err:
        floppy.collect(tmp_path, ["answer.xml"], [], {}, {})
    assert err.value.hint and "floppy_files" in err.value.hint
    with pytest.raises(FactoryError, match="floppy_dirs: 'drivers' does not exist"):
        floppy.collect(tmp_path, [], ["drivers"], {}, {})


def test_image_is_fat12_readable_by_mtools_and_clean_for_fsck(tmp_path: Path) -> None:
    root = _tree(tmp_path / "src")
    files = floppy.collect(root, ["Autounattend.xml"], ["drivers"], {"scripts/run.cmd": "echo hi\r\n"}, {})
    img = floppy.make_floppy(files, tmp_path / "out" / "floppy.img", label="cidata")
    assert img.stat().st_size == 1474560
    fsck = subprocess.run(["fsck.vfat", "-n", str(img)], capture_output=True, text=True, check=False)
    assert fsck.returncode == 0, fsck.stdout + fsck.stderr
    assert "different" not in fsck.stdout                      # boot sector and root labels agree
    info = _mtools("minfo", "-i", str(img), "::")
    assert "FAT12" in info or "fat_bits=12" in info.replace(" ", "")
    listing = _mtools("mdir", "-i", str(img), "-/", "-b", "::")
    assert {"::/Autounattend.xml", "::/drivers/net/e1000.inf", "::/scripts/run.cmd"} <= set(listing.split())
    typed = subprocess.run(["mtype", "-i", str(img), "::/scripts/run.cmd"], capture_output=True, check=True,
                           env=MTOOLS_ENV).stdout
    assert typed == b"echo hi\r\n"                              # bytes as given: no text conversion
    assert "CIDATA" in _mtools("mlabel", "-i", str(img), "-s", "::")
    blkid = subprocess.run(["blkid", "-o", "export", str(img)], capture_output=True, text=True, check=False)
    assert "LABEL=CIDATA" in blkid.stdout and "TYPE=vfat" in blkid.stdout
    assert not [p for p in img.parent.iterdir() if p != img]   # no staging left behind


def test_same_input_same_bytes_and_content_changes_the_serial(tmp_path: Path) -> None:
    root = _tree(tmp_path / "src")
    files = floppy.collect(root, ["*.ps1"], ["drivers"], {"x.txt": "1"}, {})
    one = floppy.make_floppy(files, tmp_path / "1.img").read_bytes()
    (root / "a.ps1").touch()                                   # a newer mtime must not change the image
    two = floppy.make_floppy(files, tmp_path / "2.img").read_bytes()
    assert one == two
    other = floppy.make_floppy({**files, "x.txt": b"2"}, tmp_path / "3.img").read_bytes()
    assert other != one and other[39:43] != one[39:43]         # BPB volume serial follows the content


def test_too_much_content_is_one_clear_error(tmp_path: Path) -> None:
    big = tmp_path / "driver.cab"
    big.write_bytes(b"\0" * 1_000_000)
    files = floppy.collect(tmp_path, ["driver.cab"], [], {"extra.bin": "x" * 600_000}, {})
    with pytest.raises(FactoryError, match="floppy content too large") as err:
        floppy.make_floppy(files, tmp_path / "f.img")
    assert "floppy_files/floppy_dirs/floppy_content" in err.value.message
    assert err.value.hint and "http_directory" in err.value.hint
    assert not (tmp_path / "f.img").exists()


def test_many_small_files_that_overflow_the_root_directory_are_reported_as_too_large(tmp_path: Path) -> None:
    # 300 long names need more root-directory slots than FAT12's 224: mtools' own refusal becomes the message.
    files: floppy.FloppyFiles = {f"a-rather-long-file-name-{i:03}.txt": b"x" for i in range(300)}
    with pytest.raises(FactoryError, match="too large"):
        floppy.make_floppy(files, tmp_path / "f.img")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("label", ["twelve-chars", "bad/label", "ümlaut"])
def test_bad_label_names_floppy_label(label: str) -> None:
    with pytest.raises(FactoryError, match="floppy_label"):
        floppy.check_label(label)


def test_names_differing_only_in_case_are_refused(tmp_path: Path) -> None:
    with pytest.raises(FactoryError, match="differ only in case"):
        floppy.collect(tmp_path, [], [], {"Setup.cmd": "a", "setup.cmd": "b"}, {})


@pytest.mark.parametrize("name", ["a:b.txt", "what?.txt", "x*y", "trail.", "con.txt", "dir/nul", "../up", "a\\b"])
def test_names_fat_cannot_hold_are_refused_before_mtools_rewrites_them(name: str) -> None:
    with pytest.raises(FactoryError, match="not a valid FAT file name"):
        floppy.collect(Path("."), [], [], {name: "x"}, {})


def test_unusual_but_valid_names_survive_byte_for_byte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names = ["[a].txt", "with space.ps1", "Ünïcode.txt", "long-name-with.many.dots.cmd"]
    monkeypatch.setenv("LC_ALL", "C")            # the user's locale must not mangle names (nor change the image)
    img = floppy.make_floppy({n: n.encode() for n in names}, tmp_path / "f.img")
    listing = subprocess.run(["mdir", "-i", str(img), "-b", "::"], capture_output=True, text=True, check=True,
                             env={**MTOOLS_ENV, "LC_ALL": "C.UTF-8"}).stdout
    assert sorted(p.removeprefix("::/") for p in listing.split("\n") if p) == sorted(names)
