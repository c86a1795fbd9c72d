"""VirtualBox builds end to end through the VBoxManage stand-in (tests/fixtures/vboxmanage_standin.py; VirtualBox
cannot be installed here): the stand-in keeps VirtualBox's grammar and state, and its `startvm` really boots the
VM's disks with QEMU, so SSH, provisioning, shutdown and export are real. Also the bad inputs: a VM name that
exists, an OVA without a disk, VBoxManage missing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from fixtures.guest import GuestImage
from fixtures.vbox import StandIn
from lxml import etree

from factory.artifact.exporters import ExportOptions, export
from factory.artifact.model import Firmware, Hardware
from factory.artifact.tario import extract_plain
from factory.fsutil import OUTPUT_MARKER
from factory.machine.vboxmanage import machine_readable
from factory.post.export import host_architecture

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "debian-virtualbox" / "debian-ovf.pkr.hcl"


def _factory(args: list[str], cwd: Path, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "factory", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _readme_guest_ova(image: Path, out: Path) -> Path:
    """factory's own OVA of the mkguest image: IDE disk (VirtualBox's default controller), EFI."""
    (ova,) = export(image, "ova", out, hardware=Hardware(cpus=2, memory_mb=1024, firmware=Firmware.EFI,
                                                         disk_interface="ide", net_device="e1000"),
                    options=ExportOptions(guest_os="debian"))
    return ova


def _vboxmanage_lines(stdout: str, tmp: Path) -> str:
    """The VBoxManage command lines of a build log, with the run's paths, port and owner replaced."""
    out = []
    for line in stdout.splitlines():
        m = re.match(r"^\s+\S+: \[vboxmanage\] (.*)$", line)
        if m:
            text = m[1].replace(str(tmp), "$TMP")
            text = re.sub(r"/\.out\.[^/]+\.part/", "/$STAGING/", text)   # the unpublished output folder
            text = re.sub(r"/tmp/factory-factory-debian-ovf-[^/ ]+", "$WORK", text)
            text = re.sub(r"factory/owner \S+", "factory/owner $HOST:$PID:$RUN_UUID", text)
            text = re.sub(r"127\.0\.0\.1,\d+,,22", "127.0.0.1,$SSH_PORT,,22", text)
            text = re.sub(r"10\.0\.2\.2:\d+/", "10.0.2.2:$HTTP_PORT/", text)
            out.append("VBoxManage " + text + "\n")
    return "".join(out)


@pytest.mark.vm
def test_virtualbox_ovf_build_of_the_readme_guest(vboxmanage: StandIn, debian_guest: GuestImage, tmp_path: Path,
                                                  golden, shared_schemas: Path) -> None:  # type: ignore[no-untyped-def]
    ova = _readme_guest_ova(debian_guest.path, tmp_path / "guest.ova")
    out = tmp_path / "out"
    box = tmp_path / "debian.box"
    proc = _factory(["build", "-var", f"ova={ova}", "-var", f"output={out}", "-var", f"box={box}", str(EXAMPLE)],
                    cwd=tmp_path)
    log = proc.stdout + proc.stderr                           # the human monitor writes to stderr
    assert proc.returncode == 0, log[-6000:]
    assert "hello from factory-vbox" in log                   # provisioned over SSH through the NAT rule
    assert "[shell] 7.0.20" in log.replace("r163906", "")     # ~/.vbox_version, uploaded after SSH connected
    assert vboxmanage.registered() == {} and vboxmanage.running_pids() == []   # unregistered and deleted
    golden("machine/virtualbox-ovf.commands", _vboxmanage_lines(log, tmp_path))

    exported = out / "factory-debian-ovf.ova"
    assert _published(out) == ["factory-debian-ovf.ova"]
    with tarfile.open(exported) as tar:
        names = tar.getnames()
        assert names[0] == "factory-debian-ovf.ovf"            # OVF 1.x: the descriptor comes first
        extract_plain(tar, tmp_path / "unpacked")
    descriptor = etree.parse(str(tmp_path / "unpacked" / "factory-debian-ovf.ovf"))
    schema = etree.XMLSchema(etree.parse(str(shared_schemas / "ovf" / "dsp8023_1.1.1.xsd")))
    assert schema.validate(descriptor), schema.error_log
    vmdk = tmp_path / "unpacked" / "factory-debian-ovf-disk001.vmdk"
    subprocess.run(["qemu-img", "check", str(vmdk)], check=True, capture_output=True)
    cot = Path(sys.executable).parent / "cot"
    info = subprocess.run([str(cot), "--verbose", "info", str(exported)], capture_output=True, text=True,
                          timeout=300)
    assert info.returncode == 0 and "ERROR" not in info.stderr, info.stderr
    assert "virtualbox-2.2" in info.stdout and " 1 GiB " in info.stdout and "harddisk @ IDE 0:0" in info.stdout
    # The provisioner's change is in the exported disk: boot-free check of the file system is not possible
    # here, so the disk must differ from the imported one (qemu-img compare exits 1 on a difference).
    assert subprocess.run(["qemu-img", "compare", "-q", str(debian_guest.path), str(vmdk)]).returncode == 1
    _check_virtualbox_box(box, schema, tmp_path / "box", ["factory-debian-ovf-disk001.vmdk"])


