"""A realistic multi-OS, multi-hypervisor template folder (tests/template/data/multi-os), loaded the way Packer
would: shared sources for qemu, virtualbox-iso and a hyperv-iso factory lacks, per-OS var files, nested
conditionals in locals, try(), env() in a default, an unknown data source and a conditional `except`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from factory import secrets
from factory.errors import FactoryError
from factory.template import Project, load
from factory.template.inspect import render_inspect

DATA = Path(__file__).parent / "data" / "multi-os"
HAVE = ["qemu.*", "virtualbox-iso.*"]


def _load(os_file: str, env: dict[str, str] | None = None, **kw: Any) -> Project:
    kw.setdefault("only", HAVE)
    return load(DATA, var_files=[DATA / os_file], env=env or {}, **kw)


@pytest.mark.parametrize("os_file", ["debian.pkrvars.hcl", "ubuntu.pkrvars.hcl", "rocky.pkrvars.json"])
def test_inspect_matches_golden(os_file: str, golden: Any) -> None:
    project = _load(os_file)
    text = render_inspect(project, project.sensitive_locals)
    golden(f"template/inspect-{os_file.split('.')[0]}.txt", text)
    assert "vagrant-secret" not in text


def test_sources_are_typed_configs_with_evaluated_values() -> None:
    project = _load("debian.pkrvars.hcl")
    (build,) = project.builds
    qemu, vbox = build.sources
    assert (qemu.full_name, vbox.full_name) == ("qemu.linux", "virtualbox-iso.linux")
    q: Any = qemu.config
    assert q.vm_name == "debian-12-amd64" and q.cpus == 4 and q.memory == 4096 and q.disk_size == 40960
    assert q.http_directory == str(DATA.resolve() / "http")
    assert q.boot_wait == 5.0 and q.boot_command[1].endswith("{{ .HTTPIP }}:{{ .HTTPPort }}/preseed.cfg<enter>")
    v: Any = vbox.config
    # try() returns the optional attribute's null (no error), and null means "unset": the declared default.
    assert v.guest_os_type == "Debian_64" and v.nic_type == "virtio" and v.gfx_vram_size == 4
    ubuntu: Any = _load("ubuntu.pkrvars.hcl").builds[0].sources[1].config
    assert (ubuntu.gfx_vram_size, ubuntu.nic_type, ubuntu.guest_os_type) == (33, "82540EM", "Ubuntu_64")
    assert v.vboxmanage == [["modifyvm", "{{ .Name }}", "--nat-localhostreachable1", "on"]]
    assert secrets.mask(q.shutdown_command) == "echo '<sensitive>' | sudo -S shutdown -P now"


def test_provisioners_are_evaluated_per_source_with_conditional_except() -> None:
    (build,) = _load("debian.pkrvars.hcl").builds
    packages, additions, motd, local = build.provisioners
    assert packages.config_for("qemu.linux").environment_vars == [  # type: ignore[attr-defined]
        "PACKAGES=openssh-server sudo", "BUILDER=qemu"]
    assert packages.config_for("virtualbox-iso.linux").environment_vars[1] == (  # type: ignore[attr-defined]
        "BUILDER=virtualbox-iso")
    assert not additions.applies_to("qemu.linux") and additions.applies_to("virtualbox-iso.linux")
    assert motd.config.content == "Welcome to debian-12-amd64.\nMaintained by factory.\n"  # type: ignore[attr-defined]
    assert (local.pause_before, local.timeout, packages.max_retries) == (5.0, 120.0, 2)
    assert build.error_cleanup_provisioner is not None
    compress = build.post_processors[1][1]
    assert compress.applies_to("qemu.linux") and not compress.applies_to("virtualbox-iso.linux")
    assert compress.keep_input_artifact is True


def test_rocky_headful_build_runs_guest_additions_everywhere() -> None:
    (build,) = _load("rocky.pkrvars.json").builds
    assert build.provisioners[1].applies_to("qemu.linux")
    assert build.sources[1].config.guest_os_type == "RedHat_64"  # type: ignore[attr-defined]


def test_env_default_and_precedence() -> None:
    # Packer's order (collectInputVariableValues): default < PKR_VAR_ < auto var files < -var-file < -var.
    sha = "sha256:" + "0" * 64
    env = {"FACTORY_TEST_BUILD_USER": "alice", "PKR_VAR_memory": "1024", "PKR_VAR_cpus": "3",
           "PKR_VAR_arch": "arm64", "FACTORY_VAR_arch": "riscv64", "PKR_VAR_iso_checksum": sha}
    project = _load("debian.pkrvars.hcl", env=env, vars=["memory=512"])
    assert project.locals["owner"] == "alice"
    assert project.variables["arch"].value == "riscv64"             # default < PKR_VAR < FACTORY_VAR
    assert project.variables["iso_checksum"].value == sha           # default < PKR_VAR
    assert project.variables["cpus"].value == 4                     # PKR_VAR 3 < auto var file 4
    assert project.variables["memory"].value == 512                 # PKR_VAR < var file 4096 < -var 512
    assert _load("debian.pkrvars.hcl", env=env).variables["memory"].value == 4096
    assert project.variables["disk_size"].value == "40G"            # default "20G" < auto var file


def test_without_only_the_unknown_hyperv_source_is_an_error() -> None:
    with pytest.raises(FactoryError) as exc:
        _load("debian.pkrvars.hcl", only=[])
    assert 'unknown source type "hyperv-iso"' in exc.value.render()
    project = _load("debian.pkrvars.hcl", only=[], except_=["hyperv-iso.*"])
    assert [s.full_name for s in project.builds[0].sources] == ["qemu.linux", "virtualbox-iso.linux"]
    assert any("hyperv-iso.linux" in w and "not selected" in w for w in project.warnings)
    assert any('"amazon-ami"' in w for w in project.warnings)


def test_only_one_hypervisor_and_build_name_globs() -> None:
    (build,) = _load("ubuntu.pkrvars.hcl", only=["linux.virtualbox-iso.*"]).builds
    assert [s.full_name for s in build.sources] == ["virtualbox-iso.linux"]
    (build,) = _load("ubuntu.pkrvars.hcl", only=["*.linux"], except_=["hyperv-iso.linux", "qemu.linux"]).builds
    assert [s.full_name for s in build.sources] == ["virtualbox-iso.linux"]


def test_validation_message_from_the_template() -> None:
    with pytest.raises(FactoryError) as exc:
        _load("debian.pkrvars.hcl", vars=["os_name=arch"])
    assert "The os_name must be debian, ubuntu or rocky." in exc.value.render()
    assert "variables.pkr.hcl:5:5" in exc.value.render()


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "factory", *args], capture_output=True, text=True, env=full_env,
                          timeout=120, check=False)


def test_cli_validate_and_inspect() -> None:
    ok = _cli("validate", "-var-file", str(DATA / "debian.pkrvars.hcl"), "-only", "qemu.*,virtualbox-iso.*",
              str(DATA))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == "The configuration is valid.\n"
    assert "hyperv-iso.linux" in ok.stderr and "warning" in ok.stderr
    bad = _cli("validate", "-var", "os_name=arch", "-var", "cpus=many", str(DATA))
    assert bad.returncode == 1
    for part in ("The os_name must be debian, ubuntu or rocky.", 'invalid value for variable "cpus"',
                 'variable "os_version" is required but has no value', "Traceback"):
        assert (part in bad.stderr) is (part != "Traceback"), bad.stderr
    syntax = _cli("validate", "-syntax-only", str(DATA))
    assert syntax.returncode == 0 and "Syntax-only check passed" in syntax.stdout
    shown = _cli("inspect", "-var-file", str(DATA / "ubuntu.pkrvars.hcl"), "-only", "qemu.*", str(DATA))
    assert shown.returncode == 0, shown.stderr
    assert "var.ssh_password: \"<sensitive>\"" in shown.stdout and "vagrant-secret" not in shown.stdout
    assert "      qemu.linux\n\n    provisioners:" in shown.stdout
    # Like packer inspect (which prints the blocks without needing their plugins), every source written is
    # listed; one factory cannot build is also warned about.
    everything = _cli("inspect", "-var-file", str(DATA / "rocky.pkrvars.json"), str(DATA))
    assert everything.returncode == 0, everything.stderr
    assert "virtualbox-iso.linux" in everything.stdout and "      hyperv-iso.linux\n" in everything.stdout
    assert "source hyperv-iso.linux (type hyperv-iso, not implemented by factory) is left out" in everything.stderr
