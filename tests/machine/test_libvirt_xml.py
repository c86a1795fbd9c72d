"""libvirt domain and volume XML: golden files, and libvirt's own schemas (virt-xml-validate) accept them."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from factory.machine.libvirt_xml import UserNet, domain_plan, domain_xml, pool_xml, volume_xml
from factory.schema.libvirt import LibvirtSource

Golden = Callable[[str, str], None]

SEED = {"bus": "virtio", "source": {"type": "cloud-init", "user_data": "#cloud-config\n"}}
ARTIFACT = {"alias": "artifact", "bus": "virtio", "format": "qcow2", "capacity": "4G",
            "source": {"type": "external", "urls": ["https://example.org/debian-12.qcow2"], "checksum": "none"}}

CASES: dict[str, dict[str, Any]] = {
    # The README's Debian guest: user-mode NIC (QEMU's forward), EFI firmware given explicitly, seed on virtio.
    "user-hostfwd-q35-efi": dict(chipset="q35", vcpu=2, memory=1024, volume=[ARTIFACT, SEED],
                                 loader_path="/usr/share/OVMF/OVMF_CODE_4M.fd", loader_type="pflash",
                                 nvram_template="/usr/share/OVMF/OVMF_VARS_4M.fd"),
    # The plugin's defaults: no bus, no target_dev (sda on SCSI), BIOS, libvirt's machine type.
    "plugin-defaults": dict(volume=[{"source": {"type": "backing-store", "pool": "base", "volume": "deb"},
                                     "capacity": "10G"}]),
    "managed-bridge-vnc": dict(
        cpu_mode="host-passthrough", boot_devices=["hd", "network"], volume=[{**ARTIFACT, "bus": "sata"}, SEED],
        network_interface=[{"type": "managed", "alias": "communicator", "network": "builds"},
                           {"type": "bridge", "bridge": "br0", "mac": "52:54:00:aa:bb:cc", "model": "e1000"}],
        graphics=[{"type": "vnc", "port": 0}], network_address_source="lease"),
    "user-passt": dict(volume=[ARTIFACT], network_interface=[{"type": "user", "alias": "communicator"}]),
}


def _xml(case: str) -> str:
    cfg = LibvirtSource(libvirt_uri="qemu:///system", **CASES[case])
    names = tuple(f"factory-deb-0123abcd-{i}" for i in range(len(cfg.volumes)))
    user_net = UserNet.PASST if case == "user-passt" else UserNet.HOSTFWD
    plan = domain_plan(cfg, name="factory-deb-0123abcd", build_id="0123abcd", source="libvirt.deb",
                       domain_type="qemu", volume_names=names, ssh_host_port=2345,
                       serial_log="/var/log/factory/serial.log" if case != "managed-bridge-vnc" else None,
                       user_net=user_net)
    return domain_xml(plan)


def _validate(tmp_path: Path, text: str, schema: str) -> None:
    path = tmp_path / f"{schema}.xml"
    path.write_text(text)
    done = subprocess.run(["virt-xml-validate", str(path), schema], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("case", sorted(CASES))
def test_domain_xml_matches_golden_and_libvirt_schema(case: str, golden: Golden, tmp_path: Path) -> None:
    text = _xml(case)
    golden(f"machine/libvirt/{case}.xml", text)
    _validate(tmp_path, text, "domain")


def test_user_nic_forwards_ssh_to_loopback_only() -> None:
    text = _xml("user-hostfwd-q35-efi")
    assert "hostfwd=tcp:127.0.0.1:2345-:22" in text
    assert "bus=pcie.0,addr=0x10" in text            # q35 refuses an implicit slot
    assert "<interface" not in text                   # the NIC lives on QEMU's command line only
    passt = _xml("user-passt")
    assert '<portForward proto="tcp" address="127.0.0.1">' in passt and 'start="2345" to="22"' in passt


def test_domain_carries_factory_metadata_and_prefix() -> None:
    text = _xml("plugin-defaults")
    assert "<name>factory-deb-0123abcd</name>" in text
    assert 'xmlns:factory="urn:x-factory:libvirt:1"' in text
    assert '<factory:build id="0123abcd" source="libvirt.deb" />' in text
    assert 'type="qemu">' in text.splitlines()[0]
    assert '<target dev="sda" bus="scsi"' in text and 'model="virtio-scsi"' in text


def test_domain_type_follows_the_probe_unless_forced() -> None:
    cfg = LibvirtSource(libvirt_uri="qemu:///system", volume=[ARTIFACT])
    plan = domain_plan(cfg, name="n", build_id="b", source="s", domain_type="kvm", volume_names=("v",),
                       ssh_host_port=None, serial_log=None)
    assert plan.domain_type == "kvm"
    forced = LibvirtSource(libvirt_uri="qemu:///system", volume=[ARTIFACT], domain_type="qemu")
    assert domain_plan(forced, name="n", build_id="b", source="s", domain_type="kvm", volume_names=("v",),
                       ssh_host_port=None, serial_log=None).domain_type == "qemu"


def test_volume_and_pool_xml_are_valid(golden: Golden, tmp_path: Path) -> None:
    cow = volume_xml("factory-deb-0123abcd-0", capacity=4 << 30, backing_path="/pool/base.qcow2",
                     backing_format="qcow2")
    golden("machine/libvirt/volume-backing.xml", cow)
    _validate(tmp_path, cow, "storagevol")
    _validate(tmp_path, volume_xml("seed", capacity=1 << 20, fmt="raw", allocation=0), "storagevol")
    _validate(tmp_path, pool_xml("factory-test", "/var/lib/libvirt/images/factory-test"), "storagepool")