def _published(out: Path) -> list[str]:
    """An output folder's files, factory's ownership marker left out."""
    return sorted(p.name for p in out.iterdir() if p.name != OUTPUT_MARKER)


def _check_virtualbox_box(box: Path, schema: etree.XMLSchema, scratch: Path, disks: list[str]) -> None:
    """A Vagrant box with the virtualbox provider as Packer's vagrant post-processor makes it from VirtualBox's
    export: metadata.json and Vagrantfile, box.ovf (DMTF-valid, naming the disks it comes with) and the VMDKs
    VirtualBox wrote (qemu-img check)."""
    listing = subprocess.run(["tar", "-tzf", str(box)], check=True, capture_output=True, text=True).stdout.split()
    assert listing == ["metadata.json", "Vagrantfile", "box.ovf", *disks], listing
    scratch.mkdir()
    subprocess.run(["tar", "-xzf", str(box), "-C", str(scratch)], check=True)
    assert json.loads((scratch / "metadata.json").read_text()) == {"provider": "virtualbox",
                                                                    "architecture": host_architecture()}
    assert (scratch / "Vagrantfile").read_text().startswith('Vagrant.configure("2") do |config|')
    descriptor = etree.parse(str(scratch / "box.ovf"))
    assert schema.validate(descriptor), schema.error_log
    hrefs = descriptor.xpath("//ovf:References/ovf:File/@ovf:href",
                             namespaces={"ovf": "http://schemas.dmtf.org/ovf/envelope/1"})
    assert hrefs == disks
    for disk in disks:
        subprocess.run(["qemu-img", "check", str(scratch / disk)], check=True, capture_output=True)


def _ovf_template(tmp: Path, source: str, vm_name: str = "t") -> Path:
    path = tmp / "t.pkr.hcl"
    path.write_text(f'''
source "virtualbox-ovf" "t" {{
  source_path          = "{source}"
  checksum             = "none"
  vm_name              = "{vm_name}"
  headless             = true
  guest_additions_mode = "disable"
  ssh_username         = "u"
  ssh_password         = "p"
}}
build {{ sources = ["source.virtualbox-ovf.t"] }}
''')
    return path


# A boot sector that powers the machine off at once: SLP_EN with sleep type 0 written to PM1a_CNT, where SeaBIOS
# puts it on i440fx/PIIX4 (0xb004) and on q35/ICH9 (0x604); QEMU then exits as after a guest shutdown.
_POWEROFF_MBR = bytes.fromhex("ba04b0b80020efba0406eff4ebfd").ljust(510, b"\0") + b"\x55\xaa"


def _ide_ovf(tmp: Path, *, boot_sector: bytes | None = None) -> Path:
    """An OVF with one 16 MiB VMDK on an IDE controller: blank, or booting `boot_sector`."""
    disk = tmp / "d.vmdk"
    if boot_sector is None:
        subprocess.run(["qemu-img", "create", "-q", "-f", "vmdk", str(disk), "16M"], check=True)
    else:
        raw = tmp / "d.raw"
        raw.write_bytes(boot_sector.ljust(16 << 20, b"\0"))
        subprocess.run(["qemu-img", "convert", "-q", "-O", "vmdk", str(raw), str(disk)], check=True)
        raw.unlink()
    ovf = tmp / "a.ovf"
    ovf.write_text(
        '<?xml version="1.0"?><Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" '
        'xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" '
        'xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData">'
        '<References><File ovf:href="d.vmdk" ovf:id="f1"/></References><DiskSection><Info>d</Info>'
        '<Disk ovf:diskId="v1" ovf:fileRef="f1" ovf:capacity="16777216"/></DiskSection><VirtualSystem ovf:id="a">'
        '<VirtualHardwareSection><Item><rasd:InstanceID>3</rasd:InstanceID><rasd:ResourceSubType>PIIX4'
        '</rasd:ResourceSubType><rasd:ResourceType>5</rasd:ResourceType></Item><Item><rasd:AddressOnParent>0'
        '</rasd:AddressOnParent><rasd:HostResource>ovf:/disk/v1</rasd:HostResource><rasd:InstanceID>4'
        '</rasd:InstanceID><rasd:Parent>3</rasd:Parent><rasd:ResourceType>17</rasd:ResourceType></Item>'
        '</VirtualHardwareSection></VirtualSystem></Envelope>')
    return ovf


