"""`factory build` through the CLI with Packer's communicator options, on a real QEMU (TCG, a GRUB guest that
boots in seconds) with skip_nat_mapping: a real OpenSSH server on the host stands in for a bridged guest, and a
second one is the bastion. The build stops with a failing last provisioner on purpose: GRUB ignores ACPI, and
waiting out the power-down would cost minutes without proving anything more here."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
from fixtures.grubvm import grub_image, grub_source
from fixtures.sshd import PASSWORD, SshServer, free_port, running_sshd
from test_build_failures import Run, qemu_pids


@pytest.mark.vm
def test_build_through_a_bastion_with_scp_pty_and_a_local_tunnel(tmp_path: Path, sshd: SshServer) -> None:
    name = f"comm-{uuid.uuid4().hex[:8]}"
    (tmp_path / "t").mkdir()
    image = grub_image(tmp_path / "t")
    key = sshd.keypair.write_private(tmp_path / "t" / "id_ed25519")
    tunnel = free_port()
    remote = f"/tmp/factory-{name}.txt"
    host_key = subprocess.run(["ssh-keygen", "-y", "-f", str(sshd.workdir / "host_ed25519")], check=True,
                              capture_output=True, text=True).stdout.split()[1]
    with running_sshd(tmp_path / "bastion", extra="LogLevel DEBUG1\n") as bastion:
        tpl = tmp_path / "t" / "t.pkr.hcl"
        tpl.write_text(grub_source(image.name, name, f"""
  skip_nat_mapping         = true
  ssh_host                 = "127.0.0.1"
  ssh_port                 = {sshd.port}
  ssh_username             = "{sshd.username}"
  ssh_private_key_file     = "{key}"
  ssh_bastion_host         = "{bastion.host}"
  ssh_bastion_port         = {bastion.port}
  ssh_bastion_username     = "{bastion.username}"
  ssh_bastion_password     = "{PASSWORD}"
  ssh_file_transfer_method = "scp"
  ssh_pty                  = true
  ssh_local_tunnels        = ["{tunnel}:127.0.0.1:{sshd.port}"]
""") + f"""
build {{
  sources = ["source.qemu.g"]
  provisioner "file" {{
    content     = "UPLOADED-OVER-SCP"
    destination = "{remote}"
  }}
  provisioner "shell" {{
    inline = ["tty >/dev/null && echo ON-A-TTY", "cat {remote}; echo", "rm -f {remote}"]
  }}
  provisioner "shell-local" {{
    inline = ["ssh-keyscan -p {tunnel} 127.0.0.1 2>/dev/null | sed 's/^/KEYSCAN /'"]
  }}
  provisioner "shell" {{
    inline = ["exit 3"]
  }}
}}
""")
        run = Run(tpl, tmp_path / "cache")
        code = run.finish(timeout=300)
        text = run.text
        bastion_log = bastion.log()
    assert code == 1 and "inline script exited with status 3" in text, text
    assert "[shell] ON-A-TTY" in text and "[shell] UPLOADED-OVER-SCP" in text, text       # ssh_pty, scp
    assert f"[shell-local] KEYSCAN [127.0.0.1]:{tunnel} ssh-ed25519 {host_key}" in text, text  # the tunnel
    assert f"target 127.0.0.1 port {sshd.port}" in bastion_log                            # via the bastion
    assert PASSWORD not in text
    assert qemu_pids(name) == []
