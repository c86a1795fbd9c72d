"""Resume on a real QEMU guest (the README's Debian guest): a cold build keeps a checkpoint with the VM state after
boot-to-SSH and after each provisioner but the last (a resume would never use that one); after the last
provisioner is edited, the next build continues the saved VM (no boot: the first provisioner's file is still
there and the guest's boot ID did not change) and runs only the edited provisioner. One flow, serialized with
the other VM tests (TCG boots are minutes)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

TEMPLATE = r'''
variable "image" { type = string }

source "qemu" "cp" {
  iso_url          = var.image
  iso_checksum     = "none"
  disk_image       = true
  disk_size        = "4G"
  efi_boot         = true
  machine_type     = "q35"
  accelerator      = "auto"
  cpus             = 2
  memory           = 1024
  cd_label         = "cidata"
  cd_content       = { "meta-data" = "instance-id: cp\nlocal-hostname: cp\n" }
  ssh_username     = "cp"
  ssh_timeout      = "10m"
  shutdown_command = "sudo systemctl poweroff"
  output_directory = "out"
  vm_name          = "cp.qcow2"
}

build {
  sources = ["source.qemu.cp"]
  provisioner "shell" {
    inline = ["echo @TOKEN@ | sudo tee /etc/cp-token", "echo FIRST-BOOT=$(cat /proc/sys/kernel/random/boot_id)"]
  }
  provisioner "shell" {
    inline = ["echo LAST=V1 BOOT=$(cat /proc/sys/kernel/random/boot_id) TOKEN=$(cat /etc/cp-token)"]
  }
}
'''


def _build(tmp_path: Path, image: Path, env: dict[str, str]) -> str:
    proc = subprocess.run([sys.executable, "-m", "factory", "build", "-force", "-var", f"image={image}",
                           "cp.pkr.hcl"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=2400)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(tmp_path / "out" / "cp.qcow2")],
                                     check=True, capture_output=True, text=True).stdout)
    assert "backing-filename" not in info  # the artifact stands alone, whatever layers it was built on
    subprocess.run(["qemu-img", "check", "-q", str(tmp_path / "out" / "cp.qcow2")], check=True)
    # The checkpoints' layers were compacted in the background; whether that finished depends on the CPU time the
    # guest left it (the whole chain is compacted at the end if not), never on anything else.
    background = re.findall(r"disk: (the checkpoints' layers were compacted while the machine ran|compacting "
                            r"every layer: the background compaction had not finished)", out)
    assert len(background) == 1 and "compacting every layer" not in out.replace(background[0], ""), out[-6000:]
    return out


@pytest.mark.vm
def test_a_resumed_build_continues_the_saved_vm(debian_guest, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    token = uuid.uuid4().hex
    template = tmp_path / "cp.pkr.hcl"
    template.write_text(TEMPLATE.replace("@TOKEN@", token))
    env = {**os.environ, "COLUMNS": "300", "FACTORY_CACHE_DIR": str(tmp_path / "cache")}

    cold = _build(tmp_path, debian_guest.path, env)
    kept = re.findall(r"checkpoint after (connect|provision-\d): .* with the VM state", cold)
    assert kept == ["connect", "provision-1"], cold[-6000:]
    # The last provisioner's checkpoint is not kept: a resume continues the one before, which has a VM state.
    assert "checkpoint after provision-2" not in cold, cold[-6000:]
    boot = re.search(r"FIRST-BOOT=(\S+)", cold)
    assert boot and f"LAST=V1 BOOT={boot.group(1)} TOKEN={token}" in cold, cold[-4000:]

    template.write_text(template.read_text().replace("LAST=V1", "LAST=V2"))
    warm = _build(tmp_path, debian_guest.path, env)
    assert "resuming from the checkpoint after provision-1" in warm and "saved VM state (no boot)" in warm
    assert "FIRST-BOOT" not in warm  # the first provisioner did not run ...
    # ... and the guest is the same boot of the same system (the boot ID changes on every boot), with its file.
    assert f"LAST=V2 BOOT={boot.group(1)} TOKEN={token}" in warm, warm[-4000:]

    listing = subprocess.run([sys.executable, "-m", "factory", "cache", "ls"], env=env, capture_output=True,
                             text=True, check=True).stdout
    assert "after provision-1 +vm state" in listing and "after connect +vm state" in listing, listing
