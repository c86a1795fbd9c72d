"""The Debian 12 test guest: a real debootstrap image that behaves like a vendor cloud image under OVMF."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.guest import (
    MKGUEST,
    GuestImage,
    boot_guest_ssh,
    cloud_config,
    load_mkguest,
    make_cidata,
    new_keypair,
)


def test_layout_fits_the_disk_and_aligns_partitions() -> None:
    mkguest = load_mkguest()
    layout = mkguest.Layout.for_recipe(mkguest.recipe_digest())
    mib = 2048
    assert layout.esp_start % mib == 0 and layout.root_start % mib == 0
    assert layout.root_start == layout.esp_start + layout.esp_sectors
    # The backup GPT needs the last 33 sectors.
    assert layout.root_start + layout.root_sectors <= layout.total_sectors - 33
    assert len({layout.disk_guid, layout.esp_guid, layout.root_guid}) == 3


def test_recipe_digest_covers_the_package_list() -> None:
    mkguest = load_mkguest()
    assert "cloud-init" in mkguest.PACKAGES and "linux-image-cloud-amd64" in mkguest.PACKAGES
    recipe, marker, cli = MKGUEST.read_bytes().partition(mkguest.CLI_MARKER)
    # The digest covers the whole recipe (packages, configuration, disk layout), not the command line.
    assert marker and b"PACKAGES = (" in recipe and b"def configure(" in recipe and b"def main(" in cli
    assert mkguest.recipe_digest() == hashlib.sha256(recipe).hexdigest()


def test_debootstrap_progress_is_a_line_per_phase_and_a_heartbeat() -> None:
    """debootstrap is silent for minutes otherwise: each phase is announced, counted, and long ones tick."""
    said: list[str] = []
    progress = load_mkguest().DebootstrapProgress(said.append, every=0.0)
    for line in ["I: Retrieving InRelease", "I: Checking Release signature", "I: Retrieving libc6 2.36",
                 "I: Validating libc6 2.36", "W: Failure trying to run: chroot", "I: Unpacking libc6...",
                 "some other output"]:
        progress(line)
    expected = ["debootstrap: downloading packages", "debootstrap: downloading, 2 packages so far (",
                "debootstrap: downloading done (2 packages, ", "debootstrap: verifying packages",
                "debootstrap: W: Failure trying to run: chroot", "debootstrap: verifying done (1 packages, ",
                "debootstrap: unpacking packages"]
    assert len(said) == len(expected) and all(s.startswith(e) for s, e in zip(said, expected, strict=True)), said


def test_guest_image_is_a_cached_qcow2_with_boot_files(debian_guest: GuestImage) -> None:
    info = subprocess.run(["qemu-img", "info", "--output=json", str(debian_guest.path)],
                          check=True, capture_output=True, text=True).stdout
    assert '"format": "qcow2"' in info and '"virtual-size": 3221225472' in info
    assert debian_guest.kernel and debian_guest.kernel.stat().st_size > 1_000_000
    assert "root=PARTUUID=" in debian_guest.kernel_cmdline and "console=ttyS0" in debian_guest.kernel_cmdline
    assert debian_guest.modules and (debian_guest.modules / "order").read_text().split()
    # A second request is served from the cache: same directory, nothing rebuilt.
    again = load_mkguest().cached_build(debian_guest.path.parent.parent)
    assert again.image == debian_guest.path


def test_cli_copies_the_cached_guest_into_the_output_dir(debian_guest: GuestImage, tmp_path: Path) -> None:
    cache = debian_guest.path.parent.parent
    proc = subprocess.run([sys.executable, str(MKGUEST), "--cache", "--cache-dir", str(cache), "--output",
                           str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / "out" / "debian-12-guest.qcow2"
    assert proc.stdout.strip() == str(out)
    assert subprocess.run(["cmp", "-s", str(out), str(debian_guest.path)]).returncode == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["debian-12-guest.qcow2"]  # no temp left


@pytest.mark.vm
def test_guest_boots_under_ovmf_applies_the_seed_and_answers_ssh(debian_guest: GuestImage, tmp_path: Path) -> None:
    key = new_keypair()
    seed = make_cidata(cloud_config("tester", key.public_openssh, hostname="factory-guest"),
                       b"instance-id: iid-guest-test\nlocal-hostname: factory-guest\n", tmp_path / "seed.iso")
    before = debian_guest.path.stat()
    disk = debian_guest.overlay(tmp_path / "disk.qcow2")
    with boot_guest_ssh(disk, tmp_path, username="tester", key=key, seed=seed) as guest:
        print(f"\nDebian guest: time to SSH under TCG+OVMF: {guest.seconds_to_ssh:.1f}s")
        assert guest.run("id -un") == (0, "tester\n")
        assert guest.run("hostname") == (0, "factory-guest\n")
        assert guest.run("sudo -n true")[0] == 0
        # Booted through systemd-boot on UEFI, with the serial console the tests read.
        assert guest.run("test -d /sys/firmware/efi")[0] == 0
        assert "console=ttyS0" in guest.run("cat /proc/cmdline")[1]
        state = guest.run("systemctl is-system-running --wait", timeout=300)[1].strip()
        failed = guest.run("systemctl --failed --no-legend")[1]
        assert state == "running", f"system state {state}; failed units:\n{failed}"
        # Like a vendor image: only the seed's user exists with a key, nobody has a usable password.
        assert guest.run("getent passwd debian")[0] != 0
        assert guest.run("sudo awk -F: '$2 !~ /^[!*]/' /etc/shadow") == (0, "")
        assert guest.run("sudo cloud-init status")[1].strip() == "status: done"
    serial = guest.serial()
    assert "login:" in serial
    # cloud-init checks its merged config at boot: the image's own config (and the seed's) must be valid.
    assert "Invalid cloud-config" not in serial and "schema.py[WARNING]" not in serial, serial[-3000:]
    # The guest wrote to its overlay only, never to the shared base image.
    after = debian_guest.path.stat()
    assert (after.st_mtime_ns, after.st_size) == (before.st_mtime_ns, before.st_size)
