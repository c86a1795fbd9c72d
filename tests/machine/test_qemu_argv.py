"""The QEMU command line, compared with golden files (pytest --regen to accept a change)."""

from __future__ import annotations

from pathlib import Path

import pytest

from factory.artifact.model import DiskFormat, Firmware
from factory.errors import FactoryError
from factory.machine.driver import DirectBoot, DiskSpec, MachineSpec, MediaSpec
from factory.machine.qemu import build_argv

W = Path("/w")


def _spec(**kw: object) -> MachineSpec:
    base: dict[str, object] = dict(name="vm", workdir=W, serial_log=W / "serial.log", accel="tcg", cpus=2,
                                   memory_mb=1024, disks=(DiskSpec(W / "disk.qcow2"),), ssh_host_port=2222)
    base.update(kw)
    return MachineSpec(**base)  # type: ignore[arg-type]


def _text(argv: list[str]) -> str:
    return "\n".join(argv) + "\n"


def test_cloud_image_efi_with_seed(golden) -> None:  # type: ignore[no-untyped-def]
    spec = _spec(firmware=Firmware.EFI, efi_code=Path("/fw/CODE.fd"), efi_vars=W / "efivars.fd", machine_type="q35",
                 media=(MediaSpec(W / "seed.iso", interface="virtio"),))
    golden("machine/qemu-argv-cloud-efi.txt", _text(build_argv(spec, W / "vm.qmp")))


def test_install_phase_no_ssh_forward_and_scsi_cd(golden) -> None:  # type: ignore[no-untyped-def]
    spec = _spec(ssh_host_port=None, no_reboot=True, accel="kvm",
                 disks=(DiskSpec(W / "disk.raw", format=DiskFormat.RAW, interface="sata"),),
                 media=(MediaSpec(W / "installer.iso", bootable=True), MediaSpec(W / "seed.iso", interface="sata")))
    argv = build_argv(spec, W / "vm.qmp")
    assert "hostfwd" not in " ".join(argv)
    golden("machine/qemu-argv-install.txt", _text(argv))


def test_direct_kernel_boot_has_no_bootindex(golden) -> None:  # type: ignore[no-untyped-def]
    spec = _spec(direct_boot=DirectBoot(W / "vmlinuz", W / "initrd", "console=ttyS0 auto=true"),
                 media=(MediaSpec(W / "installer.iso", bootable=True),))
    argv = build_argv(spec, W / "vm.qmp")
    assert not any("bootindex" in a for a in argv)
    golden("machine/qemu-argv-direct-kernel.txt", _text(argv))


def test_a_kernel_in_qemuargs_takes_the_boot_index_from_the_disks() -> None:
    # QEMU refuses `-kernel` beside a disk with bootindex=0 ("The bootindex 0 has already been used"); Packer,
    # which sets no boot index, boots such a template.
    spec = _spec(hypervisor_args=(("-kernel", "/k/vmlinuz"), ("-append", "console=ttyS0")),
                 media=(MediaSpec(W / "installer.iso", bootable=True),))
    argv = build_argv(spec, W / "vm.qmp")
    assert not any("bootindex" in a for a in argv)
    assert argv[-4:] == ["-kernel", "/k/vmlinuz", "-append", "console=ttyS0"]
    assert any("bootindex=0" in a for a in build_argv(_spec(), W / "vm.qmp"))


def test_qemuargs_replace_defaults_with_same_switch() -> None:
    argv = build_argv(_spec(hypervisor_args=(("-m", "4096M"), ("-device", "virtio-rng-pci"))), W / "vm.qmp")
    assert argv.count("-m") == 1 and argv[argv.index("-m") + 1] == "4096M"
    # -device given in qemuargs replaces every default -device (Packer's semantics): only the user's remains.
    assert argv.count("-device") == 1 and argv[-2:] == ["-device", "virtio-rng-pci"]


def test_unknown_interface_is_a_clear_error() -> None:
    with pytest.raises(FactoryError, match="unsupported disk/cdrom interface 'floppy'"):
        build_argv(_spec(disks=(DiskSpec(W / "d", interface="floppy"),)), W / "vm.qmp")


def test_topology_vga_and_extra_disks() -> None:
    spec = _spec(topology=(1, 2, 1), vga="virtio", emulator="/opt/qemu/bin/qemu-system-x86_64",
                 disks=(DiskSpec(W / "disk.qcow2"), DiskSpec(W / "vm-1")))
    argv = build_argv(spec, W / "vm.qmp")
    assert argv[argv.index("-smp") + 1] == "2,sockets=1,cores=2,threads=1"
    assert argv[argv.index("-vga") + 1] == "virtio"
    assert sum(1 for a in argv if a.startswith("virtio-blk-pci,drive=disk")) == 2
    assert "bootindex=0" in " ".join(argv) and "bootindex=1" in " ".join(argv)


def test_emulator_from_the_spec() -> None:
    from factory.machine.qemu import QemuMachine

    machine = QemuMachine(_spec(emulator="/opt/qemu/bin/qemu-system-x86_64"))
    assert machine.argv[0] == "/opt/qemu/bin/qemu-system-x86_64"


def test_console_and_devices(golden) -> None:  # type: ignore[no-untyped-def]
    from factory.machine.tpm import TpmSpec
    from factory.machine.vnc import VncSpec

    spec = _spec(vnc=VncSpec("0.0.0.0", 5907, password="hunter2"), user_qmp=W / "vm.monitor",
                 tpm=TpmSpec(W / "tpm", model="tpm-crb"), floppy=W / "floppy.img", bios=Path("/fw/bios.bin"),
                 bios_pflash=True, headless=False, display="sdl")
    argv = build_argv(spec, W / "vm.qmp", tpm_socket=W / "swtpm.sock")
    assert "hunter2" not in " ".join(argv)       # set through QMP after start, never on the command line
    golden("machine/qemu-argv-console.txt", _text(argv))


def test_display_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    def display(**kw: object) -> list[str]:
        argv = build_argv(_spec(**kw), W / "vm.qmp")
        return argv[argv.index("-display"):argv.index("-display") + 2] if "-display" in argv else []

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert display(headless=True, display="gtk") == ["-display", "none"]     # headless wins
    assert display(headless=False) == ["-display", "none"]                   # no X: never try a window
    assert display(headless=False, display="gtk") == ["-display", "gtk"]
    assert display(headless=False, use_default_display=True) == []
    monkeypatch.setenv("DISPLAY", ":0")
    assert display(headless=False) == []                                     # QEMU's default window
    assert display(headless=False, display="none") == []                     # Packer: "none" = QEMU's default


def test_firmware_as_bios_or_pflash_and_vnc_without_password() -> None:
    from factory.machine.vnc import VncSpec

    argv = build_argv(_spec(bios=Path("/fw/b.bin"), vnc=VncSpec("127.0.0.1", 5900)), W / "vm.qmp")
    assert argv[argv.index("-bios") + 1] == "/fw/b.bin" and "if=pflash" not in " ".join(argv)
    assert argv[argv.index("-vnc") + 1] == "127.0.0.1:0"
    ranged = build_argv(_spec(vnc=VncSpec("127.0.0.1", 5901, port_max=5910)), W / "vm.qmp")
    assert ranged[ranged.index("-vnc") + 1] == "127.0.0.1:1,to=10"      # QEMU's own fallback up to port_max
