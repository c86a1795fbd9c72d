"""powershell, windows-shell, windows-restart, windows-update and the winrm communicator validate and show in
inspect; `factory build` refuses them before any build starts, naming the component and why."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).parent.parent / "template" / "data" / "windows_components.pkr.hcl"


def _factory(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    shutil.copy(DATA, tmp / "win.pkr.hcl")
    env = {**os.environ, "COLUMNS": "300"}
    return subprocess.run([sys.executable, "-m", "factory", *args, "win.pkr.hcl"], cwd=tmp, env=env,
                          capture_output=True, text=True, timeout=120)


def test_windows_components_validate_and_inspect(tmp_path: Path) -> None:
    assert _factory(tmp_path, "validate").returncode == 0
    out = _factory(tmp_path, "inspect").stdout
    listed = out.split("provisioners:")[1].split("post-processors:")[0].split()
    assert listed == ["powershell", "windows-restart", "windows-update", "windows-shell", "shell-local"]


def test_build_refuses_them_before_any_build_starts(tmp_path: Path) -> None:
    proc = _factory(tmp_path, "build")
    assert proc.returncode == 1
    err = proc.stderr
    assert 'win.pkr.hcl:1:1' in err and 'communicator = "winrm" cannot be used: factory has no WinRM' in err
    for line, kind in ((18, "powershell"), (24, "windows-restart"), (28, "windows-update"), (33, "windows-shell")):
        assert f'win.pkr.hcl:{line}:3 (build.provisioner[' in err
        assert f'provisioner "{kind}" cannot run for null.w: it runs commands in a Windows guest' in err
    # the other source's shell-local did not run either: refusals come before any build
    assert "local-ok" not in proc.stdout + err and "Traceback" not in err


def test_sources_without_them_still_build(tmp_path: Path) -> None:
    proc = _factory(tmp_path, "build", "-only", "null.l")
    assert proc.returncode == 0, proc.stderr
    assert "local-ok" in proc.stdout + proc.stderr
