"""The ansible provisioner: a real ansible-playbook (ansible-core) on the host, logging in to the test sshd with
the build's key, as it logs in to a guest's forwarded SSH port."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.sshd import PASSWORD, SshServer

from factory import secrets
from factory.comm.ssh import Communicator, connect
from factory.errors import FactoryError
from factory.provision import ProvisionContext, run
from factory.provision.ansible import galaxy_commands, inventory_text
from factory.schema.provisioners import AnsibleProvisioner

PLAYBOOK = """\
- hosts: default
  gather_facts: false
  tasks:
    - name: write what the play knows
      ansible.builtin.copy:
        dest: "{{ out }}"
        content: "build={{ packer_build_name }} type={{ packer_builder_type }} user={{ ansible_user }}
          groups={{ group_names | join(',') }} token={{ api_token }}\\n"
"""


# The "guest" is this machine, whose login shell finds a pyenv shim first: name the system Python, as a
# template does for a guest whose interpreter Ansible would not discover.
PYTHON = ["-e", "ansible_python_interpreter=/usr/bin/python3"]


def ansible(**kw: object) -> AnsibleProvisioner:
    kw["extra_arguments"] = [*PYTHON, *kw.get("extra_arguments", [])]  # type: ignore[misc]
    return AnsibleProvisioner(**kw)  # type: ignore[arg-type]


def test_a_playbook_runs_against_the_guest_with_packers_variables(comm: Communicator, ctx: ProvisionContext,
                                                                   out: list[str], tmp_path: Path) -> None:
    (tmp_path / "site.yml").write_text(PLAYBOOK)
    result = tmp_path / "result.txt"
    secrets.clear()
    run("ansible", ansible(playbook_file="site.yml", groups=["web"], empty_groups=["db"],
                           extra_arguments=["--extra-vars", f"out={result} api_token=Tok3n-xyz",
                                            "-e", "admin_password=hunter2"],
                           ansible_env_vars=["ANSIBLE_NOCOLOR=True"]), comm, ctx)
    assert result.read_text() == "build=cloud type=qemu user=root groups=web token=Tok3n-xyz\n"
    assert any(line.startswith("Executing Ansible: ansible-playbook -e packer_build_name=cloud") for line in out)
    assert any("ok=1" in line and "failed=0" in line for line in out)
    assert secrets.mask("-e admin_password=hunter2") == "-e admin_password=<sensitive>"
    assert not list(tmp_path.glob("packer-provisioner-ansible*"))   # the generated inventory is gone
    secrets.clear()


def test_a_failing_play_is_an_error_with_its_output(comm: Communicator, ctx: ProvisionContext, out: list[str],
                                                     tmp_path: Path) -> None:
    (tmp_path / "fail.yml").write_text("- hosts: default\n  gather_facts: false\n  tasks:\n"
                                       "    - ansible.builtin.fail:\n        msg: deliberately broken\n")
    with pytest.raises(FactoryError, match="ansible-playbook exited with status 2"):
        run("ansible", ansible(playbook_file="fail.yml"), comm, ctx)
    assert any("deliberately broken" in line for line in out)


def test_inventory_file_template_and_kept_inventory(comm: Communicator, ctx: ProvisionContext, sshd: SshServer,
                                                    tmp_path: Path) -> None:
    (tmp_path / "ping.yml").write_text("- hosts: guest\n  gather_facts: false\n  tasks:\n"
                                       "    - ansible.builtin.ping:\n")
    (tmp_path / "inv").mkdir()
    run("ansible", ansible(playbook_file="ping.yml", host_alias="guest", inventory_directory="inv",
                           keep_inventory_file=True), comm, ctx)
    (kept,) = (tmp_path / "inv").iterdir()
    assert kept.read_text() == f"guest ansible_host=127.0.0.1 ansible_user=root ansible_port={sshd.port}\n"


def test_the_generated_inventory_is_packers() -> None:
    config = ansible(playbook_file="p.yml", groups=["a", "b"], empty_groups=["c"], host_alias="vm",
                     inventory_file_template="{{ .HostAlias }} ansible_host={{ .Host }}:{{ .Port }}")
    assert inventory_text(config, "127.0.0.1", 2222, "u") == (
        "vm ansible_host=127.0.0.1:2222\n[a]\nvm ansible_host=127.0.0.1:2222\n[b]\nvm ansible_host=127.0.0.1:2222\n"
        "[c]\n")


def test_galaxy_installs_roles_and_collections_of_the_requirements(tmp_path: Path) -> None:
    req = tmp_path / "requirements.yml"
    req.write_text("roles:\n  - name: geerlingguy.docker\ncollections:\n  - community.general\n")
    config = ansible(playbook_file="p.yml", galaxy_file=str(req), roles_path="roles", galaxy_force_install=True)
    assert galaxy_commands(config, req) == [
        ["ansible-galaxy", "install", "-r", str(req), "--roles-path", "roles", "--force"],
        ["ansible-galaxy", "collection", "install", "-r", str(req), "--force"]]


def test_a_missing_playbook_is_refused_by_validate(tmp_path: Path) -> None:
    from factory.schema.types import check

    assert [p.message for p in check(ansible(playbook_file=str(tmp_path / "nope.yml")))] == [
        f"ansible provisioner: playbook_file {tmp_path / 'nope.yml'} does not exist"]


def test_a_password_only_build_logs_ansible_in_through_sshpass(sshd: SshServer, ctx: ProvisionContext,
                                                               out: list[str], tmp_path: Path) -> None:
    if sshd.password is None:
        pytest.skip("the test sshd has a root password only when the tests run as root")
    (tmp_path / "ping.yml").write_text("- hosts: default\n  gather_facts: false\n  tasks:\n"
                                       "    - ansible.builtin.ping:\n")
    with connect(sshd.settings(keypair=None, password=PASSWORD)) as comm:
        run("ansible", ansible(playbook_file="ping.yml"), comm, ctx)
    assert any("ok=1" in line for line in out)
    assert not any(PASSWORD in line for line in out)   # the password goes through a 0600 extra-vars file
