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
])
def test_provisioner_with_nothing_to_run_is_refused(tmp_path: Path, block: str, expected: list[str]) -> None:
    path = tmp_path / "t.pkr.hcl"
    path.write_text(template(build_lines=block))
    assert_user_error(run_cli(["validate", str(path)], cwd=tmp_path), *(e.format(f=path) for e in expected))


def test_script_relative_to_working_directory_is_found(tmp_path: Path) -> None:
    (tmp_path / "setup.sh").write_text("echo hi\n")
    path = tmp_path / "t.pkr.hcl"
    path.write_text(template(build_lines='  provisioner "shell" {\n    script = "setup.sh"\n  }\n'))
    assert run_cli(["validate", str(path)], cwd=tmp_path).code == 0
