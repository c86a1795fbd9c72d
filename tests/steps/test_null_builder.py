"""`source "null"`: provisioners on an existing host (a real sshd on loopback) or, with communicator none, only
host-side work (shell-local, post-processors incl. artifice); Packer's null builder checks at validate time."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.fixtures.sshd import SshServer


def _factory(tmp: Path, template: str, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp / "t.pkr.hcl").write_text(template)
    env = {**os.environ, "COLUMNS": "300"}
    return subprocess.run([sys.executable, "-m", "factory", *args, "t.pkr.hcl"], cwd=tmp, env=env,
                          capture_output=True, text=True, timeout=120)


NONE = """
source "null" "local" {
  communicator = "none"
  ssh_host     = null
}
build {
  sources = ["source.null.local"]
  provisioner "shell-local" {
    inline = ["echo built by ${source.type}.${source.name} > made.txt"]
  }
  post-processor "artifice" {
    files = ["made.txt"]
  }
  post-processor "shell-local" {
    inline = ["echo post-processed"]
  }
}
"""


def test_communicator_none_runs_shell_local_and_post_processors(tmp_path: Path) -> None:
    proc = _factory(tmp_path, NONE, "build")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "made.txt").read_text() == "built by null.local\n"
    out = proc.stdout + proc.stderr
    assert "post-processed" in out
    assert f"null.local: {tmp_path / 'made.txt'}" in out  # artifice's artifact is listed
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("output-")]  # no machine, no output dir


def test_null_builder_provisions_an_existing_host_over_ssh(tmp_path: Path, sshd: SshServer) -> None:
    key = tmp_path / "id"
    sshd.keypair.write_private(key)
    template = f"""
source "null" "host" {{
  ssh_host             = "{sshd.host}"
  ssh_port             = {sshd.port}
  ssh_username         = "{sshd.username}"
  ssh_private_key_file = "id"
  ssh_timeout          = "30s"
}}
build {{
  sources = ["source.null.host"]
  provisioner "shell" {{
    inline = ["echo remote-$((6 * 7)) on $PACKER_BUILDER_TYPE"]
  }}
}}
"""
    proc = _factory(tmp_path, template, "build")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout + proc.stderr
    assert "remote-42 on null" in out
    assert "did not export anything" in out


def test_null_builder_refuses_ssh_without_host_user_or_login(tmp_path: Path) -> None:
    proc = _factory(tmp_path, 'source "null" "x" {}\nbuild { sources = ["source.null.x"] }\n', "validate")
    assert proc.returncode == 1
    err = proc.stderr
    assert "t.pkr.hcl:1" in err
    assert "needs ssh_host" in err and "needs ssh_username" in err and "one SSH login method" in err
    assert "Traceback" not in err


def test_shell_provisioner_with_communicator_none_is_refused(tmp_path: Path) -> None:
    template = NONE.replace('provisioner "shell-local"', 'provisioner "shell"')
    proc = _factory(tmp_path, template, "build")
    assert proc.returncode == 1
    assert "shell" in proc.stderr and "communicator" in proc.stderr
    assert "Traceback" not in proc.stderr
