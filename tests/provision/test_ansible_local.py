"""The ansible-local provisioner: the playbook and its folders are uploaded to the 'guest' (the test sshd's
host) and a real ansible-playbook runs there with a local connection."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from factory.comm.ssh import Communicator
from factory.errors import FactoryError
from factory.provision import ProvisionContext, run
from factory.provision.ansible_local import inventory_text
from factory.schema.provisioners import AnsibleLocalProvisioner

# The guest's ansible-playbook is the one of this venv; the system Python runs the modules (see test_ansible).
PLAYBOOK_CMD = str(Path(sys.executable).parent / "ansible-playbook")
PYTHON = ["-e", "ansible_python_interpreter=/usr/bin/python3"]


def local(**kw: object) -> AnsibleLocalProvisioner:
    kw.setdefault("command", PLAYBOOK_CMD)
    kw["extra_arguments"] = [*PYTHON, *kw.get("extra_arguments", [])]  # type: ignore[misc]
    return AnsibleLocalProvisioner(**kw)  # type: ignore[arg-type]


def test_playbook_dir_roles_and_groups_reach_the_guest_and_run(comm: Communicator, ctx: ProvisionContext,
                                                               out: list[str], remote_dir: str,
                                                               tmp_path: Path) -> None:
    project = tmp_path / "ansible"
    (project / "roles" / "greet" / "tasks").mkdir(parents=True)
    (project / "roles" / "greet" / "tasks" / "main.yml").write_text(
        "- ansible.builtin.copy:\n    dest: \"{{ out }}\"\n"
        "    content: \"build={{ packer_build_name }} groups={{ group_names | join(',') }} who={{ who }}\\n\"\n")
    (project / "site.yml").write_text("- hosts: all\n  gather_facts: false\n  roles: [greet]\n")
    (tmp_path / "gv").mkdir()
    (tmp_path / "gv" / "web.yml").write_text("who: from-group-vars\n")
    result = f"{remote_dir}/result.txt"
    staging = f"{remote_dir}/staging"
    run("ansible-local", local(playbook_file=str(project / "site.yml"), playbook_dir=str(project),
                               group_vars="gv", inventory_groups=["web"], staging_directory=staging,
                               extra_arguments=["--extra-vars", f"out={result}"]), comm, ctx)
    shown: list[str] = []
    comm.run(f"cat {result}; ls {staging}", on_line=shown.append)
    assert shown[0] == "build=cloud groups=web who=from-group-vars"
    assert {"site.yml", "roles", "group_vars"} <= set(shown[1:])
    assert any("ok=1" in line for line in out)


def test_clean_staging_directory_and_a_failing_play(comm: Communicator, ctx: ProvisionContext, out: list[str],
                                                    remote_dir: str, tmp_path: Path) -> None:
    (tmp_path / "fail.yml").write_text("- hosts: all\n  gather_facts: false\n  tasks:\n"
                                       "    - ansible.builtin.fail:\n        msg: broken on purpose\n")
    staging = f"{remote_dir}/stage"
    with pytest.raises(FactoryError, match=r"ansible-local: ansible-playbook fail\.yml exited with status 2"):
        run("ansible-local", local(playbook_file="fail.yml", staging_directory=staging,
                                   clean_staging_directory=True), comm, ctx)
    assert any("broken on purpose" in line for line in out)
    left: list[str] = []
    comm.run(f"ls -A {remote_dir}", on_line=left.append)
    assert left == []


def test_ansible_missing_in_the_guest_says_so(comm: Communicator, ctx: ProvisionContext, tmp_path: Path) -> None:
    (tmp_path / "p.yml").write_text("- hosts: all\n  tasks: []\n")
    with pytest.raises(FactoryError) as err:
        run("ansible-local", local(playbook_file="p.yml", command="no-such-ansible-playbook",
                                   clean_staging_directory=True), comm, ctx)
    assert "command not found in the guest" in err.value.message and "install Ansible" in (err.value.hint or "")


def test_generated_inventory_and_validation(tmp_path: Path) -> None:
    from factory.schema.types import check

    (tmp_path / "p.yml").write_text("[]\n")
    assert inventory_text([]) == "127.0.0.1\n"
    assert inventory_text(["a", "b"]) == "[a]\n127.0.0.1\n[b]\n127.0.0.1\n"
    assert [p.option for p in check(AnsibleLocalProvisioner())] == ["playbook_file"]
    assert [p.option for p in check(AnsibleLocalProvisioner(playbook_file=str(tmp_path / "p.yml"),
                                                            role_paths=["/nope"]))] == ["role_paths"]
