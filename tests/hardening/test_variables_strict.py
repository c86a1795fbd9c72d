"""Variables: a validation condition must be a boolean and a var file holds constants only, as in Packer."""

from __future__ import annotations

from pathlib import Path

import pytest

from hardening.harness import assert_user_error, run_cli, template

VALIDATED = ('variable "x" {\n  default = "a"\n  validation {\n    condition     = %s\n'
             '    error_message = "The x."\n  }\n}\n')


@pytest.mark.parametrize(("condition", "code"), [('"yes"', 1), ("1", 1), ('"true"', 0), ('var.x == "a"', 0)])
def test_condition_must_be_boolean(tmp_path: Path, condition: str, code: int) -> None:
    path = tmp_path / "t.pkr.hcl"
    path.write_text(VALIDATED % condition + template())
    res = run_cli(["validate", str(path)])
    if code:
        assert_user_error(res, f"{path}:4:5", "must be true or false")
    else:
        assert res.code == 0, str(res)


@pytest.mark.parametrize(("var_file", "expected"), [
    ('x = upper("a")\n', ["{v}:1:5", 'function calls are not allowed here ("upper(...)")']),
    ('x = ["a", lower("B")]\n', ["{v}:1:11", "function calls are not allowed"]),
])
def test_var_file_takes_constants_only(tmp_path: Path, var_file: str, expected: list[str]) -> None:
    path = tmp_path / "t.pkr.hcl"
    path.write_text('variable "x" {\n  default = "a"\n}\n' + template())
    values = tmp_path / "v.pkrvars.hcl"
    values.write_text(var_file)
    assert_user_error(run_cli(["validate", "-var-file", str(values), str(path)]),
                      *(e.format(v=values) for e in expected))


@pytest.mark.parametrize(("args", "expected"), [
    (["-var", "y=1"], ['-var "y": no variable named "y" is declared', 'declare it with variable "y" {}']),
    (["-var", "xx=1"], ['-var "xx": no variable named "xx" is declared', 'did you mean "x"?']),
    (["-var", "x.y=1"], ['-var "x.y": no variable named "x.y" is declared']),
    (["-var", "x"], ["invalid -var 'x'", "write -var name=value"]),
    (["-var", "=1"], ["invalid -var '=1'"]),
])
@pytest.mark.parametrize("command", ["validate", "build"])
def test_undeclared_var_is_named(tmp_path: Path, args: list[str], expected: list[str], command: str) -> None:
    path = tmp_path / "t.pkr.hcl"
    path.write_text('variable "x" {\n  default = "a"\n}\n' + template())
    res = run_cli([command, *args, str(path)], cwd=tmp_path)
    assert_user_error(res, *expected)
    assert res.err.count("error:") == 1, res.err


def test_undeclared_value_in_a_var_file_is_a_located_warning(tmp_path: Path) -> None:
    """Packer warns (not fails) about var-file values nothing declares."""
    path = tmp_path / "t.pkr.hcl"
    path.write_text('variable "x" {\n  default = "a"\n}\n' + template())
    values = tmp_path / "v.pkrvars.hcl"
    values.write_text('x = "b"\ny = 1\n')
    res = run_cli(["validate", "-var-file", str(values), str(path)])
    assert res.code == 0 and f'warning: {values}:2: value for undeclared variable "y" is ignored' in res.err, str(res)
