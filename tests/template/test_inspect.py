"""Packer's inspect value formatting: the console formatter (repl.FormatResult), Go's %q and %g."""

from __future__ import annotations

from pathlib import Path

import pytest

from factory.template import load
from factory.template.inspect import format_result, go_g, go_quote, render_inspect


@pytest.mark.parametrize(("value", "expected"), [
    ("plain", "plain"), (3, "3"), (2.5, "2.5"), (True, "true"), (None, "null"),
    ([], "[]"), ({}, "{}"),
    (["a", 1], '[\n  "a",\n  1,\n]'),
    ({"b": [1], "a": None}, '{\n  "a" = null\n  "b" = [\n    1,\n  ]\n}'),
])
def test_format_result_matches_packer_console(value: object, expected: str) -> None:
    assert format_result(value) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (2.5, "2.5"), (0.1, "0.1"), (-3.25, "-3.25"), (1234567.5, "1.2345675e+06"), (123456.5, "123456.5"),
    (0.0001, "0.0001"), (0.00001, "1e-05"), (1e21, "1e+21"),
])
def test_go_g(value: float, expected: str) -> None:
    assert go_g(value) == expected


def test_go_quote() -> None:
    assert go_quote('a "b"\n\tc\\') == '"a \\"b\\"\\n\\tc\\\\"'
    assert go_quote("\x01é☃") == '"\\x01é☃"'


def test_inspect_of_a_minimal_template_is_packers_layout(tmp_path: Path) -> None:
    (tmp_path / "t.pkr.hcl").write_text('variable "n" {\n  default = [1]\n}\n'
                                        'source "qemu" "a" {}\nbuild {\n  sources = ["source.qemu.a"]\n}\n')
    text = render_inspect(load(tmp_path, env={}))
    assert text == ("Packer Inspect: HCL2 mode\n\n> input-variables:\n\nvar.n: \"[\\n  1,\\n]\"\n\n"
                    "> local-variables:\n\n\n> builds:\n\n  > <unnamed build 0>:\n\n    sources:\n\n"
                    "      qemu.a\n\n    provisioners:\n\n      <no provisioner>\n\n    post-processors:\n\n"
                    "      <no post-processor>\n\n")


SECRET_TEMPLATE = """
variable "pw" {
  default   = "S3cret!x"
  sensitive = true
}
variable "user" {
  default = "vagrant"
}
locals {
  shout = upper(var.pw)
  again = "x-${local.shout}"
  plain = upper(var.user)
}
source "qemu" "a" {
  iso_url      = "a.iso"
  iso_checksum = "none"
  ssh_password = var.pw
}
build {
  sources = ["source.qemu.a"]
}
"""


def test_values_computed_from_a_secret_show_as_sensitive_in_inspect_and_console(tmp_path: Path) -> None:
    """upper(var.pw) is not the secret's text, so masking that text would not hide it: Packer marks the value."""
    from factory.template.console import Session

    (tmp_path / "t.pkr.hcl").write_text(SECRET_TEMPLATE)
    project = load(tmp_path, env={})
    text = render_inspect(project, project.sensitive_locals)
    assert 'local.shout: "<sensitive>"' in text and 'local.again: "<sensitive>"' in text
    assert 'local.plain: "VAGRANT"' in text and "S3CRET" not in text and "S3cret" not in text
    session = Session.open(tmp_path, [], [])
    shown = [session.run(line)[0] for line in ("upper(var.pw)", "local.again", "length(var.pw)", "local.plain")]
    assert shown == ["<sensitive>", "<sensitive>", "<sensitive>", "VAGRANT"]
    assert "S3CRET" not in session.variables()


def test_inspect_lists_every_block_written_and_masks_values_not_names(tmp_path: Path) -> None:
    """Packer's inspect prints the build's blocks as written: sources of plugins factory lacks, steps for no
    selected source; a password equal to a component's type (vagrant) masks values only."""
    (tmp_path / "t.pkr.hcl").write_text("""
variable "pw" {
  default = "vagrant"
}
source "qemu" "a" {
  iso_url      = "a.iso"
  iso_checksum = "none"
  ssh_password = var.pw
}
source "vmware-iso" "a" {}
build {
  sources = ["source.qemu.a", "source.vmware-iso.a"]
  provisioner "shell" {
    name   = "first"
    inline = ["true"]
  }
  provisioner "powershell" {
    scripts = ["missing.ps1"]
    only    = ["vmware-iso.a"]
  }
  post-processor "vagrant" {}
  post-processors {
    post-processor "utm-vagrant" {
      only = ["utm-iso.a"]
    }
  }
}
""")
    project = load(tmp_path, env={}, skip_unknown_sources=True)   # as `factory inspect` loads
    text = render_inspect(project, project.sensitive_locals)
    builds = text.split("> builds:")[1]
    assert builds.split() == [">", "<unnamed", "build", "0>:", "sources:", "qemu.a", "vmware-iso.a", "provisioners:",
                              "shell.first", "powershell", "post-processors:", "0:", "vagrant", "1:", "utm-vagrant"]
    assert 'var.pw: "<sensitive>"' in text
