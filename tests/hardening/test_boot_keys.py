"""Unknown `<keys>` in boot_command / boot_steps: a warning at the option's file:line when the template is read
(validate and build print the same one), typed literally at build time as Packer does; a character no key types
is an error at validate time, as it is for build."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from factory.machine import keys
from hardening.harness import assert_no_crash, assert_user_error, run_cli, template

# (boot_command element, expected pieces of the one warning)
UNKNOWN: list[tuple[str, list[str]]] = [
    ("linux <entr> quiet", ["boot_command[0]: <entr> at column 7", "typed literally", "did you mean <enter>?"]),
    ("<wait 5>", ["<wait 5> at column 1", "<wait5> or <wait1m30s> (no space)"]),
    ("<waitx>", ["<waitx>", "<wait5>"]),
    ("<leftCtrlOn>c<leftCtrlOf>", ["<leftCtrlOf> at column 14", "did you mean <leftCtrlOff>?"]),
    ("<F13>", ["<F13> at column 1"]),
    ("echo <html>", ["<html> at column 6", "write < and > apart"]),
    ("{{ .HTTPIP }}<nope>", ["<nope> at column 14"]),
]
KNOWN = ["<enter><esc><tab><bs><del><spacebar><f1><F12><up><down><left><right><insert><home><end>",
         "<pageUp><pageDown><menu><return><wait><wait5><wait1m30s><leftAltOn>x<leftAltOff>",
         "<leftShiftOn><rightCtrlOn><leftSuperOn><leftSuperOff><rightCtrlOff><leftShiftOff>",
         "url=http://{{ .HTTPIP }}:{{ .HTTPPort }}/preseed.cfg a < b > c <enter>"]


def _write(tmp_path: Path, line: str) -> Path:
    path = tmp_path / "t.pkr.hcl"
    path.write_text(template(f"  {line}\n"))
    return path


def _warnings(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("warning:")]


@pytest.mark.parametrize(("text", "expected"), UNKNOWN, ids=[u[0] for u in UNKNOWN])
def test_unknown_key_is_a_located_warning_not_an_error(tmp_path: Path, text: str, expected: list[str]) -> None:
    path = _write(tmp_path, f"boot_command = [{text!r}]".replace("'", '"'))
    res = run_cli(["validate", str(path)])
    assert res.code == 0, str(res)
    (warning,) = _warnings(res.err)
    assert warning.startswith(f"warning: {path}:5: source.qemu.a.boot_command[0]: "), warning
    for piece in expected:
        assert piece in warning, warning


def test_boot_steps_are_checked_too(tmp_path: Path) -> None:
    path = _write(tmp_path, 'boot_steps = [["<esc>", "menu"], ["<entr>", "go"]]')
    res = run_cli(["validate", str(path)])
    assert res.code == 0 and _warnings(res.err) == [
        f"warning: {path}:5: source.qemu.a.boot_steps[1]: <entr> at column 1 is no key, so it is typed literally "
        "(as Packer does); did you mean <enter>?"], str(res)


@pytest.mark.parametrize("text", KNOWN)
def test_known_keys_give_no_warning(tmp_path: Path, text: str) -> None:
    res = run_cli(["validate", str(_write(tmp_path, f"boot_command = [{text!r}]".replace("'", '"')))])
    assert res.code == 0 and not _warnings(res.err), str(res)


def test_build_keeps_working_and_prints_the_same_warning(tmp_path: Path) -> None:
    """build goes past the keys (it fails later, on the missing ISO, before any VM) and warns as validate does."""
    path = _write(tmp_path, 'boot_command = ["<entr>"]')
    runs = {cmd: run_cli([cmd, str(path)], cwd=tmp_path) for cmd in ("validate", "build")}
    assert _warnings(runs["build"].err) == _warnings(runs["validate"].err) != []
    assert_user_error(runs["build"], "x.iso")
    assert "<entr>" not in runs["build"].err.split("error:", 1)[1]


@pytest.mark.parametrize("command", ["validate", "build"])
def test_untypable_character_is_an_error_at_its_line(tmp_path: Path, command: str) -> None:
    path = _write(tmp_path, 'boot_command = ["<esc>", "caf\u00e9<enter>"]')
    res = run_cli([command, str(path)], cwd=tmp_path)
    assert_user_error(res, f"{path}:5:3", "boot_command[1]: character 'é' at column 4 cannot be typed")


# -- fuzzing ---------------------------------------------------------------------------------------------------
_PIECES = st.sampled_from(["<", ">", "<enter>", "<wait", "5>", "<entr>", "{{ .HTTPIP }}", "{{", "}}", "a", " ",
                           "<leftCtrlOn>", "Off>", "<f", "1", "é", "\\", "\n", "<wait 5>", "<>", "<1>"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_PIECES, max_size=30).map("".join))
def test_fuzz_boot_command_never_crashes_and_warns_where_parse_types_literally(tmp_path: Path, text: str) -> None:
    """Every unknown key found is typed literally by the parser the build uses; validate never crashes."""
    import json

    path = _write(tmp_path, f"boot_command = [{json.dumps(text)}]")
    res = run_cli(["validate", str(path)])
    assert_no_crash(res)
    if "é" in text:
        assert res.code == 1 and "cannot be typed" in res.err, str(res)
        return
    if "{{" in text:
        return   # placeholders are expanded (and checked) by the build
    actions = keys.parse(text)
    known = [m for m in keys._TAG.finditer(text) if keys._tag_actions(m.group(1)) is not None]
    assert actions.count(keys.Press("comma", shift=True)) == text.count("<") - len(known)
    assert res.code == 0 and len(_warnings(res.err)) == len(keys.unknown_keys(text)), str(res)
