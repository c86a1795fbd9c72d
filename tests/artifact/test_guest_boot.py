"""The exported VMDK, Azure VHD and GCE disk.raw of the Debian test guest boot under QEMU (TCG, OVMF) to SSH.

QEMU reads each export through its own format driver (a throwaway qcow2 overlay on top keeps the export
read-only), so a boot proves the bytes, the format's mapping and, for GCE, the relocated backup GPT.
"""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

import pytest
from fixtures.guest import GuestImage, boot_guest_ssh, cloud_config, make_cidata, new_keypair

from factory.artifact import Firmware, Hardware, export

QEMU_FORMAT = {"vmdk": "vmdk", "vhd": "vpc", "gce": "raw"}


@pytest.mark.vm
@pytest.mark.parametrize("fmt", ["vmdk", "vhd", "gce"])
def test_exported_guest_boots_to_ssh(fmt: str, debian_guest: GuestImage, tmp_path: Path) -> None:
    out = tmp_path / f"guest.{fmt}"
    export(debian_guest.path, fmt, out, hardware=Hardware(cpus=2, memory_mb=1024, firmware=Firmware.EFI))
    image = out
    if fmt == "gce":
        with tarfile.open(out) as tar:
            assert tar.getnames() == ["disk.raw"]
        subprocess.run(["tar", "-xzf", str(out), "-C", str(tmp_path)], check=True)
        image = tmp_path / "disk.raw"
    overlay = tmp_path / "boot.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-F", QEMU_FORMAT[fmt], "-b", str(image),
                    str(overlay)], check=True)
    key = new_keypair()
    seed = make_cidata(cloud_config("factory", key.public_openssh), b"instance-id: export-test\n",
                       tmp_path / "seed.iso")
    with boot_guest_ssh(overlay, tmp_path, username="factory", key=key, seed=seed) as guest:
        code, text = guest.run("echo $(( $(cat /sys/block/vda/size) * 512 )); sudo dmesg | grep -c 'Alt. header' "
                               "|| true")
    assert code == 0, text
    size, misplaced = (int(x) for x in text.split()[:2])
    unit = {"gce": 1 << 30, "vhd": 1 << 20, "vmdk": 512}[fmt]
    assert size % unit == 0, text
    # The kernel warns "GPT:Primary header thinks Alt. header is not at the end of the disk" when the backup
    # GPT was not moved after resizing; the GCE export must have moved it.
    assert misplaced == 0, text
