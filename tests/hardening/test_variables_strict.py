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
