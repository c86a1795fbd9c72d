"""Legacy Packer JSON templates: read as their HCL2 upgrade (validate, inspect, build) and `factory hcl2_upgrade`."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from fixtures.grubvm import grub_image
from fixtures.sshd import SshServer

from factory.errors import FactoryError
from factory.template import load
from factory.template.fmt import format_text
from factory.template.legacy import upgrade

LEGACY: dict[str, Any] = {
    "min_packer_version": "1.5.0",
    "variables": {
        "greeting": "hello",
        "disk": "{{env `LEGACY_DISK`}}",
        "name": "vm-{{user `greeting`}}",
        "password": "s3cret-legacy-pw",
        "cpus": 2,
    },
    "sensitive-variables": ["password"],
    "builders": [
        {"type": "qemu", "iso_url": "grub.img", "iso_checksum": "none", "disk_image": True, "headless": True,
         "vm_name": "{{user `name`}}-{{timestamp}}", "ssh_username": "root",
         "boot_command": ["<esc><wait>", "url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/x ${literal}<enter>"]},
        {"type": "qemu", "name": "second", "iso_url": "grub.img", "iso_checksum": "none", "disk_image": True,
         "ssh_username": "root"},
    ],
    "provisioners": [
        {"type": "shell", "inline": ["echo {{user `greeting`}} {{build_name}} {{template_dir}} {{uuid}}"],
         "only": ["qemu"]},
        {"type": "shell-local", "inline": ["echo {{isotime `2006`}} {{packer_version}} {{pwd}}"],
         "override": {"second": {"inline": ["echo overridden"]}}},
    ],
    "post-processors": ["checksum", [{"type": "manifest", "output": "m.json"}, {"type": "checksum"}]],
}


def factory(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "factory", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, check=False)


def test_upgrade_writes_packers_hcl2_shape(golden: Any) -> None:
    out = upgrade(LEGACY, "legacy.json").text
    golden("template/legacy-upgrade.pkr.hcl", out)
    assert format_text(out) == out
    for hcl in ('variable "password" {\n  type      = string\n  default   = "s3cret-legacy-pw"\n  sensitive = true',
                'default = "${env("LEGACY_DISK")}"', 'name = "vm-${var.greeting}"',
                'vm_name      = "${local.name}-${local.timestamp}"',
                '"url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/x $${literal}',
                'source "qemu" "second"', '"echo ${var.greeting} ${source.name} ${path.root} ${uuidv4()}"',
                'only   = ["qemu.qemu"]', '"echo ${legacy_isotime("2006")} ${packer.version} ${path.cwd}"',
                '"qemu.second" = {', 'post-processor "checksum" {}',
                "post-processors {\n    post-processor \"manifest\""):
        assert hcl in out, hcl


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "legacy.json").write_text(json.dumps(LEGACY, indent=2))
    (tmp_path / "grub.img").write_bytes(b"")
    return tmp_path


def test_legacy_template_validates_and_its_upgrade_inspects_the_same(tree: Path) -> None:
    assert factory("validate", "legacy.json", cwd=tree).stdout == "The configuration is valid.\n"
    upgraded = factory("hcl2_upgrade", "legacy.json", cwd=tree)
    assert upgraded.returncode == 0 and "legacy.json.pkr.hcl" in upgraded.stdout, upgraded.stderr
    assert factory("validate", "legacy.json.pkr.hcl", cwd=tree).returncode == 0
    shown = factory("inspect", "legacy.json.pkr.hcl", cwd=tree).stdout
    assert "qemu.second" in shown and "s3cret-legacy-pw" not in shown


INSPECTED = """Packer Inspect: JSON mode
Required variables:

  region

Optional variables and their defaults:

  cpus     = 2
  disk     = {{env `LEGACY_DISK`}}
  greeting = hello
  name     = vm-{{user `greeting`}}
  password = <sensitive>

Builders:

  qemu{pad}
  second (qemu)

Provisioners:

  shell
  shell-local

Note: If your build names contain user variables or template
functions such as 'timestamp', these are processed at build time,
and therefore only show in their raw form here.
""".replace("{pad}", "  ")   # Packer pads a builder name to the longest one, even with no type after it


def test_legacy_inspect_is_packers_json_mode_layout(tree: Path) -> None:
    """As Packer's Core.InspectConfig prints it: defaults as written, a required (null) variable need not be set."""
    data = dict(LEGACY, variables={**LEGACY["variables"], "cpus": "2", "region": None})
    (tree / "legacy.json").write_text(json.dumps(data, indent=2))
    assert factory("inspect", "legacy.json", cwd=tree).stdout == INSPECTED


def test_legacy_inspect_matches_the_packer_binary(tree: Path) -> None:
    data = dict(LEGACY, variables={**LEGACY["variables"], "cpus": "2", "region": None}, description="Two\nlines")
    (tree / "legacy.json").write_text(json.dumps(data, indent=2))
    packer = subprocess.run(["packer", "inspect", "legacy.json"], cwd=tree, capture_output=True, text=True,
                            timeout=120, check=True)
    assert factory("inspect", "legacy.json", cwd=tree).stdout == packer.stdout


def test_only_names_a_legacy_builder(tree: Path) -> None:
    project = load(tree / "legacy.json", only=["second"])
    assert [s.full_name for b in project.builds for s in b.sources] == ["qemu.second"]
    project = load(tree / "legacy.json", except_=["second"])
    assert [s.full_name for b in project.builds for s in b.sources] == ["qemu.qemu"]