def test_an_ova_without_a_disk_is_refused_before_import(vboxmanage: StandIn, tmp_path: Path) -> None:
    ovf = tmp_path / "nodisk.ovf"
    ovf.write_text('<?xml version="1.0"?><Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"><References/>'
                   '<VirtualSystem xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" ovf:id="x"/></Envelope>')
    with tarfile.open(tmp_path / "nodisk.ova", "w") as tar:
        tar.add(ovf, arcname="nodisk.ovf")
    proc = _factory(["build", str(_ovf_template(tmp_path, str(tmp_path / "nodisk.ova")))], cwd=tmp_path, timeout=120)
    assert proc.returncode != 0
    assert "nodisk.ova has no disk" in proc.stderr and "Traceback" not in proc.stderr
    assert vboxmanage.registered() == {}
    assert not (tmp_path / "output-t").exists()


def test_a_vm_name_that_exists_is_refused_and_that_vm_left_alone(vboxmanage: StandIn, tmp_path: Path) -> None:
    vboxmanage("createvm", "--name", "mine", "--basefolder", str(tmp_path / "vms"), "--register")
    vboxmanage("modifyvm", "mine", "--memory", "321")
    disk = tmp_path / "d.vmdk"
    subprocess.run(["qemu-img", "create", "-q", "-f", "vmdk", str(disk), "16M"], check=True)
    ovf = tmp_path / "a.ovf"
    ovf.write_text('<?xml version="1.0"?><Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" '
                   'xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"><References><File ovf:href="d.vmdk" '
                   'ovf:id="f1"/></References><DiskSection><Info>d</Info><Disk ovf:diskId="v1" ovf:fileRef="f1" '
                   'ovf:capacity="16777216"/></DiskSection><VirtualSystem ovf:id="a"/></Envelope>')
    proc = _factory(["build", str(_ovf_template(tmp_path, str(ovf), vm_name="mine"))], cwd=tmp_path, timeout=120)
    assert proc.returncode != 0
    assert "a VirtualBox VM named 'mine' already exists" in proc.stderr and "Traceback" not in proc.stderr
    info = vboxmanage("showvminfo", "mine", "--machinereadable").stdout
    assert "memory=321" in info and list(vboxmanage.registered()) == ["mine"]


def test_a_virtualbox_error_fails_the_build_with_its_message_and_cleans_up(vboxmanage: StandIn,
                                                                           tmp_path: Path) -> None:
    _readme_like = _ovf_template(tmp_path, str(_ide_ovf(tmp_path)))
    text = _readme_like.read_text().replace('guest_additions_mode = "disable"', 'guest_additions_mode = "disable"\n'
                                            '  vboxmanage = [["modifyvm", "{{.Name}}", "--firmware", "uefi"]]')
    _readme_like.write_text(text)
    proc = _factory(["build", str(_readme_like)], cwd=tmp_path, timeout=120)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "vboxmanage[0]: VirtualBox: Invalid --firmware argument 'uefi'" in proc.stderr
    assert "command: " in proc.stderr and "modifyvm t --firmware uefi" in proc.stderr
    assert vboxmanage.registered() == {}          # the imported VM was unregistered and deleted
    assert "[vboxmanage] unregistervm t --delete" in proc.stdout + proc.stderr


def test_vboxmanage_missing_fails_the_build_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VBOX_INSTALL_PATH", str(tmp_path / "none"))
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:/usr/bin:/bin")
    (tmp_path / "a.ova").write_bytes(b"")
    proc = _factory(["build", str(_ovf_template(tmp_path, str(tmp_path / "a.ova")))], cwd=tmp_path, timeout=120)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "VBoxManage was not found" in proc.stderr and "VBOX_INSTALL_PATH" in proc.stderr


