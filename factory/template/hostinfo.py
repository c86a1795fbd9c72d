"""The `host-info` data source (Stromweld/packer-plugin-host-info): facts about the machine running factory.

Its outputs are what the plugin reads through Go's runtime and gopsutil: `os_type` is GOOS, `architecture`
GOARCH, and on Linux `platform`/`version` are os-release's ID/VERSION_ID with `family` the distribution family
gopsutil names. Templates such as chef/bento choose firmware paths and accelerators from them.
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

# Python's machine names as Go's GOARCH spells them.
_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64", "i386": "386",
           "i686": "386", "armv7l": "arm", "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}
# gopsutil's PlatformFamily for the os-release IDs it knows.
_FAMILY = {"debian": "debian", "ubuntu": "debian", "linuxmint": "debian", "raspbian": "debian",
           "fedora": "fedora", "rhel": "rhel", "redhat": "rhel", "centos": "rhel", "rocky": "rhel",
           "almalinux": "rhel", "ol": "rhel", "oracle": "rhel", "amzn": "rhel", "amazon": "rhel",
           "scientific": "rhel", "cloudlinux": "rhel", "suse": "suse", "sles": "suse", "opensuse": "suse",
           "opensuse-leap": "suse", "opensuse-tumbleweed": "suse", "gentoo": "gentoo", "arch": "arch",
           "manjaro": "arch", "alpine": "alpine", "coreos": "coreos", "nixos": "nixos"}


def _os_release(path: Path = Path("/etc/os-release")) -> dict[str, str]:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return {}
    found = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if sep and key.strip():
            found[key.strip()] = value.strip().strip("\"'")
    return found


def host_info(os_release: Path = Path("/etc/os-release")) -> dict[str, str]:
    """The object `data "host-info" "NAME" {}` exposes."""
    machine = platform.machine().lower()
    os_type = {"win32": "windows", "cygwin": "windows"}.get(sys.platform, platform.system().lower())
    info = {"os_type": os_type, "architecture": _GOARCH.get(machine, machine),
            "version": platform.release(), "platform": os_type, "family": "standalone" if os_type == "darwin" else ""}
    if os_type == "linux":
        rel = _os_release(os_release)
        ident = rel.get("ID", "").lower()
        platform_name = "redhat" if ident == "rhel" else ("oracle" if ident == "ol" else ident)
        info.update(version=rel.get("VERSION_ID", ""), platform=platform_name, family=_FAMILY.get(ident, ""))
    return info
