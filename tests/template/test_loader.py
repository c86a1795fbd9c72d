"""load(): the Project model from real template folders (variables, locals, sources, builds, filters)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from factory.errors import FactoryError
from factory.template import load

SOURCES = """
variable "os" {
  type    = string
  default = "debian"
}
variable "password" {
  type      = string
  default   = "s3cret-pw"
  sensitive = true
}
locals {
  name    = "${var.os}-${local.version}"
  version = var.os == "debian" ? "12" : "24.04"
  ami     = try(data.amazon-ami.base.id, "none")
}
data "amazon-ami" "base" {
  region = "us-east-1"
}
source "qemu" "base" {
  iso_url      = "http://example/${local.name}.iso"
  iso_checksum = "none"
  ssh_username = "root"
  ssh_password = var.password
  boot_command = ["auto url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/preseed.cfg<enter>"]
}
source "hyperv-iso" "base" {
  whatever = 1
}
build {
  name    = "img"
  sources = ["source.qemu.base", "source.hyperv-iso.base"]
  provisioner "shell" {
    inline = ["echo ${source.name} ${build.Host}"]
    except = var.os == "debian" ? ["qemu.base"] : []
  }
  provisioner "shell" {
    inline       = ["echo hi"]
    pause_before = "10s"
    max_retries  = 2
  }
  post-processor "manifest" {}
  post-processors {
    post-processor "checksum" {
      checksum_types = ["sha256"]
    }
    post-processor "compress" {}
  }
}
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "main.pkr.hcl").write_text(SOURCES)
    return tmp_path


def test_load_selects_known_sources_and_builds_model(folder: Path) -> None:
    project = load(folder, only=["qemu.*"], env={})
    (build,) = project.builds
    assert build.name == "img"
    assert [s.full_name for s in build.sources] == ["qemu.base"]
    src = build.sources[0]
    assert src.config.iso_url == "http://example/debian-12.iso"  # type: ignore[attr-defined]
    assert src.config.boot_command == [  # type: ignore[attr-defined]
        "auto url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/preseed.cfg<enter>"]
    first, second = build.provisioners
    assert first.except_ == ("qemu.base",) and not first.applies_to("qemu.base")
    assert first.config_for("qemu.base").inline == ["echo base {{ .Host }}"]  # type: ignore[attr-defined]
    assert second.pause_before == 10.0 and second.max_retries == 2 and second.applies_to("qemu.base")
    assert [[p.type for p in chain] for chain in build.post_processors] == [["manifest"], ["checksum", "compress"]]
    assert project.locals["ami"] == "none"
    assert project.variables["password"].sensitive
    assert any("hyperv-iso.base" in w for w in project.warnings)


def test_selected_unknown_source_type_is_an_error(folder: Path) -> None:
    with pytest.raises(FactoryError) as exc:
        load(folder, env={})
    assert 'unknown source type "hyperv-iso"' in exc.value.render()


def _write(tmp_path: Path, text: str, name: str = "main.pkr.hcl") -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path


BASE = ('source "qemu" "a" {\n  iso_url = "a.iso"\n  iso_checksum = "none"\n}\n'
        'source "qemu" "b" {\n  iso_url = "b.iso"\n  iso_checksum = "none"\n}\n')


def test_provisioner_override_is_merged_and_revalidated(tmp_path: Path) -> None:
    _write(tmp_path, BASE + """
build {
  sources = ["source.qemu.a", "source.qemu.b"]
  provisioner "shell" {
    inline          = ["echo ${source.name}"]
    execute_command = "sh {{ .Path }}"
    override = {
      "qemu.b" = { execute_command = "sudo sh {{ .Path }}" }
    }
  }
}
""")
    (first,) = load(tmp_path, env={}).builds[0].provisioners
    a: Any = first.config_for("qemu.a")
    b: Any = first.config_for("qemu.b")
    assert (a.execute_command, a.inline) == ("sh {{ .Path }}", ["echo a"])
    assert (b.execute_command, b.inline) == ("sudo sh {{ .Path }}", ["echo b"])
    assert first.config.execute_command == "sh {{ .Path }}"  # type: ignore[attr-defined]


