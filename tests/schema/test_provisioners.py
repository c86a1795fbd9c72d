"""The file provisioner's `generated`: upload sources are checked when the template is read, unless generated."""

from __future__ import annotations

from pathlib import Path

import pytest

from factory.errors import FactoryError
from factory.template import load

TEMPLATE = '''source "qemu" "x" {
  iso_url      = "a.iso"
  iso_checksum = "none"
  ssh_username = "root"
}
build {
  sources = ["source.qemu.x"]
  provisioner "file" {
    %s
    destination = "/tmp/"
  }
}
'''


def _load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    monkeypatch.chdir(tmp_path)  # relative sources resolve against the directory factory runs in
    (tmp_path / "t.pkr.hcl").write_text(TEMPLATE % body)
    load(tmp_path / "t.pkr.hcl")


@pytest.mark.parametrize("body", ['source = "made-later.txt"', 'sources = ["here.txt", "made-later.txt"]'])
def test_missing_upload_source_is_an_error_at_its_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        body: str) -> None:
    (tmp_path / "here.txt").write_text("x")
    with pytest.raises(FactoryError) as info:
        _load(tmp_path, monkeypatch, body)
    text = info.value.render()
    assert "file provisioner: source made-later.txt does not exist" in text and "t.pkr.hcl:9" in text
    assert "here.txt does not exist" not in text and "generated = true" in text


@pytest.mark.parametrize("body", [
    'source = "made-later.txt"\n    generated = true',                 # the build makes it: checked at upload
    'source = "here.txt"',                                              # exists
    'source = "/etc/hostname"\n    direction = "download"',            # a guest path: nothing to check here
    'content = "text"'])
def test_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    (tmp_path / "here.txt").write_text("x")
    _load(tmp_path, monkeypatch, body)
