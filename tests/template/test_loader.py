"""load(): the Project model from real template folders (variables, locals, sources, builds, filters)."""

from __future__ import annotations

from pathlib import Path

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
