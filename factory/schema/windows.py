"""Windows provisioners (Packer core's powershell, windows-shell, windows-restart; rgl's windows-update plugin).

Declared so Windows templates validate and `inspect` shows them, with Packer's option names, types and defaults.
They need the WinRM communicator (or SSH to a Windows guest), and no Windows guest can be built or tested by
factory: `factory build` refuses them before any VM starts (REFUSED names why), never half-runs them.
"""

# opt() returns a dataclasses.field (factory.options); ruff cannot see that, so RUF009 misfires here.
# ruff: noqa: RUF009

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from factory.options import Component, Kind, opt
from factory.schema.common import EnvOptions
from factory.schema.provisioners import script_problems
from factory.schema.types import Checked, OptionProblem

WHY = ("it runs commands in a Windows guest, and factory builds no Windows guests (no WinRM communicator, no "
       "Windows test guest)")


@dataclass(frozen=True)
class _WindowsScripts(EnvOptions):
    """What powershell and windows-shell share (Packer's provisioner/powershell and windows-shell configs)."""

    inline: list[str] = opt([], help="Commands run in order in the guest.")
    script: str | None = opt(None, help="Path of a local script uploaded and run.")
    scripts: list[str] = opt([], help="Paths of local scripts uploaded and run in order.")
    binary: bool = opt(False, help="Upload scripts byte for byte (no line-ending conversion).")
    remote_path: str | None = opt(None, help="Where the script is uploaded in the guest.")
    start_retry_timeout: str = opt("5m", help="Duration to retry starting the script (e.g. across a reboot).")
    valid_exit_codes: list[int] = opt([0], help="Exit codes treated as success.")
    execute_command: str | None = opt(None, help="Command that runs each uploaded script.")
    pause_after: str | None = opt(None, help="Duration to wait after the scripts ran.")

    def problems(self) -> list[OptionProblem]:
        """Packer: "Either a script file or inline script must be specified", and the scripts must exist."""
        given: dict[str, str | list[str] | None] = {"inline": self.inline, "script": self.script,
                                                    "scripts": self.scripts}
        return script_problems(getattr(type(self), "type_name", "windows"), given)


@dataclass(frozen=True)
class PowershellProvisioner(_WindowsScripts, Checked, Component, kind=Kind.PROVISIONER, name="powershell"):
    """Packer's powershell provisioner."""

    summary: ClassVar[str] = "Runs PowerShell commands or scripts in a Windows guest. Validates; not built."
    REFUSED: ClassVar[str] = WHY

    use_pwsh: bool = opt(False, help="Run with `pwsh.exe` (PowerShell 7) instead of `powershell.exe`.")
    elevated_user: str | None = opt(None, help="Run as this user through a scheduled task (elevated).")
    elevated_password: str | None = opt(None, help="Password of `elevated_user`.", sensitive=True)
    elevated_execute_command: str | None = opt(None, help="Command that runs each script when elevated.")
    elevated_env_var_format: str | None = opt(None, help="Format of each variable when elevated.")
    execution_policy: str = opt("bypass", help="PowerShell execution policy: `bypass`, `allsigned`, "
                                "`default`, `remotesigned`, `restricted`, `undefined`, `unrestricted`, `none`.")
    debug_mode: int = opt(0, help="`Set-PSDebug -Trace` level (0, 1 or 2).")
    skip_clean: bool = opt(False, help="Leave the uploaded scripts and variable files in the guest.")

    DURATIONS: ClassVar[frozenset[str]] = frozenset({"start_retry_timeout", "pause_after"})
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        "execution_policy": ("bypass", "allsigned", "default", "remotesigned", "restricted", "undefined",
                             "unrestricted", "none")}
    EXCLUSIVE: ClassVar[tuple[tuple[str, ...], ...]] = (("inline", "script", "scripts"),)


@dataclass(frozen=True)
class WindowsShellProvisioner(_WindowsScripts, Checked, Component, kind=Kind.PROVISIONER,
                              name="windows-shell"):
    """Packer's windows-shell provisioner (cmd.exe)."""

    summary: ClassVar[str] = "Runs cmd.exe commands or batch scripts in a Windows guest. Validates; not built."
    REFUSED: ClassVar[str] = WHY

    DURATIONS: ClassVar[frozenset[str]] = frozenset({"start_retry_timeout", "pause_after"})
    EXCLUSIVE: ClassVar[tuple[tuple[str, ...], ...]] = (("inline", "script", "scripts"),)


@dataclass(frozen=True)
class WindowsRestartProvisioner(Checked, Component, kind=Kind.PROVISIONER, name="windows-restart"):
    """Packer's windows-restart provisioner."""

    summary: ClassVar[str] = "Restarts a Windows guest and waits for it to come back. Validates; not built."
    REFUSED: ClassVar[str] = WHY

    restart_command: str = opt("shutdown /r /f /t 0 /c \"packer restart\"", help="Command that restarts the "
                               "guest.")
    restart_check_command: str | None = opt(None, help="Command whose success means the guest is back.")
    restart_timeout: str = opt("5m", help="Duration to wait for the guest to come back.")
    check_registry: bool = opt(False, help="Also wait until the registry keys of pending work are gone.")
    registry_keys: list[str] = opt([], help="Registry keys checked with `check_registry`.")

    DURATIONS: ClassVar[frozenset[str]] = frozenset({"restart_timeout"})


@dataclass(frozen=True)
class WindowsUpdateProvisioner(Checked, Component, kind=Kind.PROVISIONER, name="windows-update"):
    """rgl/packer-plugin-windows-update's provisioner."""

    summary: ClassVar[str] = "Installs Windows updates in the guest, restarting as needed. Validates; not built."
    REFUSED: ClassVar[str] = WHY

    search_criteria: str | None = opt(None, help="Windows Update search query (default: "
                                      "`BrowseOnly=0 and IsInstalled=0`).")
    filters: list[str] = opt([], help="`include:`/`exclude:` PowerShell expressions applied in order.")
    update_limit: int = opt(1000, help="Most updates installed per cycle.")
    restart_timeout: str = opt("4h", help="Duration to wait for each restart.")

    DURATIONS: ClassVar[frozenset[str]] = frozenset({"restart_timeout"})
