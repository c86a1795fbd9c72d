"""vagrant-registry (HCP Vagrant Box Registry) validates and shows in inspect; `factory build` refuses it
before the build starts, naming it and why, and masks its client_secret."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TEMPLATE = """
source "null" "n" {
  communicator = "none"
}
build {
  sources = ["source.null.n"]
  provisioner "shell-local" {
    inline = ["echo local-ran"]
  }
  post-processors {
    post-processor "artifice" {
      files = ["my.box"]
    }
    post-processor "vagrant-registry" {
      box_tag       = "myorg/mybox"
      version       = "0.1.0"
      client_id     = "cid"
      client_secret = "Sup3r-secret-9"
      architecture  = "amd64"
    }
  }
}
"""


def _factory(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp / "t.pkr.hcl").write_text(TEMPLATE)
    return subprocess.run([sys.executable, "-m", "factory", *args, "t.pkr.hcl"], cwd=tmp,
                          env={**os.environ, "COLUMNS": "300"}, capture_output=True, text=True, timeout=120)


def test_vagrant_registry_validates_inspects_and_is_refused_by_build(tmp_path: Path) -> None:
    assert _factory(tmp_path, "validate").returncode == 0
    assert "vagrant-registry" in _factory(tmp_path, "inspect").stdout
    proc = _factory(tmp_path, "build")
    assert proc.returncode == 1
    assert 't.pkr.hcl:14:5' in proc.stderr
    assert 'post-processor "vagrant-registry" cannot run for null.n: it publishes to HCP Vagrant Box' in proc.stderr
    assert "local-ran" not in proc.stdout + proc.stderr   # refused before anything ran
    assert "Sup3r-secret-9" not in proc.stdout + proc.stderr and "Traceback" not in proc.stderr