def test_bad_override_is_reported_at_validate_time(tmp_path: Path) -> None:
    _write(tmp_path, BASE + """
build {
  sources = ["source.qemu.a"]
  provisioner "shell" {
    inline   = ["x"]
    override = { "qemu.a" = { nonsense = 1 } }
  }
}
""")
    with pytest.raises(FactoryError) as exc:
        load(tmp_path, env={})
    assert 'unknown option "nonsense" for provisioner "shell"' in exc.value.render()


def test_blocks_factory_ignores_are_warned_about(tmp_path: Path) -> None:
    _write(tmp_path, BASE + """
communicator "ssh" "x" {}
build {
  sources = ["source.qemu.a"]
  hcp_packer_registry {
    bucket_name = "x"
  }
}
""")
    warnings = load(tmp_path, env={}).warnings
    assert any("communicator blocks are accepted but not acted on" in w for w in warnings)
    assert any("hcp_packer_registry is accepted but not acted on" in w for w in warnings)


def test_build_source_blocks_rename_and_override(tmp_path: Path) -> None:
    _write(tmp_path, BASE + """
build {
  name = "images"
  source "source.qemu.a" {
    name    = "small"
    memory  = 512
    vm_name = "vm-${source.name}"
  }
  source "qemu.a" {
    name = "big"
    memory = 8192
  }
}
""")
    (build,) = load(tmp_path, env={}).builds
    assert [s.full_name for s in build.sources] == ["qemu.small", "qemu.big"]
    small: Any = build.sources[0].config
    assert (small.memory, small.vm_name, small.iso_url) == (512, "vm-small", "a.iso")
    assert build.sources[1].config.memory == 8192  # type: ignore[attr-defined]
    (only_big,) = load(tmp_path, env={}, only=["images.qemu.big"]).builds
    assert [s.full_name for s in only_big.sources] == ["qemu.big"]


def test_data_sources_locals_blocks_and_contextual_variables(tmp_path: Path) -> None:
    _write(tmp_path, BASE + """
data "null" "release" {
  input = { codename = "bookworm", version = 12 }
}
data "http" "sums" {
  url = "https://example.invalid/SHA256SUMS"
}
variables {
  legacy = "old-style"
}
local "token" {
  expression = "tok-${data.null.release.output.codename}"
  sensitive  = true
}
locals {
  sums    = try(data.http.sums.body, "offline")
  can_sum = can(data.http.sums.body)
  version = packer.version
  root_ok = path.root != "" && path.cwd != ""
}
build {
  sources = ["source.qemu.a"]
  provisioner "shell" {
    inline = ["echo ${local.token} ${build.name}${build.PackerHTTPAddr} ${var.legacy}"]
  }
  provisioner "powershell" {
    inline = ["Write-Host hi"]
    only   = ["hyperv-iso.win"]
  }
}
""")
    project = load(tmp_path, env={})
    assert project.locals["token"] == "tok-bookworm"
    assert project.locals["sums"] == "offline" and project.locals["can_sum"] is False
    assert project.locals["version"] == "1.16.0" and project.locals["root_ok"] is True
    assert project.variables["legacy"].value == "old-style"
    prov, windows = project.builds[0].provisioners
    assert prov.config.inline == ["echo tok-bookworm {{ .PackerHTTPAddr }} old-style"]  # type: ignore[attr-defined]
    # powershell is declared (validates, inspect lists it); it applies to no selected source here
    assert windows.type == "powershell" and not windows.applies_to("qemu.a")
    assert any("http data source is not fetched" in w for w in project.warnings)
    from factory.template.inspect import render_inspect

    assert "local.token: \"<sensitive>\"" in render_inspect(project, project.sensitive_locals)


def test_single_file_template_and_typed_cli_values(tmp_path: Path) -> None:
    path = tmp_path / "one.pkr.hcl"
    path.write_text('variable "pkgs" {\n  type = list(string)\n}\nvariable "n" {\n  type = number\n}\n' + BASE
                    + 'build {\n  sources = ["source.qemu.a"]\n}\n')
    (tmp_path / "ignored.auto.pkrvars.hcl").write_text("n = 99\n")   # only folders load auto var files
    project = load(path, vars=['pkgs=["a", "b"]', "n=7"], env={})
    assert project.variables["pkgs"].value == ["a", "b"] and project.variables["n"].value == 7
    assert project.root == tmp_path.resolve()


