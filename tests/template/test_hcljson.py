"""`*.pkr.json` templates (HCL's JSON syntax) load as the HCL they stand for, alone or beside *.pkr.hcl files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from factory.errors import FactoryError
from factory.template import load

TEMPLATE = {
    "//": "comments are keys named //",
    "packer": {"required_plugins": {"qemu": {"version": ">= 1.0.0", "source": "github.com/hashicorp/qemu"}}},
    "variable": {
        "iso": {"type": "string", "default": "https://example.com/d.iso"},
        "sizes": {"type": "list(number)", "default": [1, 2]},
        "password": {"type": "string", "default": "p4ss-${x}", "sensitive": True,
                     "validation": {"condition": "${length(var.password) > 3}", "error_message": "too short"}},
    },
    "locals": {"name": "deb-${var.sizes[0]}", "sizes": "${var.sizes}"},
    "source": {"qemu": {"deb": {
        "iso_url": "${var.iso}", "iso_checksum": "none", "ssh_username": "root", "ssh_password": "${var.password}",
        "boot_command": ['<esc> url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/p.cfg "q"<enter>'],
        "qemu_img_args": {"create": ["-o", "preallocation=off"]}, "vm_name": "${local.name}", "cpus": 2,
    }}},
    "build": [{
        "name": "one",
        "sources": ["source.qemu.deb"],
        "provisioner": [
            {"shell": {"inline": ['echo ${upper("hi")} {{ .Path }} C:\\dir']}},
            {"shell-local": {"inline": ["true"]}},
        ],
        "post-processor": {"manifest": {"output": "m.json"}},
    }],
}


def test_a_json_syntax_template_loads_as_its_hcl(tmp_path: Path) -> None:
    (tmp_path / "t.pkr.json").write_text(json.dumps(TEMPLATE, indent=2))
    project = load(tmp_path / "t.pkr.json", env={})
    assert project.variables["password"].value == "p4ss-${x}"   # a default is a literal: no interpolation
    assert project.locals["name"] == "deb-1" and project.locals["sizes"] == [1, 2]   # one interpolation keeps type
    (build,) = project.builds
    (source,) = build.sources
    assert source.config.iso_url == "https://example.com/d.iso"
    assert source.config.boot_command == ['<esc> url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/p.cfg "q"<enter>']
    assert list(source.config.qemu_img_args.create) == ["-o", "preallocation=off"]
    shell, local = build.provisioners
    assert shell.config.inline == ["echo HI {{ .Path }} C:\\dir"] and local.config.inline == ["true"]
    assert [p.type for chain in build.post_processors for p in chain] == ["manifest"]


def test_a_folder_reads_pkr_json_beside_pkr_hcl(tmp_path: Path) -> None:
    (tmp_path / "vars.pkr.json").write_text(json.dumps({"variable": {"cpus": {"type": "number", "default": 3}}}))
    (tmp_path / "main.pkr.hcl").write_text('source "qemu" "a" {\n  iso_url = "a.iso"\n  iso_checksum = "none"\n'
                                           '  cpus = var.cpus\n}\nbuild {\n  sources = ["source.qemu.a"]\n}\n')
    (tmp_path / "x.pkrvars.json").write_text('{"cpus": 5}')
    project = load(tmp_path, var_files=[tmp_path / "x.pkrvars.json"], env={})
    assert project.builds[0].sources[0].config.cpus == 5


def test_invalid_json_is_one_located_error(tmp_path: Path) -> None:
    (tmp_path / "t.pkr.json").write_text('{\n  "variable": {\n    "a": {"default": 1,}\n  }\n}\n')
    with pytest.raises(FactoryError) as err:
        load(tmp_path / "t.pkr.json", env={})
    assert err.value.where is not None and err.value.where.line == 3 and "invalid JSON" in err.value.message


def test_a_block_given_a_scalar_is_refused_by_validate(tmp_path: Path) -> None:
    (tmp_path / "t.pkr.json").write_text('{"source": {"qemu": "nope"}}')
    proc = subprocess.run([sys.executable, "-m", "factory", "validate", str(tmp_path / "t.pkr.json")],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and '"source" is a block' in proc.stderr and "Traceback" not in proc.stderr


DYNAMIC_HCL = """
variable "img_args" {
  default = { convert = "-c", create = "preallocation=off" }
}
variable "steps" {
  default = ["one", "two"]
}
locals {
  dynamic = "just a local"
}
source "qemu" "a" {
  iso_url      = "a.iso"
  iso_checksum = "none"
  dynamic "qemu_img_args" {
    for_each = { create = "preallocation=off" }
    iterator = arg
    content {
      convert = [var.img_args[arg.key]]
      create  = ["-o", arg.value]
    }
  }
}
build {
  sources = ["source.qemu.a"]
  dynamic "provisioner" {
    for_each = var.steps
    labels   = ["shell"]
    content {
      inline = ["echo ${provisioner.key}: ${provisioner.value}"]
    }
  }
  post-processors {
    dynamic "post-processor" {
      for_each = ["m1.json", "m2.json"]
      iterator = out
      labels   = ["manifest"]
      content {
        output = out.value
      }
    }
  }
}
"""

DYNAMIC_JSON = {
    "variable": {"img_args": {"default": {"convert": "-c", "create": "preallocation=off"}},
                 "steps": {"default": ["one", "two"]}},
    "locals": {"dynamic": "just a local"},
    "source": {"qemu": {"a": {
        "iso_url": "a.iso", "iso_checksum": "none",
        "dynamic": {"qemu_img_args": {
            "for_each": "${{ create = \"preallocation=off\" }}", "iterator": "arg",
            "content": {"convert": ["${var.img_args[arg.key]}"], "create": ["-o", "${arg.value}"]}}},
    }}},
    "build": {
        "sources": ["source.qemu.a"],
        "dynamic": {"provisioner": {
            "for_each": "${var.steps}", "labels": ["shell"],
            "content": {"inline": ["echo ${provisioner.key}: ${provisioner.value}"]}}},
        "post-processors": {"dynamic": {"post-processor": {
            "for_each": ["m1.json", "m2.json"], "iterator": "out", "labels": ["manifest"],
            "content": {"output": "${out.value}"}}}},
    },
}


def _summary(project: object) -> tuple[object, ...]:
    (build,) = project.builds  # type: ignore[attr-defined]
    args = build.sources[0].config.qemu_img_args
    return (tuple(args.convert), tuple(args.create), [p.type for p in build.provisioners],
            [p.config.inline for p in build.provisioners],
            [(p.type, p.config.output) for chain in build.post_processors for p in chain],
            project.locals["dynamic"])  # type: ignore[attr-defined]


def test_dynamic_blocks_in_json_syntax_do_what_they_do_in_hcl(tmp_path: Path) -> None:
    (tmp_path / "hcl").mkdir()
    (tmp_path / "json").mkdir()
    (tmp_path / "hcl" / "t.pkr.hcl").write_text(DYNAMIC_HCL)
    (tmp_path / "json" / "t.pkr.json").write_text(json.dumps(DYNAMIC_JSON, indent=2))
    from_json = _summary(load(tmp_path / "json" / "t.pkr.json", env={}))
    assert from_json == _summary(load(tmp_path / "hcl" / "t.pkr.hcl", env={}))
    assert from_json == (("preallocation=off",), ("-o", "preallocation=off"), ["shell", "shell"],
                         [["echo 0: one"], ["echo 1: two"]], [("manifest", "m1.json"), ("manifest", "m2.json")],
                         "just a local")


def test_json_dynamic_blocks_may_be_a_list_of_objects(tmp_path: Path) -> None:
    doc = {"source": {"null": {"n": {"communicator": "none"}}},
           "build": {"sources": ["source.null.n"], "post-processors": [
               {"dynamic": [{"post-processor": {"for_each": ["a"], "labels": ["manifest"],
                                                "content": {"output": "${post-processor.value}.json"}}},
                            {"post-processor": {"for_each": ["b"], "labels": ["checksum"],
                                                "content": {"checksum_types": ["sha256"]}}}]}]}}
    (tmp_path / "t.pkr.json").write_text(json.dumps(doc))
    (build,) = load(tmp_path / "t.pkr.json", env={}).builds
    assert [p.type for chain in build.post_processors for p in chain] == ["manifest", "checksum"]
    assert build.post_processors[0][0].config.output == "a.json"  # type: ignore[attr-defined]


def test_a_dynamic_iterator_that_is_not_a_name_is_a_clear_error(tmp_path: Path) -> None:
    doc = {"source": {"null": {"n": {"communicator": "none"}}},
           "build": {"sources": ["source.null.n"],
                     "dynamic": {"provisioner": {"for_each": ["x"], "iterator": "${bad}", "labels": ["shell-local"],
                                                 "content": {"inline": ["true"]}}}}}
    (tmp_path / "t.pkr.json").write_text(json.dumps(doc))
    with pytest.raises(FactoryError, match='dynamic "provisioner": iterator must be a name'):
        load(tmp_path / "t.pkr.json", env={})
