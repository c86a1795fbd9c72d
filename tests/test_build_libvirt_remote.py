"""`factory build` of examples/debian-libvirt on the other URIs: qemu:///session (an unprivileged user's daemon)
and qemu+ssh:// (an sshd on 127.0.0.1 logging in with a fixture key, to qemu:///system as a remote host)."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.fixtures.guest import GuestImage
from tests.fixtures.libvirtd import LibvirtPool, domains
from tests.fixtures.sshd import running_sshd
from tests.test_build_libvirt import EXAMPLE, factory_build


@pytest.fixture
def remote_pool(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LibvirtPool]:
    """qemu:///session of an unprivileged user's daemon, or qemu:///system reached as a remote host through
    qemu+ssh:// (an sshd on 127.0.0.1 logging in with a fixture key)."""
    if request.param == "session":
        yield request.getfixturevalue("libvirt_session_pool")
        return
    pool: LibvirtPool = request.getfixturevalue("libvirt_pool")
    with running_sshd(tmp_path / "sshd") as server:
        key = server.keypair.write_private(tmp_path / "sshd" / "client_key")
        yield replace(pool, uri=f"qemu+ssh://root@127.0.0.1:{server.port}/system?keyfile={key}&no_verify=1")


@pytest.mark.vm
@pytest.mark.parametrize("remote_pool", ["session", "ssh"], indirect=True)
def test_factory_build_on_session_and_ssh_uris(debian_guest: GuestImage, remote_pool: LibvirtPool,
                                               tmp_path: Path) -> None:
    """The same build on the other URIs: volumes travel by stream only (the session daemon's user cannot read
    the image where it lies; a remote host could not either), and on qemu+ssh:// the guest's SSH forward is
    reached through an SSH tunnel as it would be on another machine."""
    done = factory_build(tmp_path, "-var", f"guest_image={debian_guest.path}", "-var", f"pool={remote_pool.name}",
                         "-var", f"libvirt_uri={remote_pool.uri}", str(EXAMPLE))
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-6000:]
    assert "demo.libvirt.debian: [shell] Built by factory" in out
    manifest = json.loads((tmp_path / "output-debian-libvirt" / "manifest.json").read_text())
    volume = manifest["builds"][0]["artifact_id"]
    assert remote_pool.volumes() == [volume]
    # This build's domain is gone (by its name: test_build_libvirt's build of the same example may run beside it).
    name = re.search(r"serial console: \S*/(factory-debian-[^/\s]+)\.serial\.log", out)
    assert name, out[-3000:]
    assert name.group(1) not in domains(remote_pool.uri, "factory-debian-")
    disk = tmp_path / "output-debian-libvirt" / f"{volume}.qcow2"
    assert subprocess.run(["qemu-img", "check", "-q", str(disk)], check=False).returncode == 0
