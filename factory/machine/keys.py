"""Packer's boot_command key syntax, parsed into typed actions that any driver can send.

`<enter>`, `<esc>`, `<f1>`..`<f12>`, `<leftShiftOn>`/`<leftShiftOff>`, `<wait>`, `<wait5>`, `<wait1m30s>` and
plain text. Keys are QEMU qcodes (QMP input-send-event); other drivers map qcodes to their own scancodes.
Template placeholders (`{{ .HTTPIP }}`, `{{ .SSHPublicKey | urlquery }}` ...) are expanded before parsing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from factory.errors import FactoryError
from factory.schema.values import BootStep as BootStep  # the option value types live in the schema
from factory.schema.values import boot_steps as boot_steps

SPECIAL: dict[str, str] = {
    "enter": "ret", "return": "ret", "esc": "esc", "tab": "tab", "bs": "backspace", "del": "delete",
    "spacebar": "spc", "insert": "insert", "home": "home", "end": "end", "pageup": "pgup", "pagedown": "pgdn",
    "up": "up", "down": "down", "left": "left", "right": "right", "menu": "menu",
    "leftalt": "alt", "rightalt": "alt_r", "leftctrl": "ctrl", "rightctrl": "ctrl_r",
    "leftshift": "shift", "rightshift": "shift_r", "leftsuper": "meta_l", "rightsuper": "meta_r",
    **{f"f{n}": f"f{n}" for n in range(1, 13)},
}
MODIFIERS = ("leftalt", "rightalt", "leftctrl", "rightctrl", "leftshift", "rightshift", "leftsuper", "rightsuper")

_PLAIN = {" ": "spc", "-": "minus", "=": "equal", "[": "bracket_left", "]": "bracket_right", ";": "semicolon",
          "'": "apostrophe", "`": "grave_accent", "\\": "backslash", ",": "comma", ".": "dot", "/": "slash",
          "\n": "ret", "\t": "tab"}
_SHIFTED = {"!": "1", "@": "2", "#": "3", "$": "4", "%": "5", "^": "6", "&": "7", "*": "8", "(": "9", ")": "0",
            "_": "minus", "+": "equal", "{": "bracket_left", "}": "bracket_right", ":": "semicolon",
            '"': "apostrophe", "~": "grave_accent", "|": "backslash", "<": "comma", ">": "dot", "?": "slash"}


@dataclass(frozen=True)
class Press:
    """Press and release a key, optionally with shift held (the text character it came from, for logs)."""

    qcode: str
    shift: bool = False


@dataclass(frozen=True)
class Hold:
    """Press (down=True) or release a key without the other half: `<leftCtrlOn>` ... `<leftCtrlOff>`."""

    qcode: str
    down: bool


@dataclass(frozen=True)
class Wait:
    seconds: float


Action = Press | Hold | Wait


_TAG = re.compile(r"<([A-Za-z][A-Za-z0-9]*)>")
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def char_action(ch: str) -> Press:
    """The key press that types one character on a US layout."""
    if ch.isascii() and ch.isalnum():
        return Press(ch.lower(), shift=ch.isupper())
    if ch in _PLAIN:
        return Press(_PLAIN[ch])
    if ch in _SHIFTED:
        return Press(_SHIFTED[ch], shift=True)
    raise ValueError(ch)


def _wait_seconds(arg: str) -> float | None:
    if arg == "":
        return 1.0
    if arg.isdigit():
        return float(arg)
    m = _DURATION.match(arg)
    if not m or not any(m.groups()):
        return None
    h, mins, s = (int(g or 0) for g in m.groups())
    return float(h * 3600 + mins * 60 + s)


def _tag_actions(name: str) -> list[Action] | None:
    low = name.lower()
    if low.startswith("wait"):
        secs = _wait_seconds(low[4:])
        return None if secs is None else [Wait(secs)]
    if low in SPECIAL:
        return [Press(SPECIAL[low])]
    for suffix, down in (("on", True), ("off", False)):
        base = low.removesuffix(suffix)
        if low.endswith(suffix) and base in MODIFIERS + tuple(SPECIAL):
            return [Hold(SPECIAL[base], down)]
    return None


def parse(text: str, *, where: str = "boot_command") -> list[Action]:
    """Parse one boot_command string. A `<name>` that is no key is typed literally, as Packer does (the template
    layer warns about it at validate time, see unknown_keys); an untypable character is an error naming its
    position."""
    actions: list[Action] = []
    pos = 0
    while pos < len(text):
        m = _TAG.match(text, pos)
        tag = _tag_actions(m.group(1)) if m else None
        if m and tag is not None:
            actions.extend(tag)
            pos = m.end()
            continue
        try:
            actions.append(char_action(text[pos]))
        except ValueError:
            raise FactoryError(f"{where}: character {text[pos]!r} at column {pos + 1} cannot be typed "
                               "on a US keyboard", hint="type it with its key sequence instead") from None
        pos += 1
    return actions


# What looks like an attempt at a key: a letter, then up to 30 characters without brackets (`<wait 5>` too).
_TAG_LIKE = re.compile(r"<([A-Za-z][^<>\n]{0,30})>")


def unknown_keys(text: str) -> list[tuple[int, str]]:
    """(column, name) of every `<name>` in text that is no key, wait or modifier (Packer types those literally)."""
    return [(m.start() + 1, m.group(1)) for m in _TAG_LIKE.finditer(text)
            if not _TAG.fullmatch(m.group(0)) or _tag_actions(m.group(1)) is None]


def untypable(text: str) -> list[tuple[int, str]]:
    """(column, character) of every character no key of a US keyboard types."""
    out = []
    for pos, ch in enumerate(text):
        try:
            char_action(ch)
        except ValueError:
            out.append((pos + 1, ch))
    return out


def key_names() -> list[str]:
    """The names `<...>` accepts, for "did you mean" (waits and modifier On/Off forms included)."""
    def camel(name: str) -> str:   # as Packer's docs write them: leftCtrl, pageUp
        return re.sub(r"^(left|right|page)(.)", lambda m: m.group(1) + m.group(2).upper(), name)

    holds = [f"{camel(m)}{s}" for m in MODIFIERS for s in ("On", "Off")]
    return [*(camel(k) for k in SPECIAL), "wait", *holds]


def parse_all(commands: Sequence[str]) -> list[Action]:
    """Parse every element of boot_command (Packer concatenates them)."""
    out: list[Action] = []
    for i, cmd in enumerate(commands):
        out.extend(parse(cmd, where=f"boot_command[{i}]"))
    return out
