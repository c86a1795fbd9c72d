"""The extra CD's files and the ephemeral key injected into a NoCloud seed."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from factory.errors import FactoryError
from factory.steps.seed import collect_files, inject_key, nocloud_seed

KEY = "ssh-ed25519 AAAAC3Nza factory-test"


def test_key_added_as_a_new_user_when_none_listed() -> None:
    out = inject_key(b"#cloud-config\nhostname: h\n", "builder", KEY)
    assert out.startswith(b"#cloud-config\n")
    doc = yaml.safe_load(out)
    assert doc["hostname"] == "h"
    assert doc["users"] == [{"name": "builder", "sudo": "ALL=(ALL) NOPASSWD:ALL", "shell": "/bin/bash",
                             "lock_passwd": True, "ssh_authorized_keys": [KEY]}]


def test_key_appended_to_an_existing_user() -> None:
    src = b"#cloud-config\nusers:\n  - default\n  - name: builder\n    ssh_authorized_keys: [ssh-rsa OLD]\n"
    doc = yaml.safe_load(inject_key(src, "builder", KEY))
    assert doc["users"][1]["ssh_authorized_keys"] == ["ssh-rsa OLD", KEY]
    assert len(doc["users"]) == 2


def test_not_cloud_config_is_refused_with_a_hint() -> None:
    with pytest.raises(FactoryError, match="not a #cloud-config"):
        inject_key(b"#!/bin/sh\necho hi\n", "builder", KEY)


def test_seed_completed_with_meta_data_and_files_collected(tmp_path: Path) -> None:
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "a.txt").write_text("A")
    files = collect_files(tmp_path, ("extra",), {"/user-data": "#cloud-config\nfqdn: {{ .Name }}\n"},
                          {"Name": "vm1"})
    assert files["extra/a.txt"] == tmp_path / "extra" / "a.txt"
    seed = nocloud_seed(files, username="u", public_key=KEY, instance_id="vm1")
    assert yaml.safe_load(seed["user-data"])["fqdn"] == "vm1"  # type: ignore[arg-type]
    assert seed["meta-data"] == b"instance-id: vm1\nlocal-hostname: vm1\n"
    with pytest.raises(FactoryError, match="matches no file"):
        collect_files(tmp_path, ("nope/*",), {}, {})


def _seed_step(tmp_path: Path, body: str, keypair: object = None) -> Path | None:
    """Run the seed step of a real template's context (nothing else runs)."""
    from factory.build import EventBus
    from factory.steps.plan import BuildOptions, context_for
    from factory.steps.prepare import Seed
    from factory.template import load

    tpl = tmp_path / "t.pkr.hcl"
    tpl.write_text(f'source "qemu" "s" {{\n  disk_image = true\n  iso_url = "x.qcow2"\n  iso_checksum = "none"\n'
                   f'{body}\n}}\nbuild {{\n  sources = ["source.qemu.s"]\n}}\n')
    project = load(tpl)
    ctx = context_for(project.builds[0], project.builds[0].sources[0], tmp_path, EventBus(), BuildOptions())
    ctx.workdir = tmp_path
    ctx.keypair = keypair
    Seed().run(ctx)
    return ctx.seed


def test_no_seed_when_there_is_nothing_to_give_the_guest(tmp_path: Path) -> None:
    # A password login and no cd_files: a meta-data-only seed would cost a device and cloud-init's probe of it.
    assert _seed_step(tmp_path, '  ssh_username = "u"\n  ssh_password = "pw"\n  cd_label = "cidata"') is None
    assert _seed_step(tmp_path, '  ssh_username = "u"\n  ssh_password = "pw"') is None
    from factory.comm.keys import KeyPair

    # The ephemeral key is something to give: the NoCloud seed is made (the README's cloud image needs it).
    seed = _seed_step(tmp_path, '  ssh_username = "u"', keypair=KeyPair.generate())
    assert seed is not None and seed.is_file()
