"""What a build derives from the typed source config: names, paths against the build root, firmware, user."""

from __future__ import annotations

from pathlib import Path

from factory.artifact.model import Firmware
from factory.build import EventBus
from factory.schema.null import NullSource
from factory.schema.qemu import QemuSource
from factory.steps.context import BuildContext

BASE = {"iso_url": "a.iso", "iso_checksum": "none", "ssh_username": "root"}


def _ctx(config: object, tmp_path: Path) -> BuildContext:
    return BuildContext(build_name="b", bus=EventBus(), config=config, source_name="x",  # type: ignore[arg-type]
                        root=tmp_path)


def test_http_server_binds_loopback_by_default_and_honours_the_template(tmp_path: Path) -> None:
    assert _ctx(QemuSource(**BASE), tmp_path).s.http_bind_address == "127.0.0.1"
    assert _ctx(QemuSource(**BASE, http_bind_address="0.0.0.0"), tmp_path).s.http_bind_address == "0.0.0.0"


def test_names_and_paths_come_from_the_source_name_and_the_build_root(tmp_path: Path) -> None:
    ctx = _ctx(QemuSource(**BASE), tmp_path)
    assert (ctx.vm_name, ctx.output_directory) == ("packer-x", tmp_path / "output-x")
    ctx = _ctx(QemuSource(**BASE, vm_name="disk.img", output_directory="out", http_directory="~/www"), tmp_path)
    assert (ctx.vm_name, ctx.output_directory) == ("disk.img", tmp_path / "out")
    assert ctx.path(ctx.s.http_directory) == Path.home() / "www" and ctx.path(None) is None
    assert ctx.template_values["OutputDir"] == str(tmp_path / "out")


def test_options_decided_together() -> None:
    assert QemuSource(**BASE, efi_firmware_vars="v.fd").efi and not QemuSource(**BASE).efi
    backed = QemuSource(**BASE, disk_image=True, use_backing_file=True)
    assert backed.uses_backing_file and backed.skips_compaction
    raw = QemuSource(**BASE, disk_image=True, use_backing_file=True, format="raw")
    assert not raw.uses_backing_file and not raw.skips_compaction
    assert QemuSource(**BASE).topology is None and QemuSource(**BASE, cores=2).topology == (1, 2, 1)


def test_firmware_and_hardware(tmp_path: Path) -> None:
    ctx = _ctx(QemuSource(**BASE, efi_boot=True, memory=2048, cpus=2), tmp_path)
    assert ctx.firmware is Firmware.EFI
    assert (ctx.hardware.cpus, ctx.hardware.memory_mb, ctx.hardware.firmware) == (2, 2048, Firmware.EFI)


def test_ssh_user_defaults(tmp_path: Path) -> None:
    assert _ctx(QemuSource(iso_url="a.iso"), tmp_path).ssh_username == "root"
    assert _ctx(QemuSource(iso="debian-12"), tmp_path).ssh_username == "factory"
    assert _ctx(QemuSource(iso="debian-12", preseed_vars={"username": "ops"}), tmp_path).ssh_username == "ops"


def test_the_null_builder_has_communicator_options_only(tmp_path: Path) -> None:
    ctx = _ctx(NullSource(ssh_host="10.0.0.5", ssh_username="u", ssh_password="p"), tmp_path)
    assert ctx.comm_options.communicator == "ssh" and ctx.ssh.target == "u@10.0.0.5:22"
