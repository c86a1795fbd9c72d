"""Packer CLI parity around templates: `init` (offline), `plugins`, `console`, `-color`, `-timestamp-ui`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from factory.template.console import format_result
from factory.template.types import Unknown

TEMPLATE = """\
packer {
  required_plugins {
    qemu = {
      source  = "github.com/hashicorp/qemu"
      version = ">= 1.0.0"
    }
    vsphere = {
      source  = "github.com/hashicorp/vsphere"
      version = "~> 1.2"
    }
  }
}

variable "name" {
  default = "deb"
}

variable "pw" {
  default   = "hunter2hunter2"
  sensitive = true
}

locals {
  full  = "${var.name}-12"
  items = ["a", 1, { k = "v" }]
}
"""


def factory(*args: str, cwd: Path, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "factory", *args], cwd=cwd, input=stdin, capture_output=True,
                          text=True, timeout=120, check=False)


@pytest.fixture
def tpl(tmp_path: Path) -> Path:
    (tmp_path / "t.pkr.hcl").write_text(TEMPLATE)
    return tmp_path


def test_init_reports_built_in_plugins_and_names_the_others(tpl: Path) -> None:
    result = factory("init", "-upgrade", ".", cwd=tpl)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "qemu: github.com/hashicorp/qemu >= 1.0.0: built into factory (source qemu)",
        "vsphere: github.com/hashicorp/vsphere ~> 1.2: not provided by factory",
    ]
    assert "factory does not provide github.com/hashicorp/vsphere" in result.stderr
    assert factory("plugins", "required", "t.pkr.hcl", cwd=tpl).stdout == result.stdout


def test_init_without_required_plugins_and_plugins_installed(tmp_path: Path) -> None:
    (tmp_path / "t.pkr.hcl").write_text('variable "x" {}\n')
    result = factory("init", "t.pkr.hcl", cwd=tmp_path)
    assert result.returncode == 0 and "no required_plugins; nothing to install" in result.stdout
    listed = factory("plugins", "installed", cwd=tmp_path).stdout
    assert re.search(r"^github\.com/hashicorp/qemu \(built into factory [^)]+\): source qemu$", listed, re.M)
    assert "github.com/hashicorp/virtualbox" in listed


def test_console_evaluates_piped_expressions_with_the_templates_values(tpl: Path) -> None:
    lines = "var.name\nlocal.full\nupper(var.name)\nlocal.items\n\nvariables\nexit\nnot reached\n"
    result = factory("console", "-var", "name=trixie", "t.pkr.hcl", cwd=tpl, stdin=lines)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith('trixie\ntrixie-12\nTRIXIE\n[\n  "a",\n  1,\n  {\n    "k" = "v"\n  },\n]\n')
    assert 'var.name: "trixie"' in out and 'var.pw: "<sensitive>"' in out and 'local.full: "trixie-12"' in out
    assert "hunter2hunter2" not in out and "not reached" not in out


def test_console_without_a_template_and_its_errors(tmp_path: Path) -> None:
    assert factory("console", cwd=tmp_path, stdin='1 + 2\nformat("%03d", 7)\n').stdout == "3\n007\n"
    bad = factory("console", cwd=tmp_path, stdin="1\nnosuch.x\n2\n")
    assert bad.returncode == 1 and bad.stdout == "1\n" and "Traceback" not in bad.stderr
    assert "<console>:1:1" in bad.stderr and "| nosuch.x" in bad.stderr and "unknown variable" in bad.stderr


@pytest.mark.parametrize(("value", "shown"), [
    ("plain", "plain"), (None, "null"), (True, "true"), (3, "3"), (2.0, "2"), (1.5, "1.5"), ([], "[]"), ({}, "{}"),
    ({"b": ["x"], "a": 'q"'}, '{\n  "a" = "q\\""\n  "b" = [\n    "x",\n  ]\n}'), (Unknown("data"), "<unknown>"),
])
def test_console_prints_values_as_packer_does(value: object, shown: str) -> None:
    assert format_result(value) == shown


def test_color_false_and_timestamp_ui_are_accepted_by_build_and_validate(tpl: Path) -> None:
    for command in ("validate", "build"):
        result = factory(command, "-color=false", "-timestamp-ui", "t.pkr.hcl", cwd=tpl)
        assert result.returncode == 1, result.stderr  # the template has no build block: a template error, not usage
        assert "\x1b[" not in result.stderr
        lines = [ln for ln in result.stderr.splitlines() if "error:" in ln or "warning:" in ln]
        assert lines and all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d: ", ln) for ln in lines), lines
