"""`ansible`: run ansible-playbook on the host against the guest over SSH, as packer-plugin-ansible does.

Packer's plugin starts an SSH proxy adapter in front of the guest by default (`use_proxy`), for guests that
have no address Ansible can reach. A factory guest always has one: the communicator's endpoint (QEMU's
forwarded port on the host), so Ansible connects to it directly, as the plugin does with `use_proxy = false`,
logging in with the build's SSH key (or password, through sshpass). The generated inventory names that endpoint;
the command line is the plugin's: `-e packer_build_name=... -e packer_builder_type=... [-e packer_http_addr=...]
--ssh-extra-args ... -e ansible_ssh_private_key_file=... EXTRA_ARGUMENTS -i INVENTORY PLAYBOOK`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from factory import secrets
from factory.comm.ssh import Communicator, SSHSettings
from factory.errors import FactoryError
from factory.placeholders import expand
from factory.provision.base import ProvisionContext, Provisioner, ProvisionerType, check_exit
from factory.run import run, which
from factory.schema.provisioners import AnsibleProvisioner

DEFAULT_INVENTORY_LINE = "{{ .HostAlias }} ansible_host={{ .Host }} ansible_user={{ .User }} ansible_port={{ .Port }}\n"
_SECRET_KEY = re.compile(r"(?i)(password|secret)")


def inventory_text(config: AnsibleProvisioner, host: str, port: int, user: str) -> str:
    """The generated inventory: the guest's line, the line again under each group, then the empty groups."""
    template = config.inventory_file_template or DEFAULT_INVENTORY_LINE
    line = expand(template, {"HostAlias": config.host_alias, "Host": host, "User": user, "Port": str(port)},
                  "inventory_file_template")
    if not line.endswith("\n"):
        line += "\n"
    parts = [line] + [f"[{group}]\n{line}" for group in config.groups]
    return "".join(parts + [f"[{group}]\n" for group in config.empty_groups])


def mask_extra_arguments(arguments: list[str]) -> None:
    """As the plugin hides the value of a `KEY=VALUE` whose KEY mentions password or secret."""
    for arg in arguments:
        for word in shlex.split(arg) if "=" in arg else ():
            key, sep, value = word.partition("=")
            if sep and value and _SECRET_KEY.search(key):
                secrets.register(value)


