"""Provisioners: shell, file, shell-local, breakpoint (Packer core) and ansible (packer-plugin-ansible).

The meta-arguments every provisioner block takes (`name`, `only`, `except`, `override`, `pause_before`,
`max_retries`, `timeout`) are handled by the template layer (ProvisionerSpec), not declared here.
"""

# opt() returns a dataclasses.field (factory.options); ruff cannot see that, so RUF009 misfires here.
# ruff: noqa: RUF009

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from factory.options import Component, Kind, Support, opt
from factory.schema.common import EnvOptions, ShellLocalOptions
from factory.schema.types import Checked, Duration, OptionProblem

IGNORED = Support.IGNORED


def script_problems(kind: str, given: dict[str, str | list[str] | None]) -> list[OptionProblem]:
    """Nothing to run, or a script path that does not exist (relative to the directory factory runs in, as
    when the build runs it). Like Packer's os.Stat, any file that is not a folder counts: packer-maas passes
    `/dev/null` as its default customize script."""
    if not any(given.values()):
        names = list(given)
        return [OptionProblem(names[0], f"{kind} provisioner has nothing to run: set one of {', '.join(names)}",
                              'e.g. inline = ["echo hello"] or script = "setup.sh"')]
    paths = [("script", given.get("script"))] + [("scripts", p) for p in given.get("scripts") or []]
    return [OptionProblem(option, f"{kind} provisioner: script {path} does not exist",
                          "paths are relative to the directory factory runs in (use path.root for the "
                          "template's folder)")
            for option, path in paths if isinstance(path, str) and not _is_script(Path(path).expanduser())]


def _is_script(path: Path) -> bool:
    return path.exists() and not path.is_dir()


@dataclass(frozen=True)
class ShellProvisioner(EnvOptions, Checked, Component, kind=Kind.PROVISIONER, name="shell"):
    """Run commands or scripts in the guest over SSH."""

    summary: ClassVar[str] = "Uploads commands or scripts to the guest and runs them over SSH, streaming output."

    inline: list[str] = opt([], help="Commands run in order in the guest, written to one script with "
                            "`inline_shebang`. Exactly one of `inline`, `script`, `scripts` is required.")
    inline_shebang: str = opt("/bin/sh -e", help="Shebang of the script made from `inline`; `-e` stops at the "
                              "first failing command.")
    script: str | None = opt(None, help="Path of a local script uploaded to the guest and run.", reads=True)
    scripts: list[str] = opt([], help="Paths of local scripts uploaded and run in order.", reads=True)
    binary: bool = opt(False, help="Upload scripts byte for byte; by default Windows line endings (CRLF) are "
                       "converted to LF, as Packer does.")
    use_env_var_file: bool = opt(False, help="Write the variables to a file sourced by the script instead of "
                                 "prefixing the command.")
    execute_command: str = opt("chmod +x {{.Path}}; {{.Vars}} {{.Path}}", help="Command that runs each "
                               "uploaded script; `{{.Path}}` is its remote path and `{{.Vars}}` the variable "
                               "assignments. Put `sudo` here to run as root.")
    expect_disconnect: bool = opt(False, help="Treat a dropped connection as success (the script rebooted the "
                                  "guest); factory reconnects before the next step.")
    start_retry_timeout: Duration = opt("5m", help="Duration to keep retrying the start of a script when the guest "
                                   "is not reachable (e.g. rebooting).")
    pause_after: Duration | None = opt(None, help="Duration to wait after the scripts ran.")
    valid_exit_codes: list[int] = opt([0], help="Exit codes treated as success, e.g. `[0, 2300218]` or "
                                      "`[0, 143]` around a reboot.")
    remote_folder: str = opt("/tmp", help="Guest directory scripts are uploaded to.")
    remote_file: str | None = opt(None, help="File name of the uploaded script (default "
                                  "`script_<random>.sh`).")
    remote_path: str | None = opt(None, help="Full guest path of the uploaded script (default "
                                  "`<remote_folder>/<remote_file>`).")
    skip_clean: bool = opt(False, help="Leave uploaded scripts in the guest.")

    EXCLUSIVE: ClassVar[tuple[tuple[str, ...], ...]] = (("inline", "script", "scripts"),)

    def problems(self) -> list[OptionProblem]:
        """Packer refuses a shell provisioner with nothing to run and scripts that are not there."""
        return script_problems("shell", {"inline": self.inline, "script": self.script, "scripts": self.scripts})


@dataclass(frozen=True)
class FileProvisioner(Checked, Component, kind=Kind.PROVISIONER, name="file"):
    """Copy files or directories between the host and the guest."""

    summary: ClassVar[str] = "Uploads files or directories to the guest, or downloads them from it, over SFTP."

    source: str | None = opt(None, help="Local path (upload) or guest path (download). A directory is copied "
                             "recursively; with a trailing `/` its contents are copied, without it the "
                             "directory itself.", reads=True)
    sources: list[str] = opt([], help="Several sources uploaded to `destination` (which must then be a "
                             "directory ending in `/`).", reads=True)
    content: str | None = opt(None, help="Text uploaded as the file `destination` instead of a `source`.")
    destination: str = opt(required=True, help="Guest path (upload) or local path (download). Required.")
    direction: str = opt("upload", help="`upload` (host to guest) or `download` (guest to host).")
    generated: bool = opt(False, help="The source is made during the build (e.g. by an earlier `shell-local` "
                          "or a `download`), so it is checked just before the upload instead of when the "
                          "template is read. Without it a missing upload source is an error at its line, before "
                          "any VM starts.")

    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {"direction": ("upload", "download")}
    EXCLUSIVE: ClassVar[tuple[tuple[str, ...], ...]] = (("source", "sources", "content"),)

    def problems(self) -> list[OptionProblem]:
        """Packer checks upload sources when it reads the template, unless `generated` (relative paths
        resolve against the directory factory runs in, as at build time)."""
        if self.direction != "upload" or self.generated:
            return []
        given = [("source", self.source)] if self.source else [("sources", s) for s in self.sources]
        return [OptionProblem(option, f"file provisioner: source {value} does not exist",
                              "paths are relative to the directory factory runs in; if the build itself makes "
                              "the file (shell-local, an earlier download), set generated = true")
                for option, value in given if not Path(value).expanduser().exists()]


