"""`factory build` bad input: one clear message, no traceback, nothing started."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TEMPLATE = """
source "qemu" "x" {
  iso_url = "disk.img"
  iso_checksum = "none"
  disk_image = true
  ssh_username = "u"
  output_directory = "out"
}
build { sources = ["source.qemu.x"] }
"""


def _build(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp / "t.pkr.hcl").write_text(TEMPLATE)
    env = {**os.environ, "COLUMNS": "300"}
    return subprocess.run([sys.executable, "-m", "factory", "build", *args, "t.pkr.hcl"], cwd=tmp, env=env,
                          capture_output=True, text=True, timeout=120)


def test_non_empty_output_directory_is_refused_without_force(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.qcow2").write_text("keep me")
    proc = _build(tmp_path)
    assert proc.returncode == 1
    assert "output directory" in proc.stderr and "not empty" in proc.stderr and "-force" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (tmp_path / "out" / "old.qcow2").read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out")] == []


def test_only_matching_nothing_is_an_error(tmp_path: Path) -> None:
    proc = _build(tmp_path, "-only", "qemu.nope")
    assert proc.returncode == 1
    assert "no source matches the -only/-except filters" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_boot_command_fails_before_any_vm_starts(tmp_path: Path) -> None:
    template = TEMPLATE.replace('output_directory = "out"',
                                'output_directory = "out"\n  boot_command = ["<enter>", "x\u00e9"]')
    (tmp_path / "t.pkr.hcl").write_text(template)
    env = {**os.environ, "COLUMNS": "300"}
    proc = subprocess.run([sys.executable, "-m", "factory", "build", "t.pkr.hcl"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "boot_command[1]: character 'é' at column 2 cannot be typed" in proc.stderr
    assert "Starting the VM" not in proc.stderr and "Traceback" not in proc.stderr


def test_build_and_validate_print_the_same_template_warnings(tmp_path: Path) -> None:
    """Both commands share their -var/-only/... definitions and the loader that prints the warnings."""
    (tmp_path / "t.pkr.hcl").write_text(TEMPLATE.replace('ssh_username = "u"', 'ssh_username = "u"\n'
                                                         '  ssh_wait_timeout = "5m"'))
    env = {**os.environ, "COLUMNS": "300"}
    runs = {cmd: subprocess.run([sys.executable, "-m", "factory", cmd, "t.pkr.hcl"],  # build: disk.img is missing
                                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
            for cmd in ("validate", "build")}
    warnings = {cmd: [line for line in run.stderr.splitlines() if line.startswith("warning:")]
                for cmd, run in runs.items()}
    assert warnings["build"] and warnings["build"] == warnings["validate"]
    assert any("ssh_wait_timeout" in w for w in warnings["build"])
    assert runs["build"].returncode == 1 and "disk.img" in runs["build"].stderr
