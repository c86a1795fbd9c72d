"""Provisioners: shell, file, shell-local, breakpoint (Packer core), ansible and ansible-local (packer-plugin-ansible).

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


def script_problems(kind: str, given: dict[str, str | list[str] | None], what: str = "provisioner"
                    ) -> list[OptionProblem]:
    """Nothing to run, or a script path that does not exist (relative to the directory factory runs in, as
    when the build runs it). Like Packer's os.Stat, any file that is not a folder counts: packer-maas passes
    `/dev/null` as its default customize script."""
    if not any(given.values()):
        names = list(given)
        return [OptionProblem(names[0], f"{kind} {what} has nothing to run: set one of {', '.join(names)}",
                              'e.g. inline = ["echo hello"] or script = "setup.sh"')]
    paths = [("script", given.get("script"))] + [("scripts", p) for p in given.get("scripts") or []]
    return [OptionProblem(option, f"{kind} {what}: script {path} does not exist",
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
        if not (self.source or self.sources or self.content is not None):
            return [OptionProblem("source", "file provisioner has nothing to copy: set one of source, sources, "
                                  "content", 'e.g. source = "files/app.conf" and destination = "/etc/app.conf"')]
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
class AnsibleProvisioner(Checked, Component, kind=Kind.PROVISIONER, name="ansible"):
    """Run an Ansible playbook against the guest from the host (packer-plugin-ansible's `ansible`)."""

    summary: ClassVar[str] = ("Runs ansible-playbook on the host against the guest over SSH: a generated inventory "
                              "names the guest's SSH endpoint and user, the build's key is passed to Ansible. "
                              "factory connects Ansible straight to the guest's forwarded SSH port, as Packer "
                              "does with `use_proxy = false`; the proxy adapter's options are accepted.")

    playbook_file: str = opt(required=True, help="Playbook to run. Required.")
    command: str = opt("ansible-playbook", help="Command that runs the playbook (an executable, not a shell line).")
    extra_arguments: list[str] = opt([], help="Extra arguments to ansible-playbook (e.g. `--extra-vars`); a "
                                             "`KEY=VALUE` whose KEY contains password or secret is masked.")
    ansible_env_vars: list[str] = opt([], help="`KEY=VALUE` environment for ansible-playbook.")
    ansible_ssh_extra_args: list[str] = opt([], help="`--ssh-extra-args` (default `-o IdentitiesOnly=yes`).")
    user: str | None = opt(None, help="`ansible_user` (default: the communicator's user).")
    groups: list[str] = opt([], help="Inventory groups the guest is placed in.")
    empty_groups: list[str] = opt([], help="Inventory groups created empty.")
    host_alias: str = opt("default", help="Inventory name of the guest.")
    inventory_file: str | None = opt(None, help="Use this inventory instead of a generated one.")
    inventory_directory: str | None = opt(None, help="Directory the generated inventory is written to.")
    inventory_file_template: str | None = opt(
        None, help="Line written to the generated inventory ({{ .HostAlias }}, {{ .Host }}, {{ .User }}, "
                   "{{ .Port }}).")
    keep_inventory_file: bool = opt(False, help="Keep the generated inventory after the run.")
    limit: str | None = opt(None, help="`--limit` pattern.")
    galaxy_file: str | None = opt(None, help="requirements.yml installed with ansible-galaxy first.")
    galaxy_command: str = opt("ansible-galaxy", help="Command that installs `galaxy_file`.")
    galaxy_force_install: bool = opt(False, help="Reinstall galaxy roles and collections (`--force`).")
    galaxy_force_with_deps: bool = opt(False, help="Reinstall galaxy dependencies too (`--force-with-deps`).")
    roles_path: str | None = opt(None, help="Where galaxy roles are installed (`--roles-path`).")
    collections_path: str | None = opt(None, help="Where galaxy collections are installed (`-p`).")
    skip_version_check: bool = opt(False, help="Do not run `COMMAND --version` before the playbook.")
    local_port: int | None = opt(None, help="Host port of Packer's SSH proxy adapter.", support=IGNORED)
    use_proxy: bool = opt(True, help="Packer's SSH proxy adapter (factory always connects directly).",
                          support=IGNORED)
    use_sftp: bool = opt(False, help="SFTP through Packer's proxy adapter.", support=IGNORED)
    sftp_command: str | None = opt(None, help="SFTP server command of Packer's proxy adapter.", support=IGNORED)
    ssh_host_key_file: str | None = opt(None, help="Host key of Packer's proxy adapter.", support=IGNORED)
    ssh_authorized_key_file: str | None = opt(None, help="Public key Packer's proxy adapter accepts.",
                                              support=IGNORED)
    ansible_proxy_key_type: str = opt("ECDSA", help="Key type of Packer's proxy adapter.", support=IGNORED)
    ansible_winrm_use_http: bool = opt(False, help="WinRM over HTTP (WinRM is refused by factory).",
                                       support=IGNORED)

    def problems(self) -> list[OptionProblem]:
        missing = [(opt_, path) for opt_, path in (("playbook_file", self.playbook_file),
                                                   ("galaxy_file", self.galaxy_file),
                                                   ("inventory_file", self.inventory_file))
                   if path and not Path(path).expanduser().is_file()]
        return [OptionProblem(opt_, f"ansible provisioner: {opt_} {path} does not exist",
                              "paths are relative to the directory factory runs in (use path.root for the "
                              "template's folder)") for opt_, path in missing]


@dataclass(frozen=True)
class AnsibleLocalProvisioner(Checked, Component, kind=Kind.PROVISIONER, name="ansible-local"):
    """Run an Ansible playbook inside the guest (packer-plugin-ansible's `ansible-local`)."""

    summary: ClassVar[str] = ("Uploads the playbook (and playbook_dir, roles, group/host vars) to a staging "
                              "directory in the guest and runs ansible-playbook there against 127.0.0.1 with a "
                              "local connection. Ansible must be installed in the guest.")

    playbook_file: str | None = opt(None, help="Playbook to upload and run (or playbook_files).")
    playbook_files: list[str] = opt([], help="Playbooks to upload and run in order (or playbook_file).")
    command: str = opt("ansible-playbook", help="Command that runs the playbook in the guest.")
    extra_arguments: list[str] = opt([], help="Extra arguments to ansible-playbook.")
    group_vars: str | None = opt(None, help="Local group_vars folder uploaded beside the inventory.")
    host_vars: str | None = opt(None, help="Local host_vars folder uploaded beside the inventory.")
    playbook_dir: str | None = opt(None, help="Local folder uploaded as the staging directory first.")
    playbook_paths: list[str] = opt([], help="Local folders uploaded under STAGING/playbooks.")
    role_paths: list[str] = opt([], help="Local role folders uploaded under STAGING/roles.")
    collection_paths: list[str] = opt([], help="Local collection folders uploaded under STAGING/collections.")
    staging_directory: str | None = opt(None, help="Guest folder files go to (default /tmp/packer-provisioner-"
                                                   "ansible-local/<uuid>).")
    clean_staging_directory: bool = opt(False, help="Remove the staging directory afterwards.")
    inventory_file: str | None = opt(None, help="Local inventory uploaded and used instead of the generated one.")
    inventory_groups: list[str] = opt([], help="Groups 127.0.0.1 is placed in in the generated inventory.")
    galaxy_file: str | None = opt(None, help="requirements.yml installed in the guest with ansible-galaxy first.")
    galaxy_command: str = opt("ansible-galaxy", help="Command that installs `galaxy_file` in the guest.")
    galaxy_force_install: bool = opt(False, help="Reinstall galaxy roles and collections (`--force`).")
    galaxy_roles_path: str | None = opt(None, help="Guest folder galaxy roles go to.")
    galaxy_collections_path: str | None = opt(None, help="Guest folder galaxy collections go to.")

    def problems(self) -> list[OptionProblem]:
        if bool(self.playbook_file) == bool(self.playbook_files):
            return [OptionProblem("playbook_file", "ansible-local needs exactly one of playbook_file or "
                                  "playbook_files", 'e.g. playbook_file = "site.yml"')]
        paths = [("playbook_file", self.playbook_file), ("inventory_file", self.inventory_file),
                 ("galaxy_file", self.galaxy_file)] + [("playbook_files", p) for p in self.playbook_files]
        out = [OptionProblem(o, f"ansible-local: {o} {p} does not exist", "paths are relative to the directory "
                             "factory runs in") for o, p in paths if p and not Path(p).expanduser().is_file()]
        dirs = [("playbook_dir", self.playbook_dir), ("group_vars", self.group_vars),
                ("host_vars", self.host_vars)] + [("playbook_paths", p) for p in self.playbook_paths] + \
               [("role_paths", p) for p in self.role_paths] + [("collection_paths", p) for p in self.collection_paths]
        return out + [OptionProblem(o, f"ansible-local: {o} {p} is not a folder", "give a local directory")
                      for o, p in dirs if p and not Path(p).expanduser().is_dir()]