def galaxy_commands(config: AnsibleProvisioner, requirements: Path) -> list[list[str]]:
    """ansible-galaxy runs for a requirements file: roles (a list, or a `roles:` key) and `collections:`."""
    try:
        data = yaml.safe_load(requirements.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise FactoryError(f"ansible provisioner: galaxy_file {requirements} is not readable YAML: {exc}",
                           hint="give a requirements.yml as ansible-galaxy reads it") from None
    force = (["--force"] if config.galaxy_force_install else []) + \
        (["--force-with-deps"] if config.galaxy_force_with_deps else [])
    commands = []
    if isinstance(data, list) or (isinstance(data, dict) and data.get("roles")):
        roles = ["--roles-path", config.roles_path] if config.roles_path else []
        commands.append([config.galaxy_command, "install", "-r", str(requirements), *roles, *force])
    if isinstance(data, dict) and data.get("collections"):
        where = ["-p", config.collections_path] if config.collections_path else []
        commands.append([config.galaxy_command, "collection", "install", "-r", str(requirements), *where, *force])
    return commands


class Ansible(Provisioner, kind=ProvisionerType.ANSIBLE):
    def provision(self, config: AnsibleProvisioner, comm: Communicator | None, ctx: ProvisionContext) -> None:
        assert comm is not None   # needs_communicator
        settings = comm.settings
        if settings.bastion is not None or settings.proxy is not None:
            raise FactoryError("the ansible provisioner connects to the guest directly; this build reaches it "
                               "through a bastion host or proxy", hint="reach the guest directly, or run the "
                               "playbook in the guest with ansible-local")
        mask_extra_arguments(config.extra_arguments)
        if not config.skip_version_check:   # run() names the package when the command is missing
            run([config.command, "--version"], timeout=ctx.remaining("ansible --version"))
        env = {"ANSIBLE_HOST_KEY_CHECKING": "False", "ANSIBLE_FORCE_COLOR": "0", "PYTHONUNBUFFERED": "1"}
        if config.roles_path:
            env["ANSIBLE_ROLES_PATH"] = config.roles_path
        if config.collections_path:
            env["ANSIBLE_COLLECTIONS_PATH"] = config.collections_path
        with _workspace() as tmp:
            env["ANSIBLE_SSH_CONTROL_PATH_DIR"] = str(tmp / "cp")
            # Masters die 15 s after their last use; those left are ended below, so nothing outlives the run.
            env["ANSIBLE_SSH_ARGS"] = "-o ControlMaster=auto -o ControlPersist=15s -o UserKnownHostsFile=/dev/null"
            env.update(_pairs(config.ansible_env_vars, "ansible_env_vars"))
            if config.galaxy_file:
                for argv in galaxy_commands(config, ctx.local_path(config.galaxy_file)):
                    ctx.emit(f"Executing Ansible Galaxy: {shlex.join(argv)}")
                    proc = run(argv, check=False, env=env, timeout=ctx.remaining("ansible-galaxy"),
                               on_line=ctx.emit)
                    check_exit(proc.returncode, [0], "ansible-galaxy")
            inventory = self._inventory(config, comm, ctx, tmp)
            playbook = ctx.local_path(config.playbook_file)
            argv = [*self._argv(config, comm, ctx, tmp), "-i", str(inventory), str(playbook)]
            ctx.emit(f"Executing Ansible: {shlex.join(argv)}")
            try:
                proc = run(argv, check=False, env=env, timeout=ctx.remaining("ansible-playbook"), on_line=ctx.emit)
            finally:
                _end_masters(tmp / "cp")
                if inventory.parent != tmp and not config.keep_inventory_file and not config.inventory_file:
                    inventory.unlink(missing_ok=True)
            check_exit(proc.returncode, [0], "ansible-playbook")

    def _argv(self, config: AnsibleProvisioner, comm: Communicator, ctx: ProvisionContext, tmp: Path) -> list[str]:
        settings = comm.settings
        args = [config.command, "-e", f"packer_build_name={ctx.source_name}",
                "-e", f"packer_builder_type={ctx.source_type}"]
        http = ctx.extra_env.get("PACKER_HTTP_ADDR")
        if http:
            args += ["-e", f"packer_http_addr={http}"]
        key = _private_key(settings, tmp)
        if key is not None:
            ssh_extra = " ".join(config.ansible_ssh_extra_args or ["-o IdentitiesOnly=yes"])
            args += ["--ssh-extra-args", ssh_extra, "-e", f"ansible_ssh_private_key_file={key}"]
        elif settings.password:
            which("sshpass")   # Ansible logs in with a password through sshpass
            extra = tmp / "login.json"
            extra.write_text(json.dumps({"ansible_password": settings.password}))
            extra.chmod(0o600)
            args += ["-e", f"@{extra}"]
        else:
            raise FactoryError("the ansible provisioner has no way to log in: the build's SSH connection has "
                               "neither a key nor a password", hint="set ssh_private_key_file or ssh_password")
        if config.limit:
            args += ["--limit", config.limit]
        return args + list(config.extra_arguments)

    def _inventory(self, config: AnsibleProvisioner, comm: Communicator, ctx: ProvisionContext, tmp: Path) -> Path:
        """The inventory file given, or one generated for the guest's endpoint (in inventory_directory if set)."""
        if config.inventory_file:
            return ctx.local_path(config.inventory_file)
        settings = comm.settings
        folder = ctx.local_path(config.inventory_directory) if config.inventory_directory else tmp
        fd, name = tempfile.mkstemp(prefix="packer-provisioner-ansible", dir=folder)
        with os.fdopen(fd, "w") as f:
            f.write(inventory_text(config, settings.host, settings.port, config.user or settings.username))
        if config.keep_inventory_file:
            ctx.emit(f"Keeping the inventory file {name} (keep_inventory_file)")
            if folder == tmp:   # the workspace goes away: keep a copy where the user can find it
                kept = ctx.local_path(Path(name).name)
                shutil.copyfile(name, kept)
                return kept
        return Path(name)


def _pairs(items: list[str], option: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise FactoryError(f"{option} entry {item!r} is not KEY=VALUE", hint='e.g. "ANSIBLE_NOCOLOR=True"')
        out[key] = value
    return out


def _private_key(settings: SSHSettings, tmp: Path) -> Path | None:
    """The key Ansible logs in with: the build's generated key written out (0600), or ssh_private_key_file."""
    if settings.keypair is not None:
        return settings.keypair.write_private(tmp / "key")
    if settings.private_key_file:
        return Path(settings.private_key_file).expanduser()
    return None


@contextmanager
def _workspace() -> Iterator[Path]:
    """A private folder for the key, the inventory and ssh's control sockets; removed with what it holds."""
    tmp = Path(tempfile.mkdtemp(prefix="factory-ansible-"))
    try:
        (tmp / "cp").mkdir(mode=0o700)
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _end_masters(folder: Path) -> None:
    """Tell each ssh ControlMaster Ansible left behind to exit now rather than after ControlPersist."""
    for sock in folder.iterdir() if folder.is_dir() else ():
        subprocess.run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", "x"], capture_output=True, timeout=10,
                       check=False)
