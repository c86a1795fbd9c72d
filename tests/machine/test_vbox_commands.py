"""The exact VBoxManage command lines of the example VirtualBox templates, held in golden files
(tests/golden/machine/virtualbox-*.commands; `pytest --regen` rewrites them for review as a diff).

virtualbox-iso: rendered from the template's typed options by factory.machine.vbox_commands, the functions the
build steps call, in the order the steps run them (scratch paths and the SSH port replaced by placeholders).
virtualbox-ovf: the command lines a real build through the VBoxManage stand-in ran are compared to its golden
file in tests/test_build_vbox.py."""

from __future__ import annotations

from pathlib import Path

from factory.machine import vbox_commands as cmd
from factory.placeholders import expand
from factory.schema.virtualbox import VirtualBoxIsoSource
from factory.template import load

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "debian-virtualbox"
WORK = Path("$WORK")


def iso_build_commands(cfg: VirtualBoxIsoSource, name: str) -> list[list[str]]:
    """What `factory build` runs for a virtualbox-iso source, step by step (factory.steps.vbox)."""
    iso = cmd.Dvd("boot_iso", Path("$ISO"), cfg.iso_interface)
    values = {"Name": name, "HTTPIP": "10.0.2.2", "HTTPPort": "$HTTP_PORT", "SSHHostPort": "$SSH_PORT"}
    out = cmd.register_iso_vm(cfg, name, WORK / "vms", [iso], "$HOST:$PID:$RUN_UUID", "$VM_UUID")
    out += [cmd.serial_to_file(name, WORK / f"{name}.serial.log"),
            cmd.attach_dvd(name, iso), cmd.nat_rule(name, cfg.ssh_listen_address, 2222, cfg.ssh_port)]
    out += [[expand(a, values, where="vboxmanage") for a in c] for c in cfg.vboxmanage]
    out += [cmd.start(name, cfg.headless), ["controlvm", name, "acpipowerbutton"]]
    out += [[expand(a, values, where="vboxmanage_post") for a in c] for c in cfg.vboxmanage_post]
    out += [cmd.delete_nat_rule(name), cmd.detach_dvd(name, iso)]
    out += [cmd.export(name, WORK / "output" / f"{cfg.output_filename or name}.{cfg.format}", list(cfg.export_opts)),
            cmd.unregister(name)]   # the VM has the UUID factory chose: no need to read its mark
    return out


def test_virtualbox_iso_example_command_lines(golden) -> None:  # type: ignore[no-untyped-def]
    project = load(EXAMPLE / "debian-iso.pkr.hcl")
    (source,) = project.builds[0].sources
    cfg = source.config
    assert isinstance(cfg, VirtualBoxIsoSource)
    lines = iso_build_commands(cfg, cfg.vm_name or "packer-debian")
    golden("machine/virtualbox-iso.commands", "".join("VBoxManage " + " ".join(_quote(a) for a in c) + "\n"
                                                      for c in lines))


def test_controllers_and_dvd_slots_follow_packer() -> None:
    cfg = VirtualBoxIsoSource(hard_drive_interface="virtio", iso_interface="ide", disk_additional_size=[10])
    lines = cmd.define_iso_vm(cfg, "v", WORK, [cmd.Dvd("boot_iso", Path("/i.iso"), "ide")])
    assert ["storagectl", "v", "--name", "VirtIO Controller", "--add", "virtio-scsi", "--controller", "VirtIO",
            "--portcount", "1"] in lines
    assert ["storagectl", "v", "--name", "IDE Controller", "--add", "ide", "--controller", "PIIX4"] in lines
    assert cmd.attach_dvd("v", cmd.Dvd("cd_files", Path("/c.iso"))) == [
        "storageattach", "v", "--storagectl", "IDE Controller", "--port", "1", "--device", "1", "--type",
        "dvddrive", "--medium", "/c.iso"]
    disks = [c for c in lines if c[0] == "storageattach"]
    assert [c[c.index("--port") + 1] for c in disks] == ["0", "1"]


def _quote(arg: str) -> str:
    return f"'{arg}'" if any(c in arg for c in " ;\"") else arg
