"""QEMU qcodes (what factory.machine.keys produces) as Linux input keycodes (linux/input-event-codes.h), the
key set virDomainSendKey takes as VIR_KEYCODE_SET_LINUX."""

from __future__ import annotations

_ROWS = {2: "1234567890", 16: "qwertyuiop", 30: "asdfghjkl", 44: "zxcvbnm"}

LINUX_KEYS: dict[str, int] = {
    **{ch: start + i for start, row in _ROWS.items() for i, ch in enumerate(row)},
    "esc": 1, "minus": 12, "equal": 13, "backspace": 14, "tab": 15, "bracket_left": 26, "bracket_right": 27,
    "ret": 28, "ctrl": 29, "semicolon": 39, "apostrophe": 40, "grave_accent": 41, "shift": 42, "backslash": 43,
    "comma": 51, "dot": 52, "slash": 53, "shift_r": 54, "alt": 56, "spc": 57,
    **{f"f{n}": 58 + n for n in range(1, 11)}, "f11": 87, "f12": 88,
    "ctrl_r": 97, "alt_r": 100, "home": 102, "up": 103, "pgup": 104, "left": 105, "right": 106, "end": 107,
    "down": 108, "pgdn": 109, "insert": 110, "delete": 111, "meta_l": 125, "meta_r": 126, "menu": 139,
}
