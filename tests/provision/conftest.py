"""Provisioner tests run against the real sshd of tests/fixtures/sshd.py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.sshd import SshServer

from factory.comm.ssh import Communicator, connect
from factory.provision import ProvisionContext


@pytest.fixture
def comm(sshd: SshServer) -> Iterator[Communicator]:
    with connect(sshd.settings()) as c:
        yield c


@pytest.fixture
def out() -> list[str]:
    """Lines the provisioner emitted."""
    return []


@pytest.fixture
def ctx(out: list[str], tmp_path: Path) -> ProvisionContext:
    return ProvisionContext(build_name="demo", source_name="cloud", source_type="qemu", emit=out.append,
                            root=tmp_path)


@pytest.fixture
def remote_dir(comm: Communicator, tmp_path: Path) -> Iterator[str]:
    """A fresh directory on the 'guest' (the test sshd's host), removed afterwards.

    The host's /tmp is shared by every xdist worker, and tmp_path's name is unique only within one worker (the
    test's name cut to 30 characters, numbered per worker): two cases of a parametrized test running at once in
    two workers both get `<name>0`, and one's setup (rm -rf) would remove the other's files. The pid tells the
    workers apart."""
    path = f"/tmp/factory-prov-{os.getpid()}-{tmp_path.name}"
    comm.run(f"rm -rf {path}; mkdir -p {path}")
    yield path
    comm.run(f"rm -rf {path}")
