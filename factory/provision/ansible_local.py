"""`ansible-local`: upload a playbook (and its folders) to the guest and run ansible-playbook there.

As packer-plugin-ansible's ansible-local: files go to a staging directory (playbook_dir's contents first, then
the playbook files, group_vars/host_vars, roles under roles/, playbook_paths under playbooks/, collections under
collections/), an inventory puts 127.0.0.1 in inventory_groups, and each playbook runs as
`cd STAGING && ansible-playbook PLAYBOOK --extra-vars "packer_build_name=... packer_builder_type=..."
EXTRA_ARGUMENTS -c local -i INVENTORY`. Ansible must already be installed in the guest.
"""

from __future__ import annotations

import posixpath
import shlex
import uuid
from pathlib import Path

from factory.comm.ssh import Communicator
from factory.errors import FactoryError
from factory.provision.base import ProvisionContext, Provisioner, ProvisionerType, check_exit
from factory.schema.provisioners import AnsibleLocalProvisioner

DEFAULT_STAGING = "/tmp/packer-provisioner-ansible-local"


def inventory_text(groups: list[str]) -> str:
    """127.0.0.1 alone, or under each of inventory_groups."""
    return "".join(f"[{g}]\n127.0.0.1\n" for g in groups) if groups else "127.0.0.1\n"


class AnsibleLocal(Provisioner, kind=ProvisionerType.ANSIBLE_LOCAL):
    def provision(self, config: AnsibleLocalProvisioner, comm: Communicator | None, ctx: ProvisionContext) -> None:
        assert comm is not None   # needs_communicator
        staging = config.staging_directory or f"{DEFAULT_STAGING}/{uuid.uuid4()}"
        ctx.emit(f"Creating staging directory {staging}")
        self._sh(comm, ctx, f"mkdir -p {shlex.quote(staging)}", "creating the staging directory")
        try:
            playbooks = self._upload(config, comm, ctx, staging)
            inventory = self._inventory(config, comm, ctx, staging)
            if config.galaxy_file:
                self._galaxy(config, comm, ctx, staging)
            for playbook in playbooks:
                self._play(config, comm, ctx, staging, playbook, inventory)
        finally:
            if config.clean_staging_directory:
                ctx.emit(f"Removing staging directory {staging}")
                comm.run(f"rm -rf {shlex.quote(staging)}", timeout=60)

    def _upload(self, config: AnsibleLocalProvisioner, comm: Communicator, ctx: ProvisionContext,
                staging: str) -> list[str]:
        """Upload everything; the playbooks' paths relative to the staging directory."""
        base = ctx.local_path(config.playbook_dir).resolve() if config.playbook_dir else None
        if base is not None:
            ctx.emit(f"Uploading playbook directory {base}")
            comm.upload_dir(base, staging)
        playbooks = []
        for given in [config.playbook_file] if config.playbook_file else list(config.playbook_files):
            local = ctx.local_path(given).resolve()
            if base is not None and local.is_relative_to(base):
                playbooks.append(local.relative_to(base).as_posix())   # already there with playbook_dir
                continue
            ctx.emit(f"Uploading playbook file {local}")
            comm.upload(local, posixpath.join(staging, local.name))
            playbooks.append(local.name)
        folders = [(config.group_vars, "group_vars"), (config.host_vars, "host_vars")]
        folders += [(p, f"roles/{Path(p).name}") for p in config.role_paths]
        folders += [(p, f"playbooks/{Path(p).name}") for p in config.playbook_paths]
        folders += [(p, f"collections/{Path(p).name}") for p in config.collection_paths]
        for local_dir, remote in folders:
            if local_dir:
                ctx.emit(f"Uploading {remote} from {local_dir}")
                comm.upload_dir(ctx.local_path(local_dir), posixpath.join(staging, remote))
        return playbooks

    def _inventory(self, config: AnsibleLocalProvisioner, comm: Communicator, ctx: ProvisionContext,
                   staging: str) -> str:
        if config.inventory_file:
            local = ctx.local_path(config.inventory_file)
            comm.upload(local, posixpath.join(staging, local.name))
            return local.name
        name = f"packer-provisioner-ansible-local{uuid.uuid4().hex[:8]}"
        comm.upload(inventory_text(config.inventory_groups).encode(), posixpath.join(staging, name))
        return name

    def _galaxy(self, config: AnsibleLocalProvisioner, comm: Communicator, ctx: ProvisionContext,
                staging: str) -> None:
        assert config.galaxy_file is not None
        local = ctx.local_path(config.galaxy_file)
        comm.upload(local, posixpath.join(staging, local.name))
        force = " --force" if config.galaxy_force_install else ""
        roles = config.galaxy_roles_path or posixpath.join(staging, "roles", "galaxy_roles")
        collections = config.galaxy_collections_path or posixpath.join(staging, "collections", "galaxy_collections")
        galaxy, req = shlex.quote(config.galaxy_command), shlex.quote(local.name)
        self._sh(comm, ctx, f"cd {shlex.quote(staging)} && {galaxy} install -r {req} -p {shlex.quote(roles)}{force}"
                 f" && if grep -q '^collections:' {req}; then {galaxy} collection install -r {req} "
                 f"-p {shlex.quote(collections)}{force}; fi", "ansible-galaxy")

    def _play(self, config: AnsibleLocalProvisioner, comm: Communicator, ctx: ProvisionContext, staging: str,
              playbook: str, inventory: str) -> None:
        extra_vars = f"packer_build_name={ctx.source_name} packer_builder_type={ctx.source_type}"
        http = ctx.extra_env.get("PACKER_HTTP_ADDR")
        if http:
            extra_vars += f" packer_http_addr={http}"
        # extra_arguments are joined as written (the plugin's own quoting rules: they are shell words).
        extra = "".join(f" {arg}" for arg in config.extra_arguments)
        command = (f"cd {shlex.quote(staging)} && ANSIBLE_FORCE_COLOR=0 PYTHONUNBUFFERED=1 {config.command} "
                   f"{shlex.quote(playbook)} --extra-vars {shlex.quote(extra_vars)}{extra} -c local "
                   f"-i {shlex.quote(inventory)}")
        ctx.emit(f"Executing Ansible: {command}")
        self._sh(comm, ctx, command, f"ansible-playbook {playbook}")

    def _sh(self, comm: Communicator, ctx: ProvisionContext, command: str, what: str) -> None:
        try:
            code = comm.run(command, on_line=ctx.emit, timeout=ctx.remaining(what))
        except FactoryError as exc:
            raise FactoryError(f"ansible-local: {what}: {exc.message}", hint=exc.hint) from exc
        if code == 127:
            raise FactoryError(f"ansible-local: {what}: command not found in the guest",
                               hint="install Ansible in the guest first (e.g. a shell provisioner running "
                                    "`apt-get install -y ansible-core`)")
        check_exit(code, [0], f"ansible-local: {what}")
