"""boot_command parsing (Packer's key syntax) and Go-template placeholders."""

from __future__ import annotations

import pytest

from factory.errors import FactoryError
from factory.machine.keys import BootStep, Hold, Press, Wait, boot_steps, parse, parse_all, unknown_keys
from factory.placeholders import expand


def test_text_and_special_keys() -> None:
    assert parse("aB1<enter>") == [Press("a"), Press("b", shift=True), Press("1"), Press("ret")]
    assert parse("<esc><tab><bs><del><spacebar><f1><F12><up>") == [
        Press("esc"), Press("tab"), Press("backspace"), Press("delete"), Press("spc"), Press("f1"), Press("f12"),
        Press("up")]


def test_shifted_symbols_and_punctuation() -> None:
    assert parse("$ /:=") == [Press("4", shift=True), Press("spc"), Press("slash"), Press("semicolon", shift=True),
                              Press("equal")]


def test_waits() -> None:
    assert parse("<wait><wait5><wait10><wait1m30s><wait2h>") == [Wait(1), Wait(5), Wait(10), Wait(90), Wait(7200)]


def test_modifier_holds() -> None:
    assert parse("<leftCtrlOn>c<leftCtrlOff><leftShiftOn>x<leftShiftOff>") == [
        Hold("ctrl", True), Press("c"), Hold("ctrl", False), Hold("shift", True), Press("x"), Hold("shift", False)]


def test_lone_angle_bracket_is_text() -> None:
    assert parse("a < b") == [Press("a"), Press("spc"), Press("comma", shift=True), Press("spc"), Press("b")]


def test_unknown_key_is_typed_literally_as_packer_does() -> None:
    """The template layer warns about it at validate time (tests/hardening/test_boot_keys.py)."""
    assert parse_all(["<entr>"]) == parse("<") + parse("entr") + parse(">")
    assert parse("<waitx>") == [Press("comma", shift=True), *parse("waitx"), Press("dot", shift=True)]
    assert unknown_keys("linux <entr> <wait5> <wait 5> <leftCtrlOf><f1>") == [(7, "entr"), (22, "wait 5"),
                                                                            (31, "leftCtrlOf")]


def test_untypable_char_names_its_column() -> None:
    with pytest.raises(FactoryError, match="column 3"):
        parse("ab\u00e9")


def test_expand_placeholders() -> None:
    values = {"HTTPIP": "10.0.2.2", "HTTPPort": "8080", "Name": "vm", "SSHPublicKey": "ssh-ed25519 AAA+/= c"}
    text = "url=http://{{ .HTTPIP }}:{{.HTTPPort}}/{{ .Name }} key={{ .SSHPublicKey | urlquery }}"
    assert expand(text, values, "boot_command") == "url=http://10.0.2.2:8080/vm key=ssh-ed25519+AAA%2B%2F%3D+c"
    with pytest.raises(FactoryError, match=r"boot_command: unknown placeholder \{\{\.Nope\}\}"):
        expand("{{ .Nope }}", values, "boot_command")
    with pytest.raises(FactoryError, match="unknown template function"):
        expand("{{ .Name | upper }}", values, "boot_command")


def test_boot_steps_read_with_and_without_description() -> None:
    steps = boot_steps([["<esc><wait>", "open the prompt"], ["linux auto<enter>"]])
    assert steps == (BootStep("<esc><wait>", "open the prompt"), BootStep("linux auto<enter>", ""))


@pytest.mark.parametrize(("value", "message"), [
    ([["a", "b", "c"]], r"boot_steps\[0\] must be \[keys\] or \[keys, description\]"),
    ([[]], r"boot_steps\[0\] must be"),
    (["<enter>"], r"boot_steps\[0\] must be"),
    ([["<enter>", "ok"], ["x", 3]], r"boot_steps\[1\]: keys and description must be strings"),
    ("<enter>", "must be a list"),
])
def test_bad_boot_steps_name_the_step_with_a_hint(value: object, message: str) -> None:
    with pytest.raises(FactoryError, match=message) as err:
        boot_steps(value)
    assert err.value.hint and "description" in err.value.hint
