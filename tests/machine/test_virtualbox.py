"""The VirtualBox driver's VBoxManage layer against the VBoxManage stand-in (tests/fixtures/vboxmanage_standin.py,
VirtualBox itself cannot be installed here): finding it, its version, its errors, its machine-readable output,
scan codes for boot_command, and a VM started by the stand-in's QEMU that takes keys and the power button."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fixtures.vbox import StandIn

from factory.artifact.tario import extract_plain
from factory.errors import FactoryError
from factory.machine import keys, scancodes
from factory.machine.driver import MachineSpec
from factory.machine.vboxmanage import VBoxManage, locate, machine_readable, parse_version
from factory.machine.virtualbox import VirtualBoxDriver


def test_vboxmanage_missing_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("VBOX_INSTALL_PATH", str(tmp_path / "nowhere"))
    with pytest.raises(FactoryError) as err:
        locate()
    assert "VBoxManage was not found" in err.value.message
    assert err.value.hint is not None and "VBOX_INSTALL_PATH" in err.value.hint
    with pytest.raises(FactoryError, match="VBoxManage was not found"):
        VirtualBoxDriver()


def test_found_in_vbox_install_path_and_version_read(vboxmanage: StandIn) -> None:
    vbox = VBoxManage()
    assert vbox.exe == vboxmanage.exe
    assert (str(vbox.version), vbox.version.major) == ("7.0.20", 7)
    assert parse_version("6.1.50_Debianr161033\n").minor == 1
    with pytest.raises(FactoryError, match="cannot read VirtualBox's version"):
        parse_version("WARNING: The vboxdrv kernel module is not loaded.")


def test_a_virtualbox_error_line_is_surfaced_with_the_failing_command(vboxmanage: StandIn) -> None:
    vbox = VBoxManage()
    with pytest.raises(FactoryError) as err:
        vbox(["modifyvm", "no-such-vm", "--memory", "1024"])
    text = err.value.message
    assert text.startswith("VirtualBox: Could not find a registered machine named 'no-such-vm'")
    assert "VBOX_E_OBJECT_NOT_FOUND" in text and "Context:" not in text
    assert text.endswith(f"command: {vboxmanage.exe} modifyvm no-such-vm --memory 1024")


def test_the_standin_rejects_what_vboxmanage_rejects(vboxmanage: StandIn) -> None:
    vboxmanage("createvm", "--name", "v", "--register", "--basefolder", str(vboxmanage.home / "vms"))
    bad = [("modifyvm", "v", "--memmory", "64"), ("modifyvm", "v", "--firmware", "uefi"),
           ("modifyvm", "v", "--natpf1", "ssh,tcp,,22"), ("storagectl", "v", "--name", "X", "--add", "nvme"),
           ("startvm", "v", "--type", "window"), ("controlvm", "v")]
    for args in bad:
        proc = vboxmanage(*args, check=False)
        assert proc.returncode == 2 and "VBoxManage: error: " in proc.stderr, args
    with pytest.raises(FactoryError) as err:
        VBoxManage()(["modifyvm", "v", "--memmory", "64"])
    assert "Unknown option: --memmory" in err.value.message and "rejected the command line" in str(err.value.hint)


def test_machine_readable_output_is_parsed() -> None:
    text = ('name="a \\"b\\""\nmemory=1024\n"IDE Controller-0-0"="/d/x.vdi"\nForwarding(0)="packercomm,tcp,'
            '127.0.0.1,2222,,22"\nVMState="running"\n')
    info = machine_readable(text)
    assert info == {"name": 'a "b"', "memory": "1024", "IDE Controller-0-0": "/d/x.vdi",
                    "Forwarding(0)": "packercomm,tcp,127.0.0.1,2222,,22", "VMState": "running"}


def test_boot_command_keys_become_set1_scancodes() -> None:
    def codes(text: str) -> list[list[str] | float]:
        return [b if isinstance(b, float) else scancodes.hex_args(b) for b in scancodes.keystrokes(keys.parse(text))]

    assert codes("a") == [["1e", "9e"]]
    assert codes("A") == [["2a", "1e", "9e", "aa"]]
    assert codes("<up><enter>") == [["e0", "48", "e0", "c8"], ["1c", "9c"]]
    assert codes("<leftCtrlOn>x<leftCtrlOff>") == [["1d"], ["2d", "ad"], ["9d"]]
    assert codes("1<wait2>/") == [["02", "82"], 2.0, ["35", "b5"]]
    with pytest.raises(FactoryError, match="cannot type"):
        scancodes.make("f13")


@pytest.mark.vm
def test_a_standin_vm_runs_in_qemu_takes_keys_and_the_power_button(vboxmanage: StandIn, tmp_path: Path) -> None:
    """startvm runs QEMU; keyboardputscancode and acpipowerbutton reach it through QMP; showvminfo follows."""
    disk = tmp_path / "d.vdi"
    base = str(tmp_path / "vms")
    for args in (["createvm", "--name", "k", "--basefolder", base, "--register"],
                 ["storagectl", "k", "--name", "IDE Controller", "--add", "ide"],
                 ["createmedium", "disk", "--filename", str(disk), "--size", "16", "--format", "VDI"],
                 ["storageattach", "k", "--storagectl", "IDE Controller", "--port", "0", "--device", "0",
                  "--type", "hdd", "--medium", str(disk)]):
        vboxmanage(*args)
    driver = VirtualBoxDriver()
    machine = driver.adopt(MachineSpec(name="k", workdir=tmp_path, serial_log=tmp_path / "s.log"), headless=True,
                           ssh=None)
    machine.start()
    try:
        assert machine.running() and VBoxManage().info("k")["VMState"] == "running"  # type: ignore[index]
        machine.send_keys(keys.parse("<esc>a<leftShiftOn>b<leftShiftOff>"), 0.01)
        assert machine.screendump(tmp_path / "screen.png") is not None
        machine.powerdown()   # SeaBIOS with an empty disk ignores ACPI: the VM keeps running
        time.sleep(1)
        assert machine.running()
        with pytest.raises(FactoryError):          # a refused command on a running VM is an error ...
            machine._control("nosuchaction")
        vboxmanage("controlvm", "k", "poweroff")   # ... but the guest stopping first (a race with acpipowerbutton)
        machine._control("acpipowerbutton")        # is what was wanted
        assert not machine.running()
    finally:
        driver.cleanup()
    assert not machine.running() and VBoxManage().info("k")["VMState"] == "poweroff"  # type: ignore[index]
    with pytest.raises(FactoryError, match="stopped"):
        machine.alive()


def test_standin_export_is_schema_valid_cot_readable_and_imports_back(vboxmanage: StandIn, tmp_path: Path,
                                                                      shared_schemas: Path) -> None:
    """What `VBoxManage export` writes (the stand-in's OVF from its VM state): the DMTF schema accepts it, cot
    reads it, its VMDK passes qemu-img check, and `import` makes the same VM again."""
    import subprocess
    import sys
    import tarfile

    from lxml import etree

    disk = tmp_path / "e.vdi"
    base = str(tmp_path / "vms")
    for args in (["createvm", "--name", "e", "--ostype", "Debian_64", "--basefolder", base, "--register"],
                 ["modifyvm", "e", "--memory", "768", "--cpus", "2", "--nictype1", "virtio"],
                 ["storagectl", "e", "--name", "SATA Controller", "--add", "sata", "--controller", "IntelAhci"],
                 ["createmedium", "disk", "--filename", str(disk), "--size", "32", "--format", "VDI"],
                 ["storageattach", "e", "--storagectl", "SATA Controller", "--port", "0", "--device", "0",
                  "--type", "hdd", "--medium", str(disk)],
                 ["export", "e", "--output", str(tmp_path / "e.ova"), "--manifest"]):
        vboxmanage(*args)
    with tarfile.open(tmp_path / "e.ova") as tar:
        assert tar.getnames() == ["e.ovf", "e.mf", "e-disk001.vmdk"]
        extract_plain(tar, tmp_path / "x")
    schema = etree.XMLSchema(etree.parse(str(shared_schemas / "ovf" / "dsp8023_1.1.1.xsd")))
    assert schema.validate(etree.parse(str(tmp_path / "x" / "e.ovf"))), schema.error_log
    subprocess.run(["qemu-img", "check", str(tmp_path / "x" / "e-disk001.vmdk")], check=True, capture_output=True)
    cot = Path(sys.executable).parent / "cot"
    info = subprocess.run([str(cot), "--verbose", "info", str(tmp_path / "e.ova")], capture_output=True, text=True,
                          timeout=300)
    assert info.returncode == 0 and "ERROR" not in info.stderr and "tampered" not in info.stderr, info.stderr
    assert "virtualbox-2.2" in info.stdout and "768 MiB" in info.stdout
    vboxmanage("import", str(tmp_path / "e.ova"), "--vsys", "0", "--vmname", "e2", "--basefolder", base)
    again = machine_readable(vboxmanage("showvminfo", "e2", "--machinereadable").stdout)
    assert (again["memory"], again["cpus"], again["nictype1"], again["storagecontrollername0"]) == (
        "768", "2", "virtio", "SATA Controller")
    assert Path(again["SATA Controller-0-0"]).is_file()
