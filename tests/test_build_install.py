"""The install phase through the CLI: H4a's test installer ISO (a real kernel and busybox initrd) boots from
the virtio-scsi CD-ROM under OVMF, writes the guest to the disk, powers off; factory follows its serial console,
then boots the installed disk (installer media detached, SSH forwarded only now) and provisions it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from factory.comm.keys import KeyPair

TEMPLATE = """
source "qemu" "inst" {{
  iso_url          = "{iso}"
  iso_checksum     = "none"
  disk_size        = "3G"
  efi_boot         = true
  machine_type     = "q35"
  accelerator      = "tcg"
  cpus             = 2
  memory           = 1024
  headless         = true
  boot_wait        = "0s"
  ssh_username     = "inst"
  ssh_private_key_file = "id_ed25519"
  ssh_timeout      = "10m"
  host_port_min    = 47700
  host_port_max    = 47800
  output_directory = "out"
  vm_name          = "installed.qcow2"
}}
build {{
  sources = ["source.qemu.inst"]
  provisioner "shell" {{ inline = ["echo INSTALLED-SYSTEM-$(cat /etc/debian_version | cut -d. -f1)"] }}
}}
"""


@pytest.mark.vm
def test_install_phase_then_boot_installed_disk(test_installer_iso, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    key = KeyPair.generate()
    key.write_private(tmp_path / "id_ed25519")
    user_data = (f"#cloud-config\nusers:\n  - name: inst\n    sudo: ALL=(ALL) NOPASSWD:ALL\n    shell: /bin/bash\n"
                 f"    ssh_authorized_keys: ['{key.public_openssh}']\n").encode()
    iso = test_installer_iso.with_config({"nocloud/user-data": user_data,
                                          "nocloud/meta-data": b"instance-id: inst\n"}, tmp_path / "inst.iso")
    (tmp_path / "t.pkr.hcl").write_text(TEMPLATE.format(iso=iso))
    # --debug shows the serial console as it comes (without it only a failing step prints its last lines).
    proc = subprocess.run([sys.executable, "-m", "factory", "build", "--debug", "t.pkr.hcl"], cwd=tmp_path,
                          env={**os.environ, "COLUMNS": "300"}, capture_output=True, text=True, timeout=1800)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    # The installer's progress was followed on its serial console, then the installed system was booted.
    assert "[serial] factory-test-installer: writing disk" in out
    assert out.index("installer finished") < out.index("VM started (run")
    # Each phase's console is shown once and whole: the run phase neither repeats the install's lines nor loses
    # its own first ones (its kernel's banner).
    assert out.count("MiB of data)") == 1, out[-6000:]  # "writing disk /dev/vda (N MiB of data)"
    assert "Linux version" in out[out.index("VM started (run"):], out[-6000:]
    assert "[shell] INSTALLED-SYSTEM-12" in out
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(tmp_path / "out/installed.qcow2")],
                                     check=True, capture_output=True, text=True).stdout)
    assert info["format"] == "qcow2" and info["virtual-size"] == 3 * 1024**3
