"""`factory build` of a `source "libvirt"` template end to end, through the CLI on a real qemu:///system: the
README's example (examples/debian-libvirt) on the Debian test guest. The base image goes to the pool by a volume
stream, cloud-init applies the seed with factory's ephemeral key, the provisioners run over the 127.0.0.1
forward, the guest powers off, the artifact volume stays in its pool and comes back compacted by stream into
output_directory, the manifest says builder_type "libvirt"; no domain or transient volume is left; then the
artifact boots again alone and holds what was provisioned."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from factory.media.seed import make_cidata
from tests.fixtures.guest import GuestImage, boot_guest_ssh, cloud_config, new_keypair
from tests.fixtures.libvirtd import LibvirtPool, domains

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "debian-libvirt"


def factory_build(tmp_path: Path, *args: str, timeout: float = 2400) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "300"}
    return subprocess.run([sys.executable, "-m", "factory", "build", *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=timeout, check=False)


@pytest.mark.vm
def test_factory_build_debian_libvirt_example_end_to_end(debian_guest: GuestImage, libvirt_pool: LibvirtPool,
                                                         tmp_path: Path) -> None:
    before = domains(libvirt_pool.uri, "factory-")
    done = factory_build(tmp_path, "-var", f"guest_image={debian_guest.path}", "-var", f"pool={libvirt_pool.name}",
                         str(EXAMPLE))
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-6000:]
    assert "demo.libvirt.debian: [shell] Built by factory" in out
    assert "SSH will be forwarded from 127.0.0.1:" in out
    manifest = json.loads((tmp_path / "output-debian-libvirt" / "manifest.json").read_text())
    build = manifest["builds"][0]
    assert build["builder_type"] == "libvirt"
    volume = build["artifact_id"]
    # Nothing left on the host but the artifact volume: no domain, no seed volume. (This build's domain, by its name:
    # tests running beside this one on the same daemon make and remove their own meanwhile.)
    name = re.search(r"serial console: \S*/(factory-[^/\s]+)\.serial\.log", out)
    assert name and name.group(1) not in before, out[-3000:]
    assert name.group(1) not in domains(libvirt_pool.uri, "factory-")
    assert libvirt_pool.volumes() == [volume]
    disk = tmp_path / "output-debian-libvirt" / f"{volume}.qcow2"
    assert [f["name"] for f in build["files"]] == [disk.name]
    info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(disk)], check=True,
                                     capture_output=True, text=True).stdout)
    assert info["format"] == "qcow2" and info["virtual-size"] == 4 << 30 and "backing-filename" not in info
    assert not list(tmp_path.glob(".output-debian-libvirt.*")), "the staging directory must be gone"

    # The downloaded artifact boots alone (an overlay keeps it pristine) with what the build provisioned.
    overlay = tmp_path / "again.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(disk), "-F", "qcow2", str(overlay)],
                   check=True)
    key = new_keypair()
    seed = make_cidata(cloud_config("again", key.public_openssh), b"instance-id: again\n", tmp_path / "seed.iso")
    with boot_guest_ssh(overlay, tmp_path, username="again", key=key, seed=seed, timeout=900) as guest:
        assert guest.run("cat /etc/motd") == (0, "Built by factory\n")

