"""A shell or shell-local provisioner with nothing to run, or naming a script that is not there, is refused by
`validate` at its line (Packer's provisioners refuse both when they prepare)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardening.harness import assert_user_error, run_cli, template


@pytest.mark.parametrize(("block", "expected"), [
    ('  provisioner "shell" {\n  }\n', ["{f}:8:3", "nothing to run", "inline, script, scripts"]),
    ('  provisioner "shell" {\n    script = "nope.sh"\n  }\n', ["{f}:9:5", "script nope.sh does not exist"]),
    ('  provisioner "shell" {\n    scripts = ["nope.sh"]\n  }\n', ["{f}:9:5", "script nope.sh does not exist"]),
    ('  provisioner "shell-local" {\n  }\n', ["{f}:8:3", "nothing to run", "command, inline, script, scripts"]),
    ('  provisioner "shell" {\n    inline = []\n  }\n', ["{f}:9:5", "nothing to run"]),
    ('  provisioner "shell-local" {\n    script = "nope.sh"\n  }\n', ["{f}:9:5", "script nope.sh does not exist"]),
    ('  provisioner "file" {\n    destination = "/tmp/x"\n  }\n',
     ["{f}:8:3", "file provisioner has nothing to copy", "source, sources, content"]),
    ('  provisioner "file" {\n    source = "gone.txt"\n    destination = "/x"\n  }\n',
     ["{f}:9:5", "source gone.txt does not exist", "generated = true"]),
    ('  provisioner "file" {\n    sources = ["gone.txt"]\n    destination = "/x/"\n  }\n',
     ["{f}:9:5", "source gone.txt does not exist"]),
    ('  provisioner "powershell" {\n  }\n', ["{f}:8:3", "powershell provisioner has nothing to run"]),
    ('  provisioner "windows-shell" {\n    script = "x.bat"\n  }\n', ["{f}:9:5", "script x.bat does not exist"]),
    ('  post-processor "shell-local" {\n  }\n',
     ["{f}:8:3", "shell-local post-processor has nothing to run", "command, inline, script, scripts"]),
    ('  post-processor "shell-local" {\n    scripts = ["gone.sh"]\n  }\n',
     ["{f}:9:5", "post-processor: script gone.sh does not exist"]),
])
@pytest.mark.parametrize("command", ["validate", "build"])
def test_provisioner_with_nothing_to_run_is_refused(tmp_path: Path, block: str, expected: list[str],
                                                   command: str) -> None:
    path = tmp_path / "t.pkr.hcl"
    path.write_text(template(build_lines=block))
    res = run_cli([command, str(path)], cwd=tmp_path)
    assert_user_error(res, *(e.format(f=path) for e in expected))
    assert res.err.count("error:") == 1, res.err


def test_script_relative_to_working_directory_is_found(tmp_path: Path) -> None:
    (tmp_path / "setup.sh").write_text("echo hi\n")
    path = tmp_path / "t.pkr.hcl"
    path.write_text(template(build_lines='  provisioner "shell" {\n    script = "setup.sh"\n  }\n'))
    assert run_cli(["validate", str(path)], cwd=tmp_path).code == 0
