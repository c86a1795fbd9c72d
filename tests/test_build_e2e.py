"""End to end through the CLI: `factory build` of a cloud image (disk_image, efi_boot, cd_content user-data)
on H4a's Debian guest — cloud-init applies the seed, SSH connects with the ephemeral key, shell and file
provisioners change the guest, a failing shutdown_command falls back to ACPI, the qcow2 artifact is written
and published atomically, the manifest post-processor sees it; then the artifact boots again and the changes
are there. One booted flow proves all of it (TCG boots are minutes)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.vm import boot_until, firmware_args

TEMPLATE = r'''
variable "image" { type = string }

source "qemu" "e2e" {
  iso_url          = var.image
  iso_checksum     = "none"
  disk_image       = true
  disk_size        = "4G"
  efi_boot         = true
  machine_type     = "q35"
  accelerator      = "auto"
  cpus             = 2
  memory           = 1024
  headless         = true
  cd_label         = "cidata"
  cd_content = {
    "user-data" = <<-EOT
      #cloud-config
      write_files:
        - path: /etc/e2e-seed
          content: "SEED-APPLIED\n"
    EOT
    "meta-data" = "instance-id: e2e\nlocal-hostname: e2e\n"
  }
  ssh_username     = "e2e"
  ssh_timeout      = "10m"
  shutdown_command = "sudo false"
  shutdown_timeout = "2m"
  host_port_min    = 47300
  host_port_max    = 47400
  # The image must not keep the key factory generated.
  ssh_clear_authorized_keys = true
  # The guest fetches from the build's HTTP server over IPv6 (user networking's fec0::2 is the host's ::1).
  http_network_protocol = "tcp6"
  http_content     = { "/probe" = "HTTP-OVER-IPV6-OK" }
  output_directory = "out"
  vm_name          = "e2e.qcow2"
}

build {
  name    = "t"
  sources = ["source.qemu.e2e"]

  provisioner "shell" {
    environment_vars = ["GREETING=HELLO-FROM-SHELL"]
    inline           = ["echo $GREETING", "cat /etc/e2e-seed"]
  }
  provisioner "shell" {
    inline = [
      "url=http://$PACKER_HTTP_ADDR/probe",
      "python3 -c \"import sys, urllib.request as u; print(u.urlopen(sys.argv[1], timeout=60).read().decode())\" $url",
    ]
  }
  provisioner "file" {
    source      = "payload"
    destination = "/tmp"
  }
  provisioner "shell" {
    inline = [
      "sudo install -m 0644 /tmp/payload/marker.txt /etc/e2e-marker",
      "sudo install -m 0644 /tmp/payload/e2e-marker.service /etc/systemd/system/",
      "sudo systemctl enable e2e-marker.service",
    ]
  }
  provisioner "file" {
    direction   = "download"
    source      = "/etc/os-release"
    destination = "os-release"
  }
  post-processor "manifest" {
    output = "out/manifest.json"
  }
}
'''

# Runs early at boot and prints what the file provisioner uploaded: seen on the serial console, it proves
# that the provisioners' changes were in the published disk.
UNIT = """[Unit]
DefaultDependencies=no
After=systemd-remount-fs.service

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo "PERSISTED: $(cat /etc/e2e-marker) AUTHKEYS: $(cat /home/e2e/.ssh/authorized_keys \\
  /root/.ssh/authorized_keys 2>/dev/null | grep -c ssh-)" > /dev/ttyS0'

[Install]
WantedBy=sysinit.target
"""


@pytest.mark.vm
def test_factory_build_cloud_image_end_to_end(debian_guest, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "e2e.pkr.hcl").write_text(TEMPLATE)
    (tmp_path / "payload").mkdir()
    (tmp_path / "payload" / "marker.txt").write_text("FILE-MARKER-OK\n")
    (tmp_path / "payload" / "e2e-marker.service").write_text(UNIT)
    env = {**os.environ, "COLUMNS": "300"}
    proc = subprocess.run([sys.executable, "-m", "factory", "build", "-var", f"image={debian_guest.path}",
                           "e2e.pkr.hcl"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-6000:]
    # The real probe on this host: /dev/kvm exists but KVM guests hang, so TCG is used and said loudly.
    assert "falling back to TCG" in out
    # Output streams live with the build name prefix; cloud-init applied the seed before SSH connected.
    assert "t.qemu.e2e: [shell] HELLO-FROM-SHELL" in out
    assert "t.qemu.e2e: [shell] SEED-APPLIED" in out
    assert re.search(r"HTTP server on port \d+ \(guest: http://\[fec0::2\]:\d+/\)", out), out[-6000:]
    assert "t.qemu.e2e: [shell] HTTP-OVER-IPV6-OK" in out
    assert "shutdown_command exited with 1: falling back to ACPI power-down" in out
    assert "ignored the ACPI power button" not in out  # the guest really powered off on ACPI
    assert "bookworm" in (tmp_path / "os-release").read_text()

    disk = tmp_path / "out" / "e2e.qcow2"
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(disk)], check=True,
                                     capture_output=True, text=True).stdout)
    assert info["format"] == "qcow2" and "backing-filename" not in info
    assert (tmp_path / "out" / "efivars.fd").exists()
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert any(f["name"].endswith("e2e.qcow2") for f in manifest["builds"][0]["files"])
    assert not list(tmp_path.glob(".out.*")), "the staging directory must be gone"

    # Boot the artifact (through an overlay, so it stays pristine) and look for the provisioned unit's output.
    overlay = tmp_path / "again.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(disk), "-F", "qcow2", str(overlay)],
                   check=True)
    result = boot_until([*firmware_args("uefi", tmp_path), "-drive", f"file={overlay},if=virtio,format=qcow2"],
                        r"PERSISTED: FILE-MARKER-OK AUTHKEYS: \d+", timeout=600, workdir=tmp_path)
    assert result.matched, result.log[-3000:]
    assert "PERSISTED: FILE-MARKER-OK AUTHKEYS: 0" in result.log, result.log[-3000:]  # no ephemeral key left
    assert "ephemeral key removed from /home/e2e/.ssh/authorized_keys" in out