def test_undeclared_user_variables_come_from_var_files_or_render_empty(tmp_path: Path) -> None:
    """Legacy Packer (checked with packer 1.6.6): `{{user `x`}}` for an x the template does not declare takes
    -var / -var-file values, and renders "" when unset."""
    (tmp_path / "t.json").write_text(json.dumps({
        "variables": {"a": "1"},
        "builders": [{"type": "null", "communicator": "none"}],
        "provisioners": [{"type": "shell-local", "inline": ["a={{user `a`}} b={{user `b`}} c={{user `c`}}"]}]}))
    (tmp_path / "v.json").write_text('{"b": "2"}')
    project = load(tmp_path / "t.json", var_files=[tmp_path / "v.json"], vars=["c=3"], env={})
    assert project.builds[0].provisioners[0].config.inline == ["a=1 b=2 c=3"]  # type: ignore[attr-defined]
    unset = load(tmp_path / "t.json", env={})
    assert unset.builds[0].provisioners[0].config.inline == ["a=1 b= c="]  # type: ignore[attr-defined]
    text = upgrade(json.loads((tmp_path / "t.json").read_text()), "t.json").text
    assert 'variable "b" {\n  type    = string\n  default = ""\n}' in text


def test_legacy_string_functions_and_parenthesised_arguments(tmp_path: Path) -> None:
    """Packer's legacy replace / replace_all / split with (user `v`) arguments; the expected line is what
    packer 1.6.6 printed for this template."""
    line = ("A={{ replace \"-\" \"+\" 0 (user `v`) }} B={{ replace \"-\" \"+\" 1 (user `v`) }} "
            "C={{ replace \"-\" \"+\" 5 (user `v`) }} E={{ replace \"-\" \"+\" -1 (user `v`) }} "
            "F=[{{ replace \"-\" \"+\" 1 (user `e`) }}] G={{ split \"x-y\" \"-\" 1 }} "
            "R={{ replace_all \"-\" \"_\" (user `v`) }} U={{ upper (user `v`) }} K={{ .Path }}")
    (tmp_path / "t.json").write_text(json.dumps({
        "variables": {"v": "a-b-c", "e": ""}, "builders": [{"type": "null", "communicator": "none"}],
        "provisioners": [{"type": "shell-local", "inline": [line]}]}))
    (build,) = load(tmp_path / "t.json", env={}).builds
    assert build.provisioners[0].config.inline == [  # type: ignore[attr-defined]
        "A=a-b-c B=a+b-c C=a+b+c E=a+b+c F=[] G=y R=a_b_c U=A-B-C K={{ .Path }}"]


@pytest.mark.parametrize(("text", "message"), [
    ('{"builders": [\n  {"type": "qemu",}\n]}', "invalid JSON"),
    ('{"builders": [{"iso_url": "x"}]}', 'builders[0] has no "type"'),
    ('{"builders": []}', "the template has no builders"),
])
def test_broken_legacy_templates_are_refused_clearly(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "bad.json").write_text(text)
    with pytest.raises(FactoryError) as err:
        load(tmp_path / "bad.json")
    assert message in err.value.message
    if message == "invalid JSON":
        assert err.value.where is not None and err.value.where.line == 2


@pytest.mark.vm
def test_legacy_json_qemu_template_builds_end_to_end(tmp_path: Path, sshd: SshServer) -> None:
    """A real QEMU guest (GRUB) with skip_nat_mapping: the host's sshd stands in for the guest's SSH server."""
    name = f"legacy-{uuid.uuid4().hex[:8]}"
    work = tmp_path / "t"
    work.mkdir()
    image = grub_image(work)
    key = sshd.keypair.write_private(work / "id_ed25519")
    marker = tmp_path / f"{name}.txt"
    template = {
        "variables": {"greeting": "HELLO-LEGACY", "who": "{{env `LEGACY_WHO`}}"},
        "builders": [{
            "type": "qemu", "name": "grub", "iso_url": image.name, "iso_checksum": "none", "disk_image": True,
            "format": "raw", "accelerator": "tcg", "headless": True, "memory": 256, "vm_name": name,
            "skip_nat_mapping": True, "ssh_host": "127.0.0.1", "ssh_port": sshd.port,
            "ssh_username": sshd.username, "ssh_private_key_file": str(key), "shutdown_timeout": "5s",
        }],
        "provisioners": [
            {"type": "shell", "inline": ["echo {{user `greeting`}} from {{build_name}} for {{user `who`}}"]},
            {"type": "shell-local", "inline": [f"echo {{{{template_dir}}}} > {marker}"]},
        ],
        "post-processors": [{"type": "manifest", "output": "manifest.json"}],
    }
    (work / "legacy.json").write_text(json.dumps(template, indent=2))
    env = {"LEGACY_WHO": "TESTER"}
    result = subprocess.run([sys.executable, "-m", "factory", "build", "-only=grub", "legacy.json"], cwd=work,
                            capture_output=True, text=True, timeout=900, check=False,
                            env={**__import__("os").environ, **env, "FACTORY_CACHE_DIR": str(tmp_path / "cache")})
    text = result.stdout + result.stderr
    assert result.returncode == 0, text
    assert "HELLO-LEGACY from grub for TESTER" in text
    assert marker.read_text().strip() == str(work.resolve())
    manifest = json.loads((work / "manifest.json").read_text())
    assert manifest["builds"][0]["name"] == "grub" and manifest["builds"][0]["builder_type"] == "qemu"
    artifact = Path(manifest["builds"][0]["files"][0]["name"])
    assert (work / artifact if not artifact.is_absolute() else artifact).is_file()
