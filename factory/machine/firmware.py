"""UEFI firmware discovery through QEMU's firmware descriptors (/usr/share/qemu/firmware/*.json).

The descriptors are QEMU's interop standard and are shipped by Debian, Ubuntu and Fedora alike, so reading them
finds OVMF wherever the distribution put it (OVMF_CODE_4M.fd on Debian/Ubuntu, edk2/ovmf/OVMF_CODE.fd on
Fedora) instead of guessing paths. A fixed list of well-known paths is the fallback for hosts without them.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from factory.errors import FactoryError

DESCRIPTOR_DIRS = ("/etc/qemu/firmware", "/usr/share/qemu/firmware")
FALLBACK_PAIRS = (
    ("/usr/share/OVMF/OVMF_CODE_4M.fd", "/usr/share/OVMF/OVMF_VARS_4M.fd"),
    ("/usr/share/OVMF/OVMF_CODE.fd", "/usr/share/OVMF/OVMF_VARS.fd"),
    ("/usr/share/edk2/ovmf/OVMF_CODE.fd", "/usr/share/edk2/ovmf/OVMF_VARS.fd"),
    ("/usr/share/edk2-ovmf/x64/OVMF_CODE.fd", "/usr/share/edk2-ovmf/x64/OVMF_VARS.fd"),
)


@dataclass(frozen=True)
class UefiFirmware:
    code: Path
    vars_template: Path
    secure_boot: bool = False

    def writable_vars(self, directory: Path, name: str = "efivars.fd") -> Path:
        """A per-build copy of the variable store (the template must never be written to)."""
        dest = directory / name
        shutil.copyfile(self.vars_template, dest)
        os.chmod(dest, 0o644)
        return dest


def find_uefi(secure_boot: bool = False, arch: str = "x86_64") -> UefiFirmware:
    """The best UEFI firmware for arch: from QEMU's descriptors (highest priority first), else well-known paths."""
    for desc in _descriptors():
        fw = _from_descriptor(desc, secure_boot, arch)
        if fw:
            return fw
    if not secure_boot:
        for code, vars_ in FALLBACK_PAIRS:
            if os.path.exists(code) and os.path.exists(vars_):
                return UefiFirmware(Path(code), Path(vars_))
    raise FactoryError("no UEFI firmware (OVMF) found" + (" with Secure Boot" if secure_boot else ""),
                       hint="install OVMF (Debian/Ubuntu: apt-get install ovmf; Fedora: dnf install edk2-ovmf), "
                            "or set efi_firmware_code and efi_firmware_vars")


def _descriptors() -> list[dict[str, object]]:
    # Files in /etc override same-named ones in /usr/share; the name's numeric prefix orders priority.
    by_name: dict[str, Path] = {}
    for d in reversed(DESCRIPTOR_DIRS):
        if os.path.isdir(d):
            for p in Path(d).glob("*.json"):
                by_name[p.name] = p
    out = []
    for name in sorted(by_name):
        try:
            out.append(json.loads(by_name[name].read_text()))
        except (OSError, ValueError):
            continue
    return out


def _from_descriptor(desc: dict[str, object], secure_boot: bool, arch: str) -> UefiFirmware | None:
    if "uefi" not in (desc.get("interface-types") or []):  # type: ignore[operator]
        return None
    features = set(desc.get("features") or [])  # type: ignore[call-overload]
    if secure_boot != ("secure-boot" in features) or ("enrolled-keys" in features and not secure_boot):
        return None
    targets = desc.get("targets") or []
    if not any(t.get("architecture") == arch for t in targets):  # type: ignore[attr-defined]
        return None
    mapping = desc.get("mapping") or {}
    if not isinstance(mapping, dict) or mapping.get("device") != "flash":
        return None
    code = (mapping.get("executable") or {}).get("filename")
    vars_ = (mapping.get("nvram-template") or {}).get("filename")
    if code and vars_ and os.path.exists(code) and os.path.exists(vars_):
        return UefiFirmware(Path(code), Path(vars_), secure_boot)
    return None
