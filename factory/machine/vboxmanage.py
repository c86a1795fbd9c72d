"""VBoxManage, the one way factory talks to VirtualBox: where it is, its version, running it, reading its output.

VBoxManage is found in `VBOX_INSTALL_PATH` (a path list, as VirtualBox's installers set it and Packer reads it)
and then on PATH. Every call goes through factory.run (argv lists only). A failure becomes one FactoryError
that quotes VirtualBox's own `VBoxManage: error: ...` lines and the command line that failed.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from factory import secrets
from factory.errors import FactoryError
from factory.run import run

EXE = "VBoxManage"
ERROR_PREFIX = "VBoxManage: error: "
_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)")
_LINE = re.compile(r'^("(?:[^"\\]|\\.)*"|[^=]+)=(.*)$')
# VBoxManage's exit code for a command line it does not accept (RTEXITCODE_SYNTAX).
SYNTAX_ERROR = 2


def locate() -> Path:
    """The VBoxManage executable: VBOX_INSTALL_PATH first, then PATH; a clear error when there is none."""
    for folder in os.environ.get("VBOX_INSTALL_PATH", "").split(os.pathsep):
        candidate = Path(folder) / EXE
        if folder and candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(EXE)
    if found:
        return Path(found)
    raise FactoryError("VBoxManage was not found: VirtualBox is not installed, or not where factory looks",
                       hint="install VirtualBox (it brings VBoxManage), or point VBOX_INSTALL_PATH at the folder "
                       "that holds VBoxManage")


@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    text: str                           # as VBoxManage printed it, e.g. 7.0.20r163906

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


def parse_version(text: str) -> Version:
    line = text.strip().splitlines()[-1] if text.strip() else ""
    m = _VERSION.match(line)
    if not m:
        raise FactoryError(f"cannot read VirtualBox's version from `VBoxManage --version`: {line!r}",
                           hint="check the VirtualBox installation (the kernel modules may be missing)")
    return Version(int(m[1]), int(m[2]), int(m[3]), line)


def machine_readable(text: str) -> dict[str, str]:
    """`showvminfo --machinereadable` (and friends) as a dict: `key="value"` or `key=number` per line; keys
    that hold spaces or dashes are quoted too (`"IDE Controller-0-0"="/path"`)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = _LINE.match(line.strip())
        if m:
            out[_unquote(m[1])] = _unquote(m[2])
    return out


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r'\\(.)', r"\1", value[1:-1])
    return value


class VBoxManage:
    """One VBoxManage installation: `vbox(["showvminfo", name, "--machinereadable"])` runs a command."""

    def __init__(self, exe: Path | None = None) -> None:
        self.exe = exe or locate()
        self._version: Version | None = None
        self.log: list[list[str]] = []   # every command line run, in order (for -debug and tests)

    @property
    def version(self) -> Version:
        if self._version is None:
            self._version = parse_version(self.output(["--version"]))
        return self._version

    def __call__(self, args: Sequence[str], *, timeout: float | None = 600.0) -> str:
        """Run `VBoxManage args...`; its stdout, or a FactoryError quoting VirtualBox's error lines."""
        argv = [str(self.exe), *args]
        self.log.append(list(args))
        proc = run(argv, check=False, timeout=timeout)
        if proc.returncode != 0:
            raise failure(argv, proc.returncode, proc.stderr.decode(errors="replace"),
                          proc.stdout.decode(errors="replace"))
        return proc.stdout.decode(errors="replace")

    def output(self, args: Sequence[str]) -> str:
        return self(args)

    def info(self, vm: str) -> dict[str, str] | None:
        """`showvminfo vm --machinereadable`, or None when no VM has that name."""
        try:
            return machine_readable(self(["showvminfo", vm, "--machinereadable"]))
        except FactoryError as exc:
            if "VBOX_E_OBJECT_NOT_FOUND" in exc.message or "Could not find a registered machine" in exc.message:
                return None
            raise

    def default_machine_folder(self) -> Path:
        """Where VirtualBox keeps VMs made without --basefolder (`list systemproperties`)."""
        for line in self(["list", "systemproperties"]).splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "Default machine folder" and value.strip():
                return Path(value.strip())
        raise FactoryError("`VBoxManage list systemproperties` names no default machine folder",
                           hint="set one: VBoxManage setproperty machinefolder PATH")

    def vms(self) -> dict[str, str]:
        """Registered VMs: name -> UUID (`list vms`: `"name" {uuid}` per line)."""
        out = {}
        for line in self(["list", "vms"]).splitlines():
            m = re.match(r'^"(.*)" \{([0-9a-fA-F-]+)\}$', line.strip())
            if m:
                out[m[1]] = m[2]
        return out


def failure(argv: Sequence[str], code: int, stderr: str, stdout: str = "") -> FactoryError:
    """The error of a failed VBoxManage call: VirtualBox's own error lines first, then the command line."""
    errors = [line[len(ERROR_PREFIX):] for line in stderr.splitlines() if line.startswith(ERROR_PREFIX)]
    command = secrets.mask(shlex.join(str(a) for a in argv))
    if errors:
        head = errors[0]
        details = [e for e in errors[1:] if not e.startswith("Context:")]
        text = f"VirtualBox: {head}" + "".join(f"\n    {d}" for d in details)
    else:
        tail = (stderr or stdout).strip().splitlines()[-5:]
        text = f"VBoxManage exited with code {code}" + "".join(f"\n    {line}" for line in tail)
    text += f"\n  command: {command}"
    hint = ("VBoxManage rejected the command line (a VirtualBox version that lacks this option?)"
            if code == SYNTAX_ERROR else "see VirtualBox's message above; `VBoxManage showvminfo NAME` shows the VM")
    return FactoryError(secrets.mask(text), hint=hint)
