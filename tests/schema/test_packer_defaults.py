"""Defaults that a string lookup in the steps once restated differently from the declaration: the declaration now
holds the one default, and where the two disagreed Packer's documented value won. Each expected value below is
quoted from packer-plugin-qemu's / packer-plugin-virtualbox's generated docs (.web-docs/components/builder/...)."""

from __future__ import annotations

import pytest

from factory.options import options_of
from factory.schema.qemu import QemuSource
from factory.schema.virtualbox import VirtualBoxIsoSource

# (option, documented default, the docs' words)
QEMU_DOCUMENTED = [
    ("tpm_device_type", "tpm-tis", "x86: tpm-tis (default)"),
    ("floppy_label", "packer", "By default, the floppy label will be 'packer'."),
    # Packer: "a sensible default value is picked depending on the builder type"; its QEMU builder types the
    # whole boot command over VNC with no pause between groups (step_type_boot_command.go).
    ("boot_keygroup_interval", "0s", "a sensible default value is picked depending on the builder type"),
    ("disk_size", "40960M", "Packer uses a default of `40960M` (40 GB)"),
    ("disk_cache", "writeback", "By default, this is set to `writeback`."),
    ("disk_discard", "ignore", "By default, this is set to ignore."),
    ("disk_detect_zeroes", "off", "Defaults to off."),
    ("format", "qcow2", "This defaults to `qcow2`."),
    ("machine_type", "pc", "This defaults to `pc`."),
    ("memory", 512, "This defaults to 512 megabytes."),
    ("cpus", 1, "The default is `1` CPU."),
    ("net_device", "virtio-net", "The Qemu builder uses `virtio-net` by default."),
    ("disk_interface", "virtio", "The Qemu builder uses `virtio` by default."),
    ("qemu_binary", "qemu-system-x86_64", "This defaults to qemu-system-x86_64"),
    ("vnc_bind_address", "127.0.0.1", "By default packer will use 127.0.0.1 for this."),
    ("vnc_port_min", 5900, "By default this is 5900 to 6000."),
    ("vnc_port_max", 6000, "By default this is 5900 to 6000."),
    ("boot_wait", "10s", "boot_wait (duration string) ... Defaults to `10s`"),
    ("shutdown_timeout", "5m", "The default is 5 minutes."),
    ("ssh_timeout", "5m", "The default SSH timeout is 5m"),
    ("ssh_port", 22, "The port to connect to SSH. This defaults to 22."),
    ("host_port_min", 2222, "defaults to 2222 and 4444"),
    ("host_port_max", 4444, "defaults to 2222 and 4444"),
    ("http_port_min", 8000, "By default the values are 8000 and 9000"),
    ("http_port_max", 9000, "By default the values are 8000 and 9000"),
]


@pytest.mark.parametrize(("option", "default", "docs"), QEMU_DOCUMENTED, ids=[c[0] for c in QEMU_DOCUMENTED])
def test_qemu_declares_packers_documented_default(option: str, default: object, docs: str) -> None:
    declared = {o.name: o.default for o in options_of(QemuSource)}
    assert declared[option] == default, f"{option}: Packer documents {docs!r}"


def test_the_typed_defaults_are_the_documented_ones() -> None:
    q = QemuSource()
    assert (q.tpm_device_type, q.floppy_label, q.boot_keygroup_interval) == ("tpm-tis", "packer", 0.0)
    assert (q.disk_size, q.boot_wait, q.ssh_timeout) == (40960, 10.0, 300.0)


def test_virtualbox_pauses_between_key_groups_as_packer_documents() -> None:
    # packer-plugin-virtualbox: "... a default of 100ms between groups."
    assert VirtualBoxIsoSource().boot_keygroup_interval == 0.1
