"""Paths resolve as Packer resolves them: path.root is the template's directory as given (not made absolute),
path.cwd the absolute working directory, and file()/templatefile()/relative paths are read from the working
directory, so `factory validate -var-file=vars/x.pkrvars.hcl ./templates/x.pkr.hcl` run from a repository root
(as projects' Makefiles do) reads the same files as Packer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from factory.template import load

TEMPLATE = """
variable "name" { default = "unset" }
locals {
  root      = path.root
  cwd       = path.cwd
  own       = file("${path.root}/http/a.txt")
  from_cwd  = file("vars/b.txt")
  rendered  = templatefile("${path.root}/http/t.pkrtpl", { who = var.name })
  absolute  = abspath(path.root)
}
source "null" "x" { communicator = "none" }
build { sources = ["source.null.x"] }
"""


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "templates" / "http").mkdir(parents=True)
    (tmp_path / "vars").mkdir()
    (tmp_path / "templates" / "x.pkr.hcl").write_text(TEMPLATE)
    (tmp_path / "templates" / "http" / "a.txt").write_text("beside the template")
    (tmp_path / "templates" / "http" / "t.pkrtpl").write_text("hello ${who}")
    (tmp_path / "vars" / "b.txt").write_text("beside the caller")
    (tmp_path / "vars" / "x.pkrvars.hcl").write_text('name = "from-var-file"\n')
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.mark.parametrize("given", ["./templates/x.pkr.hcl", "templates/x.pkr.hcl", "./templates", "templates/"])
def test_run_from_the_repository_root(repo: Path, given: str) -> None:
    project = load(Path(given), var_files=[Path("vars/x.pkrvars.hcl")])
    locals_ = project.locals
    assert locals_["root"] == "templates"            # relative, as given (Go's filepath.Dir / the folder)
    assert locals_["cwd"] == str(repo)
    assert locals_["own"] == "beside the template" and locals_["from_cwd"] == "beside the caller"
    assert locals_["rendered"] == "hello from-var-file"
    assert locals_["absolute"] == str(repo / "templates")


def test_run_from_the_template_directory(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo / "templates")
    (repo / "templates" / "vars").mkdir()
    (repo / "templates" / "vars" / "b.txt").write_text("next to the template now")
    project = load(Path("x.pkr.hcl"))
    assert project.locals["root"] == "." and project.locals["cwd"] == str(repo / "templates")
    assert project.locals["from_cwd"] == "next to the template now"


# path.root for each spelling of the template argument, as the packer binary prints it (checked with packer 1.6.6;
# hcl2template's Basedir is the folder argument unchanged, or filepath.Dir of a file, which cleans it).
SPELLINGS = [("tpl", "tpl"), ("tpl/", "tpl/"), ("./tpl", "./tpl"), ("./tpl/", "./tpl/"),
             ("tpl/../tpl", "tpl/../tpl"), ("./tpl/t.pkr.hcl", "tpl"), ("tpl/../tpl/t.pkr.hcl", "tpl"),
             ("tpl/t.pkr.hcl", "tpl")]


def _console_root(cwd: Path, argument: str, binary: list[str]) -> str:
    proc = subprocess.run([*binary, "console", argument], cwd=cwd, input="path.root\n", capture_output=True,
                          text=True, timeout=120, check=True)
    return proc.stdout.strip().splitlines()[-1]


def _tpl(tmp_path: Path) -> Path:
    (tmp_path / "tpl").mkdir()
    (tmp_path / "tpl" / "t.pkr.hcl").write_text('source "null" "a" {\n  communicator = "none"\n}\n'
                                                'build {\n  sources = ["source.null.a"]\n}\n')
    return tmp_path


@pytest.mark.parametrize(("argument", "root"), SPELLINGS)
def test_path_root_keeps_the_template_argument_as_typed(tmp_path: Path, argument: str, root: str) -> None:
    assert _console_root(_tpl(tmp_path), argument, [sys.executable, "-m", "factory"]) == root


@pytest.mark.parametrize(("argument", "root"), SPELLINGS)
def test_path_root_spellings_match_the_packer_binary(tmp_path: Path, argument: str, root: str) -> None:
    assert _console_root(_tpl(tmp_path), argument, ["packer"]) == root