def test_error_cleanup_and_post_processor_chains(tmp_path: Path) -> None:
    _write(tmp_path, BASE + """
build {
  sources = ["source.qemu.a", "source.qemu.b"]
  error-cleanup-provisioner "shell-local" {
    inline = ["echo cleanup"]
  }
  post-processor "checksum" {
    checksum_types = ["md5"]
    except         = ["qemu.b"]
  }
  post-processors {
    post-processor "artifice" {
      files = ["out/${source.name}.img"]
    }
    post-processor "manifest" {
      keep_input_artifact = false
    }
  }
}
""")
    (build,) = load(tmp_path, env={}).builds
    assert build.error_cleanup_provisioner is not None
    assert build.error_cleanup_provisioner.config.inline == ["echo cleanup"]  # type: ignore[attr-defined]
    (checksum,), (artifice, manifest) = build.post_processors
    assert checksum.applies_to("qemu.a") and not checksum.applies_to("qemu.b")
    assert artifice.config.files == ["out/a.img"]  # type: ignore[attr-defined]
    assert artifice.config_for("qemu.b").files == ["out/b.img"]  # type: ignore[attr-defined]
    assert manifest.keep_input_artifact is False and artifice.keep_input_artifact is None


def test_dynamic_blocks_generate_nested_and_build_blocks(tmp_path: Path) -> None:
    _write(tmp_path, """
variable "img_args" {
  default = { convert = "-c", create = "preallocation=off" }
}
variable "steps" {
  default = ["one", "two"]
}
source "qemu" "a" {
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
}
""")
    (build,) = load(tmp_path, env={}).builds
    args = build.sources[0].config.qemu_img_args  # type: ignore[attr-defined]
    assert (args.convert, args.create) == (("preallocation=off",), ("-o", "preallocation=off"))
    assert [p.config.inline for p in build.provisioners] == [["echo 0: one"], ["echo 1: two"]]  # type: ignore[attr-defined]


def test_step_that_applies_to_no_selected_source_only_warns(tmp_path: Path) -> None:
    _write(tmp_path, BASE + """
build {
  sources = ["source.qemu.a"]
  provisioner "shell" {
    inline = [source.name == "a" ? "echo" : "x"]
  }
  provisioner "shell" {
    only   = ["vmware-iso.win"]
    inline = [data.vsphere.x.y.z]
  }
}
""")
    project = load(tmp_path, env={})
    assert len(project.builds[0].provisioners) == 1
    assert any("provisioner[1] applies to no selected source and was skipped" in w for w in project.warnings)


def test_unused_plugin_data_source_is_still_warned_about(tmp_path: Path) -> None:
    _write(tmp_path, BASE + 'data "sshkey" "install" {}\nbuild {\n  sources = ["source.qemu.a"]\n}\n')
    assert any('data source "sshkey" comes from a plugin' in w for w in load(tmp_path, env={}).warnings)


def test_host_info_data_source_describes_this_machine(tmp_path: Path) -> None:
    """bento picks accelerator and firmware paths from data.host-info.this.os_type: it must be known, not unknown."""
    _write(tmp_path, BASE + """
data "host-info" "this" {}
locals {
  accel = data.host-info.this.os_type == "darwin" ? "hvf" : "kvm"
  arch  = data.host-info.this.architecture
}
build {
  sources = ["source.qemu.a"]
}
""")
    project = load(tmp_path, env={})
    assert project.locals["accel"] == "kvm"
    assert project.locals["arch"] in {"amd64", "arm64"}
    assert not any("host-info" in w for w in project.warnings)


def test_host_info_reads_os_release_as_gopsutil_does(tmp_path: Path) -> None:
    from factory.template.hostinfo import host_info
    release = tmp_path / "os-release"
    release.write_text('NAME="Rocky Linux"\nID="rocky"\nVERSION_ID="9.4"\n')
    info = host_info(release)
    assert (info["os_type"], info["platform"], info["version"], info["family"]) == ("linux", "rocky", "9.4", "rhel")
