"""QEMU qcodes (what factory.machine.keys produces) as PC/AT scan code set 1 bytes, the codes
`VBoxManage controlvm NAME keyboardputscancode` takes (two hex digits each): make = code, break = code | 0x80,
and the extended keys behind an 0xe0 prefix. For the keys of set 1's first page the code is the Linux keycode."""

from __future__ import annotations

from collections.abc import Sequence

from factory.errors import FactoryError
from factory.machine.keys import Action, Hold, Press, Wait
from factory.machine.linux_keys import LINUX_KEYS

EXTENDED = {"ctrl_r": 0x1D, "alt_r": 0x38, "home": 0x47, "up": 0x48, "pgup": 0x49, "left": 0x4B, "right": 0x4D,
            "end": 0x4F, "down": 0x50, "pgdn": 0x51, "insert": 0x52, "delete": 0x53, "meta_l": 0x5B,
            "meta_r": 0x5C, "menu": 0x5D}
SHIFT = "shift"


def make(qcode: str) -> list[int]:
    """The bytes that press qcode."""
    if qcode in EXTENDED:
        return [0xE0, EXTENDED[qcode]]
    code = LINUX_KEYS.get(qcode)
    if code is None or code > 0x58:
        raise FactoryError(f"the VirtualBox driver cannot type the key {qcode!r}",
                           hint="it has no PC/AT scan code")
    return [code]


def release(qcode: str) -> list[int]:
    """The bytes that release qcode."""
    data = make(qcode)
    return [*data[:-1], data[-1] | 0x80]


def press(action: Press) -> list[int]:
    """One key typed, with shift when the character needs it (keys held by <xOn> stay down meanwhile)."""
    keys = [SHIFT, action.qcode] if action.shift else [action.qcode]
    out: list[int] = []
    for key in keys:
        out += make(key)
    for key in reversed(keys):
        out += release(key)
    return out


def keystrokes(actions: Sequence[Action]) -> list[list[int] | float]:
    """The scan codes of actions, one batch per key typed or held key changed; a float is seconds to wait."""
    out: list[list[int] | float] = []
    for action in actions:
        if isinstance(action, Wait):
            out.append(float(action.seconds))
        elif isinstance(action, Hold):
            out.append(make(action.qcode) if action.down else release(action.qcode))
        else:
            out.append(press(action))
    return out


def hex_args(codes: Sequence[int]) -> list[str]:
    """keyboardputscancode's arguments: two lower-case hex digits per byte."""
    return [f"{c:02x}" for c in codes]
