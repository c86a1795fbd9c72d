"""Every option Packer documents for the qemu builder and the communicators is accepted (the lists in
tests/data/packer_options/ were extracted from the plugins' own generated docs); deprecated spellings are read
as the current option with a warning; options factory does not act on say so at file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from factory.options import Kind, Support, options_of
from factory.schema import lookup
from factory.template import load

DATA = Path(__file__).parent.parent / "data" / "packer_options"

# Packer type names in the docs -> the Python types factory declares for them.
# Durations and sizes are declared typed (factory.schema.types): written as Packer's strings, read as numbers.
_TYPES = {"string": {"str", "size"}, "bool": {"bool"}, "int": {"int"}, "duration": {"duration"},
          "[]string": {"list[str]", "list[size]"},
          "[][]string": {"list[list[str]]"}, "map[string]string": {"dict[str, str]"},
          "QemuImgArgs": {"dict[str, list[str]]"}, "uint": {"int"}, "[]uint": {"list[int]"}}


def documented(name: str) -> list[tuple[str, str]]:
    rows = []
    for line in (DATA / name).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            option, tp, _section = line.split("\t")
            rows.append((option, tp))
    return rows


@pytest.mark.parametrize(("source", "lists"), [("qemu", ["qemu.txt", "communicator.txt"]),
                                               ("null", ["communicator.txt"]),
                                               ("virtualbox-iso", ["virtualbox-iso.txt", "communicator.txt"]),
                                               ("virtualbox-ovf", ["virtualbox-ovf.txt", "communicator.txt"]),
                                               ("virtualbox-vm", ["virtualbox-vm.txt", "communicator.txt"])])
def test_every_documented_option_is_declared_with_packers_type(source: str, lists: list[str]) -> None:
    cls = lookup(Kind.SOURCE, source)
    assert cls is not None
    declared = {o.name: o for o in options_of(cls)}
    aliases = getattr(cls, "ALIASES", {})
    missing, wrong = [], []
    for file in lists:
        for option, tp in documented(file):
            info = declared.get(aliases.get(option, option))
            if info is None:
                missing.append(option)
            elif info.type_name.replace(" | None", "") not in _TYPES[tp]:
                wrong.append(f"{option}: {info.type_name} for Packer's {tp}")
    assert missing == [] and wrong == []


def test_deprecated_spellings_are_the_current_options_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "t.pkr.hcl").write_text("""
source "qemu" "x" {
  iso_url           = "d.img"
  iso_checksum      = "none"
  ssh_username      = "u"
  ssh_wait_timeout  = "42m"
  ssh_host_port_min = 3000
  ssh_host_port_max = 3010
  host_port_max     = 3020
  ssh_disable_agent = true
}
build { sources = ["source.qemu.x"] }
""")
    project = load(tmp_path / "t.pkr.hcl")
    config = project.builds[0].sources[0].config
    assert (config.ssh_timeout, config.host_port_min, config.host_port_max) == (42 * 60, 3000, 3020)
    assert config.ssh_disable_agent_forwarding is True
    assert any("t.pkr.hcl:6: source.qemu.x.ssh_wait_timeout is deprecated" in w and "ssh_timeout" in w
               for w in project.warnings)


def test_options_not_acted_on_are_few_and_warned_with_file_and_line(tmp_path: Path) -> None:
    ignored = sorted(o.name for o in options_of(lookup(Kind.SOURCE, "qemu"))  # type: ignore[arg-type]
                     if o.support is Support.IGNORED)
    # (winrm_* are acted on by refusal: `factory build` refuses the winrm communicator before any VM starts.)
    assert ignored == ["http_interface", "net_bridge", "run_once"]
    (tmp_path / "t.pkr.hcl").write_text("""
source "qemu" "x" {
  iso_url      = "d.img"
  iso_checksum = "none"
  ssh_username = "u"
  run_once     = true
}
build { sources = ["source.qemu.x"] }
""")
    project = load(tmp_path / "t.pkr.hcl")
    assert any(w.endswith("t.pkr.hcl:6: source.qemu.x.run_once is accepted for compatibility but not acted on by "
                          "factory") for w in project.warnings)


@pytest.mark.parametrize(("provisioner", "listed"), [("ansible", "ansible.txt"),
                                                     ("ansible-local", "ansible-local.txt")])
def test_every_documented_ansible_option_is_declared_with_packers_type(provisioner: str, listed: str) -> None:
    cls = lookup(Kind.PROVISIONER, provisioner)
    assert cls is not None
    declared = {o.name: o for o in options_of(cls)}
    missing = [option for option, _ in documented(listed) if option not in declared]
    wrong = [f"{option}: {declared[option].type_name}" for option, tp in documented(listed)
             if option in declared and declared[option].type_name.replace(" | None", "") not in _TYPES[tp]]
    assert missing == [] and wrong == []


@pytest.mark.parametrize(("post_processor", "listed"), [("vagrant-cloud", "vagrant-cloud.txt"),
                                                        ("vagrant-registry", "vagrant-registry.txt")])
def test_every_documented_vagrant_publisher_option_is_declared_with_packers_type(post_processor: str,
                                                                                 listed: str) -> None:
    cls = lookup(Kind.POST_PROCESSOR, post_processor)
    assert cls is not None
    declared = {o.name: o for o in options_of(cls)}
    missing = [option for option, _ in documented(listed) if option not in declared]
    wrong = [f"{option}: {declared[option].type_name}" for option, tp in documented(listed)
             if option in declared and declared[option].type_name.replace(" | None", "") not in _TYPES[tp]]
    assert missing == [] and wrong == []


def test_every_documented_packer_core_provisioner_and_post_processor_option_is_declared() -> None:
    kinds = {"provisioner": Kind.PROVISIONER, "post-processor": Kind.POST_PROCESSOR}
    types = {**_TYPES, "[]int": {"list[int]"}}
    missing, wrong = [], []
    for line in (DATA / "core.txt").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        kind, component, option, tp = line.split("\t")
        cls = lookup(kinds[kind], component)
        assert cls is not None, f"{kind} {component}"
        info = {o.name: o for o in options_of(cls)}.get(option)
        if info is None:
            missing.append(f"{kind} {component}: {option}")
        elif info.type_name.replace(" | None", "") not in types[tp]:
            wrong.append(f"{kind} {component}: {option} is {info.type_name} for Packer's {tp}")
    assert missing == [] and wrong == []