@dataclass(frozen=True)
class ShellLocalProvisioner(ShellLocalOptions, Checked, Component, kind=Kind.PROVISIONER, name="shell-local"):
    """Run commands on the build host during provisioning."""

    summary: ClassVar[str] = "Runs commands or scripts on the build host, with the build's variables set."

    EXCLUSIVE: ClassVar[tuple[tuple[str, ...], ...]] = (("command", "inline", "script", "scripts"),)

    def problems(self) -> list[OptionProblem]:
        return script_problems("shell-local", {"command": self.command, "inline": self.inline,
                                               "script": self.script, "scripts": self.scripts})


@dataclass(frozen=True)
class BreakpointProvisioner(Component, kind=Kind.PROVISIONER, name="breakpoint"):
    """Pause the build until the user presses Enter."""

    summary: ClassVar[str] = "Pauses the build so you can inspect the guest; continues when Enter is pressed."

    note: str | None = opt(None, help="Message shown while paused.")
    disable: bool = opt(False, help="Skip this breakpoint without removing it from the template.")


@dataclass(frozen=True)
class AnsibleProvisioner(Component, kind=Kind.PROVISIONER, name="ansible"):
    """Run an Ansible playbook against the guest from the host (packer-plugin-ansible's `ansible`)."""

    summary: ClassVar[str] = ("Runs ansible-playbook on the host against the guest. Declared for validation "
                              "and inspect; not implemented yet.")
    PLANNED: ClassVar[bool] = True

    playbook_file: str = opt(required=True, help="Playbook to run. Required.", support=IGNORED)
    command: str = opt("ansible-playbook", help="Command that runs the playbook.", support=IGNORED)
    extra_arguments: list[str] = opt([], help="Extra arguments to ansible-playbook (e.g. `--extra-vars`).",
                                     support=IGNORED)
    ansible_env_vars: list[str] = opt([], help="`KEY=VALUE` environment for ansible-playbook.", support=IGNORED)
    ansible_ssh_extra_args: list[str] = opt([], help="Extra arguments for Ansible's SSH connection.",
                                            support=IGNORED)
    user: str | None = opt(None, help="Remote user Ansible connects as (default: the communicator's user).",
                           support=IGNORED)
    groups: list[str] = opt([], help="Inventory groups the guest is placed in.", support=IGNORED)
    empty_groups: list[str] = opt([], help="Inventory groups created empty.", support=IGNORED)
    host_alias: str = opt("default", help="Inventory name of the guest.", support=IGNORED)
    inventory_file: str | None = opt(None, help="Use this inventory instead of a generated one.",
                                     support=IGNORED)
    inventory_directory: str | None = opt(None, help="Directory the generated inventory is written to.",
                                          support=IGNORED)
    inventory_file_template: str | None = opt(None, help="Template of the generated inventory.",
                                              support=IGNORED)
    keep_inventory_file: bool = opt(False, help="Keep the generated inventory after the run.", support=IGNORED)
    limit: str | None = opt(None, help="`--limit` pattern.", support=IGNORED)
    galaxy_file: str | None = opt(None, help="requirements.yml installed with ansible-galaxy first.",
                                  support=IGNORED)
    galaxy_command: str = opt("ansible-galaxy", help="Command that installs `galaxy_file`.", support=IGNORED)
    galaxy_force_install: bool = opt(False, help="Reinstall galaxy roles and collections.", support=IGNORED)
    galaxy_force_with_deps: bool = opt(False, help="Reinstall galaxy dependencies too.", support=IGNORED)
    roles_path: str | None = opt(None, help="Where galaxy roles are installed.", support=IGNORED)
    collections_path: str | None = opt(None, help="Where galaxy collections are installed.", support=IGNORED)
    local_port: int | None = opt(None, help="Host port of the SSH proxy Ansible connects to.", support=IGNORED)
    use_proxy: bool = opt(True, help="Connect through the provisioner's SSH proxy instead of directly.",
                          support=IGNORED)
    use_sftp: bool = opt(False, help="Transfer files with SFTP instead of SCP.", support=IGNORED)
    sftp_command: str | None = opt(None, help="SFTP server command in the guest.", support=IGNORED)
    ssh_host_key_file: str | None = opt(None, help="Host key of the SSH proxy.", support=IGNORED)
    ssh_authorized_key_file: str | None = opt(None, help="Public key the proxy accepts.", support=IGNORED)
    skip_version_check: bool = opt(False, help="Do not check the installed Ansible version.", support=IGNORED)
