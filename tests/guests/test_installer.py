"""The test installer ISO: a real kernel and busybox initrd that install the guest from the media's config."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from fixtures.guest import boot_guest_ssh, cloud_config, new_keypair
from fixtures.installer import KERNEL_ARGS, InstallerISO, data_extents
from fixtures.vm import firmware_args

MIB = 1 << 20


def test_data_extents_are_mib_aligned_and_merge_small_gaps(tmp_path: Path) -> None:
    raw = tmp_path / "sparse.raw"
    with open(raw, "wb") as fh:
        fh.truncate(64 * MIB)
        for offset in (10, MIB + 10, 3 * MIB, 40 * MIB + 5):
            fh.seek(offset)
            fh.write(b"x")
    # 0-1 MiB and 1-2 MiB touch; 3 MiB is within the merge gap; 40 MiB stands alone.
    assert data_extents(raw) == [(0, 4), (40, 1)]


def test_installer_iso_is_ubuntu_shaped(test_installer_iso: InstallerISO) -> None:
    listing = subprocess.run(["xorriso", "-indev", str(test_installer_iso.iso), "-find", "/", "-type", "f"],
                             check=True, capture_output=True, text=True).stdout
    for path in ("/casper/vmlinuz", "/casper/initrd", "/boot/grub/grub.cfg", "/payload/extents"):
        assert f"'{path}'" in listing
    grub = (test_installer_iso.tree / "boot/grub/grub.cfg").read_text()
    assert f"linux /casper/vmlinuz {KERNEL_ARGS} ---" in grub and "initrd /casper/initrd" in grub
    initrd = subprocess.run(["sh", "-c", f"zcat {test_installer_iso.initrd} | cpio -it --quiet"],
                            check=True, capture_output=True, text=True).stdout.split()
    assert {"init", "bin/busybox", "dev/console", "lib/modules/order", "lib/modules/virtio_blk.ko"} <= set(initrd)


@pytest.mark.vm
def test_installer_installs_the_guest_and_the_config_on_the_media_reaches_it(
        test_installer_iso: InstallerISO, tmp_path: Path) -> None:
    key = new_keypair()
    iso = test_installer_iso.with_config(
        {"nocloud/user-data": cloud_config("installed", key.public_openssh, hostname="installed-guest"),
         "nocloud/meta-data": b"instance-id: iid-installed\n"}, tmp_path / "installer.iso")
    target = tmp_path / "target.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(target), "3G"], check=True)
    serial = tmp_path / "install.log"
    # The CD on virtio-scsi (the cloud kernel has no AHCI), the target on virtio-blk, UEFI like the guest.
    argv = ["qemu-system-x86_64", "-accel", "tcg", "-m", "1024", "-smp", "2", "-display", "none", "-no-reboot",
            "-monitor", "none", "-nic", "none", "-serial", f"file:{serial}", *firmware_args("uefi", tmp_path),
            "-device", "virtio-scsi-pci,id=scsi", "-drive", f"if=none,id=cd,media=cdrom,readonly=on,file={iso}",
            "-device", "scsi-cd,drive=cd,bootindex=0", "-drive", f"if=virtio,format=qcow2,file={target}"]
    start = time.monotonic()
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=600)
    except subprocess.TimeoutExpired:
        pytest.fail(f"installer did not power off in 600 s\n{serial.read_text(errors='replace')[-3000:]}")
    log = serial.read_text(errors="replace")
    print(f"\ntest installer: install and power-off took {time.monotonic() - start:.1f}s")
    assert proc.returncode == 0, proc.stderr.decode()
    assert "factory-test-installer: writing disk /dev/vda ... done" in log, log[-3000:]
    assert "factory-test-installer: cloud-init seed written from /cdrom/nocloud/" in log
    assert "factory-test-installer: installation complete, powering off" in log
    # The installed disk boots on its own and the user-data from the installer media created the user.
    with boot_guest_ssh(target, tmp_path, username="installed", key=key) as guest:
        print(f"installed guest: time to SSH {guest.seconds_to_ssh:.1f}s")
        assert guest.run("hostname") == (0, "installed-guest\n")
        assert guest.run("id -un") == (0, "installed\n")