@pytest.mark.vm
def test_ctrl_c_powers_off_unregisters_and_deletes_the_vm(vboxmanage: StandIn, tmp_path: Path) -> None:
    """SIGINT while the VM runs (here: during boot_wait): the VM is powered off, unregistered and deleted, and
    nothing is published."""
    import signal
    import time

    template = _ovf_template(tmp_path, str(_ide_ovf(tmp_path)))
    template.write_text(template.read_text().replace('headless             = true',
                                                     'headless = true\n  boot_wait = "10m"\n'
                                                     '  boot_command = ["<enter>"]'))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "factory", "build", str(template)], cwd=tmp_path, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    seen = []
    deadline = time.monotonic() + 300
    for line in proc.stdout:
        seen.append(line)
        if "waiting 600s (boot_wait)" in line or time.monotonic() > deadline:
            break
    assert vboxmanage.running_pids(), "".join(seen)   # the VM runs now
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=120)[0]
    assert proc.returncode != 0 and "Traceback" not in rest, rest
    assert vboxmanage.registered() == {} and not list((vboxmanage.home).glob("**/supervisor.pid"))
    assert not (tmp_path / "output-t").exists()
    assert "unregister and delete VM t" in rest and "[vboxmanage] unregistervm t --delete" in rest


def test_virtualbox_vm_needs_a_registered_vm(vboxmanage: StandIn, tmp_path: Path) -> None:
    (tmp_path / "t.pkr.hcl").write_text('''
source "virtualbox-vm" "t" {
  vm_name              = "base-vm"
  guest_additions_mode = "disable"
  communicator         = "none"
}
build { sources = ["source.virtualbox-vm.t"] }
''')
    proc = _factory(["build", "t.pkr.hcl"], cwd=tmp_path, timeout=120)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "virtualbox-vm: no registered VM named 'base-vm'" in proc.stderr


def _poweroff_template(tmp: Path, source: str, extra: str = "") -> Path:
    """A virtualbox-ovf build of the power-off guest: no communicator, the guest powers itself off."""
    path = tmp / "t.pkr.hcl"
    path.write_text(f'''
source "virtualbox-ovf" "t" {{
  source_path          = "{source}"
  checksum             = "none"
  vm_name              = "t"
  headless             = true
  guest_additions_mode = "disable"
  communicator         = "none"
  shutdown_timeout     = "2m"
  {extra}
}}
build {{ sources = ["source.virtualbox-ovf.t"] }}
''')
    return path


@pytest.mark.vm
@pytest.mark.parametrize("keep", [False, True], ids=["unregistered", "keep_registered"])
def test_a_successful_build_unregisters_its_vm_unless_keep_registered(vboxmanage: StandIn, tmp_path: Path,
                                                                      keep: bool) -> None:
    """The stand-in boots a one-sector guest that powers off at once: a whole build in seconds."""
    ovf = _ide_ovf(tmp_path, boot_sector=_POWEROFF_MBR)
    extra = "keep_registered = true" if keep else ""
    proc = _factory(["build", str(_poweroff_template(tmp_path, str(ovf), extra))], cwd=tmp_path, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert _published(tmp_path / "output-t") == ["t-disk001.vmdk", "t.ovf"]
    assert vboxmanage.running_pids() == []
    if keep:
        assert list(vboxmanage.registered()) == ["t"] and "unregistervm" not in log
        assert "keep_registered: the VM t stays registered" in log
        info = machine_readable(vboxmanage("showvminfo", "t", "--machinereadable").stdout)
        disk = Path(info["IDE Controller-0-0"])   # the build's scratch folder is gone; the kept VM's disk is not
        assert disk.is_file() and disk.is_relative_to(vboxmanage.home / "VirtualBox VMs"), disk
        vboxmanage("unregistervm", "t", "--delete")
    else:
        assert vboxmanage.registered() == {}
        assert "[vboxmanage] unregistervm t --delete" in log, log[-3000:]


@pytest.mark.vm
def test_virtualbox_vm_runs_an_existing_vm_and_never_deletes_it(vboxmanage: StandIn, tmp_path: Path) -> None:
    """virtualbox-vm is the one builder that changes a VM it did not create: it takes target_snapshot and
    leaves the VM registered, its disk in place."""
    ovf = _ide_ovf(tmp_path, boot_sector=_POWEROFF_MBR)
    vboxmanage("import", str(ovf), "--vsys", "0", "--vmname", "base-vm", "--basefolder", str(tmp_path / "vms"))
    (tmp_path / "t.pkr.hcl").write_text('''
source "virtualbox-vm" "t" {
  vm_name              = "base-vm"
  guest_additions_mode = "disable"
  communicator         = "none"
  skip_export          = true
  target_snapshot      = "built"
  shutdown_timeout     = "2m"
}
build { sources = ["source.virtualbox-vm.t"] }
''')
    proc = _factory(["build", "t.pkr.hcl"], cwd=tmp_path, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert list(vboxmanage.registered()) == ["base-vm"] and "unregistervm" not in log
    info = vboxmanage("showvminfo", "base-vm", "--machinereadable").stdout
    assert 'CurrentSnapshotName="built"' in info and 'VMState="poweroff"' in info
    vboxmanage("unregistervm", "base-vm", "--delete")
