"""Boot menu rewriting for unattended installs: GRUB (grub.cfg, loopback.cfg) and ISOLINUX/SYSLINUX configs.

Every install entry gets the unattended kernel arguments (before `---`, keeping its own arguments), the menu
timeout drops to about a second, and the default entry is made an install entry (RHEL's default is the media
check, which fails on a remastered ISO). Rescue and memory-test entries are left alone.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from enum import StrEnum

GRUB_TIMEOUT_S = 1
ISOLINUX_TIMEOUT_DS = 10  # ISOLINUX counts tenths of a second

# Arguments that mark an entry which must not start an unattended install.
_NOT_INSTALL = ("rescue/enable=true", "inst.rescue", "memtest", "hwdetect", "systemd.unit=rescue")
# Entries that install but are a poor default (anaconda's media check cannot pass on a remastered ISO).
_POOR_DEFAULT = ("rd.live.check",)


class Loader(StrEnum):
    GRUB = "grub"
    ISOLINUX = "isolinux"


@dataclass(frozen=True)
class Patched:
    """A rewritten config and how many install entries got the arguments."""

    text: str
    entries: int


def loader_for(path: str) -> Loader:
    """Which boot loader reads a config, from its path on the media."""
    low = path.lower()
    return Loader.ISOLINUX if ("isolinux" in low or "syslinux" in low) else Loader.GRUB


def patch(path: str, text: str, kernel_args: str) -> Patched:
    """Rewrite one boot config for an unattended install."""
    if loader_for(path) is Loader.ISOLINUX:
        return patch_isolinux(text, kernel_args, is_main=path.lower().rsplit("/", 1)[-1] in
                              ("isolinux.cfg", "syslinux.cfg"))
    return patch_grub(text, kernel_args)


def grub_escape(args: str) -> str:
    """GRUB treats `;` as a command separator (and `\\` as an escape): escape them on a linux line."""
    return args.replace("\\", "\\\\").replace(";", "\\;")


def _is_install(args: str) -> bool:
    return not any(marker in args for marker in _NOT_INSTALL)


def _insert_args(line: str, existing: str, new_args: str, escape: bool) -> str:
    """Put new_args before a standalone `---` (or at the end), skipping tokens the line already has."""
    have = set(existing.replace("\\;", ";").split())
    tokens = [t for t in shlex.split(new_args, posix=False) if t not in have]
    if not tokens:
        return line
    added = " ".join(tokens)
    if escape:
        added = grub_escape(added)
    match = re.search(r"(?<=\s)---(?=\s|$)", line)
    if match:
        return line[: match.start()] + added + " " + line[match.start():]
    stripped = line.rstrip()
    return stripped + " " + added + line[len(stripped):]


_GRUB_LINUX = re.compile(r"^(\s*)(linux|linuxefi)(\s+)(\S+)(.*)$")
_GRUB_TIMEOUT = re.compile(r"^(\s*)set\s+timeout\s*=\s*\S+\s*$")
_GRUB_DEFAULT = re.compile(r"""^(\s*)set\s+default\s*=\s*["']?([^"'\s]*)["']?\s*$""")
_GRUB_ENTRY = re.compile(r"^\s*(menuentry|submenu)\b")


def patch_grub(text: str, kernel_args: str) -> Patched:
    """Add kernel_args to every install `linux` line, set timeout=1, and make the default an install entry."""
    lines = text.splitlines(keepends=True)
    count = 0
    depth = 0
    top: list[tuple[int, bool]] = []  # (line index, good default) of each top-level menuentry/submenu
    for i, line in enumerate(lines):
        if depth == 0 and _GRUB_ENTRY.match(line):
            top.append((i, False))
        m = _GRUB_LINUX.match(line)
        if m and _is_install(m.group(4) + m.group(5)):
            lines[i] = _insert_args(line, m.group(5), kernel_args, escape=True)
            count += 1
            if top and top[-1][0] >= 0 and not any(p in m.group(5) for p in _POOR_DEFAULT):
                top[-1] = (top[-1][0], True)
        depth += line.count("{") - line.count("}")
    if not count:
        return Patched(text, 0)
    _grub_timeout_and_default(lines, top)
    return Patched("".join(lines), count)


def _grub_timeout_and_default(lines: list[str], top: list[tuple[int, bool]]) -> None:
    found_timeout = False
    default_at, default_value = -1, "0"
    for i, line in enumerate(lines):
        if m := _GRUB_TIMEOUT.match(line):
            lines[i] = f"{m.group(1)}set timeout={GRUB_TIMEOUT_S}\n"
            found_timeout = True
        elif m := _GRUB_DEFAULT.match(line):
            default_at, default_value = i, m.group(2)
    first_entry = top[0][0] if top else len(lines)
    good = [n for n, (_, ok) in enumerate(top) if ok]
    current_ok = default_value.isdigit() and int(default_value) < len(top) and top[int(default_value)][1]
    inserts: list[str] = []
    if good and not current_ok:
        if default_at >= 0:
            indent = lines[default_at][: len(lines[default_at]) - len(lines[default_at].lstrip())]
            lines[default_at] = f'{indent}set default="{good[0]}"\n'
        else:
            inserts.append(f'set default="{good[0]}"\n')
    if not found_timeout:
        inserts.append(f"set timeout={GRUB_TIMEOUT_S}\n")
    lines[first_entry:first_entry] = inserts


_SYS_KEYWORD = re.compile(r"^(\s*)(\S+)(\s*)(.*?)(\s*)$")


def patch_isolinux(text: str, kernel_args: str, *, is_main: bool = False) -> Patched:
    """Add kernel_args to every install `append`, set `timeout 10`, and keep `menu default` on an install."""
    lines = text.splitlines(keepends=True)
    labels: list[tuple[str, int, bool]] = []  # (name, line index, good default)
    default_line, menu_default_line, has_timeout, count = -1, -1, False, 0
    for i, line in enumerate(lines):
        m = _SYS_KEYWORD.match(line.rstrip("\n"))
        if not m:
            continue
        key, value = m.group(2).lower(), m.group(4)
        if key == "label":
            labels.append((value.strip(), i, False))
        elif key == "timeout":
            lines[i] = f"{m.group(1)}{m.group(2)} {ISOLINUX_TIMEOUT_DS}\n"
            has_timeout = True
        elif key == "default":
            default_line = i
        elif key == "menu" and value.strip().lower() == "default":
            menu_default_line = i
        elif key == "append" and labels and _is_install(value) and _installer_label(lines, labels[-1][1], i):
            lines[i] = _insert_args(line, value, kernel_args, escape=False)
            count += 1
            if not any(p in value for p in _POOR_DEFAULT):
                labels[-1] = (labels[-1][0], labels[-1][1], True)
    if count:
        _isolinux_default(lines, labels, default_line, menu_default_line)
    if is_main and not has_timeout:
        lines.append(f"timeout {ISOLINUX_TIMEOUT_DS}\n")
    return Patched("".join(lines), count)


def _installer_label(lines: list[str], start: int, end: int) -> bool:
    """A label block boots an installer kernel (not memtest, chain.c32, localboot ...)."""
    block = "".join(lines[start:end]).lower()
    return not any(word in block for word in ("memtest", "localboot", "chain.c32", "hdt.c32", ".c32\n"))


def _isolinux_default(lines: list[str], labels: list[tuple[str, int, bool]],
                      default_line: int, menu_default_line: int) -> None:
    good = [lab for lab in labels if lab[2]]
    if not good:
        return
    if menu_default_line >= 0:
        owner = max((lab for lab in labels if lab[1] < menu_default_line), key=lambda lab: lab[1], default=None)
        if owner is None or not owner[2]:
            lines[menu_default_line] = ""
            indent = re.match(r"\s*", lines[good[0][1] + 1] if good[0][1] + 1 < len(lines) else "")
            lines[good[0][1]] = lines[good[0][1]] + f"{indent.group(0) if indent else ''}menu default\n"
    if default_line >= 0:
        name = lines[default_line].split(None, 1)[1].strip() if len(lines[default_line].split()) > 1 else ""
        by_name = {lab[0]: lab for lab in labels}
        if name in by_name and not by_name[name][2]:
            lines[default_line] = f"default {good[0][0]}\n"
