"""The communicator and provisioners on the real Debian guest (QEMU TCG, user-net port forward, cloud-init).

One boot: factory's own wait (not a test helper) finds sshd through QEMU's forward, then shell and file
provisioners change the guest, a server-side drop mid-script reconnects through the forward, and the host's
ansible-playbook (ansible provisioner) logs in through the same forward with the build's key.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from fixtures.guest import GuestImage, cloud_config, free_port, make_cidata, qemu_argv

from factory.comm.keys import KeyPair
from factory.comm.ssh import SSHSettings, connect
from factory.errors import FactoryError
from factory.provision import ProvisionContext, run
from factory.schema.provisioners import AnsibleProvisioner, FileProvisioner, ShellProvisioner

SUDO = "chmod +x {{.Path}}; sudo -n env {{.Vars}} {{.Path}}"
DROP = ('sleep 1; P=$PPID; while [ "$(cat /proc/$P/comm)" != sshd ]; do P=$(cut -d" " -f4 /proc/$P/stat); done; '
        'kill -9 $P')


@pytest.mark.vm
def test_shell_and_file_provisioners_on_a_real_guest(debian_guest: GuestImage, tmp_path: Path) -> None:
    pair = KeyPair.generate()
    disk = debian_guest.overlay(tmp_path / "disk.qcow2")
    seed = make_cidata(cloud_config("builder", pair.public_openssh, hostname="h4c"),
                       b"instance-id: h4c\nlocal-hostname: h4c\n", tmp_path / "seed.iso")
    port = free_port()
    serial = tmp_path / "serial.log"
    proc = subprocess.Popen(qemu_argv(disk, tmp_path, port, serial, extra_drives=[seed]),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def alive() -> None:
        if proc.poll() is not None:
            raise FactoryError(f"qemu exited with {proc.returncode}")

    out: list[str] = []
    start = time.monotonic()

    def emit(line: str) -> None:
        out.append(line)
        print(f"{time.monotonic() - start:6.1f}s  {line}")  # shown with -s: where a slow guest spends its time

    ctx = ProvisionContext(build_name="guest", source_name="debian", source_type="qemu", emit=emit, root=tmp_path)
    try:
        with connect(SSHSettings(port=port, username="builder", keypair=pair, timeout=600), alive=alive) as comm:
            print(f"\nSSH to the TCG guest after {time.monotonic() - start:.0f}s")
            run("shell", ShellProvisioner(inline=["echo \"$GREETING from $(id -un) on $(hostname)\"",
                                                  "install -d -m 755 /opt/h4c"],
                                          environment_vars=["GREETING=hello"], execute_command=SUDO), comm, ctx)
            assert "hello from root on h4c" in out
            (tmp_path / "payload").mkdir()
            (tmp_path / "payload" / "app.conf").write_text("answer=42\n")
            run("file", FileProvisioner(source="payload", destination="/tmp/"), comm, ctx)
            run("shell", ShellProvisioner(inline=["echo first-part", DROP, "echo never-printed"],
                                          expect_disconnect=True), comm, ctx)
            run("shell", ShellProvisioner(inline=["cp /tmp/payload/app.conf /opt/h4c/", "echo after-drop"],
                                          execute_command=SUDO), comm, ctx)
            run("file", FileProvisioner(direction="download", source="/opt/h4c/app.conf",
                                        destination="back/"), comm, ctx)
            run("file", FileProvisioner(direction="download", source="/etc/os-release", destination="os-release"),
                comm, ctx)
            (tmp_path / "site.yml").write_text(
                "- hosts: default\n  become: true\n  tasks:\n"
                "    - ansible.builtin.copy:\n        dest: /opt/h4c/by-ansible\n"
                "        content: \"{{ packer_build_name }} {{ ansible_distribution_release }}\\n\"\n")
            run("ansible", AnsibleProvisioner(playbook_file="site.yml"), comm, ctx)
            run("shell", ShellProvisioner(inline=["echo ansible-wrote: $(cat /opt/h4c/by-ansible)"]), comm, ctx)
    finally:
        proc.kill()
        proc.wait()
    assert "first-part" in out and "never-printed" not in out and "after-drop" in out
    assert (tmp_path / "back" / "app.conf").read_text() == "answer=42\n"
    assert "bookworm" in (tmp_path / "os-release").read_text()
    assert "ansible-wrote: debian bookworm" in out
