"""The console steps on a real BuildContext: options read from a `source "qemu"`, VNC reserved (or not), the
user's QMP path checked, the TPM spec, and what every machine phase gets (no VM started here)."""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path

import pytest

from factory.build import Event, EventBus, EventKind
from factory.errors import FactoryError
from factory.machine.driver import MachineSpec
from factory.machine.qemu import QemuMachine
from factory.schema.qemu import QemuSource
from factory.steps import console
from factory.steps.context import BuildContext

BASE = {"iso_url": "a.img", "iso_checksum": "none", "disk_image": True, "ssh_username": "root"}


def _ctx(tmp_path: Path, **options: object) -> tuple[BuildContext, list[Event]]:
    events: list[Event] = []
    bus = EventBus()
    bus.subscribe(events.append)
    source = QemuSource(**BASE, **options)  # type: ignore[arg-type]
    ctx = BuildContext(build_name="qemu.t", bus=bus, config=source, root=tmp_path)
    ctx.source_name, ctx.root = "t", tmp_path
    ctx.workdir = tmp_path / "work"
    ctx.workdir.mkdir(parents=True)
    return ctx, events


def _spec(ctx: BuildContext) -> MachineSpec:
    assert ctx.workdir is not None
    return console.machine_console(ctx, MachineSpec(name="t", workdir=ctx.workdir, serial_log=ctx.workdir / "s"))


def test_defaults_start_vnc_on_loopback_and_nothing_else(tmp_path: Path) -> None:
    ctx, events = _ctx(tmp_path)
    step = console.Console()
    assert step.applies(ctx) and not console.Floppy().applies(ctx)
    step.run(ctx)
    spec = _spec(ctx)
    try:
        assert spec.vnc is not None and spec.vnc.host == "127.0.0.1" and 5900 <= spec.vnc.port <= 6000
        assert spec.vnc.password is None and spec.tpm is None and spec.user_qmp is None and spec.floppy is None
        assert any(f"VNC will listen on vnc://127.0.0.1:{spec.vnc.port}" in e.message for e in events)
        assert ctx.cleanups.labels() == [f"release VNC port {spec.vnc.port}"]
    finally:
        ctx.cleanups.run_all(lambda _m: None)


def test_every_option_reaches_the_machine_spec(tmp_path: Path) -> None:
    fw = tmp_path / "bios.bin"
    fw.write_bytes(b"\0" * 65536)
    ctx, events = _ctx(tmp_path, disable_vnc=True, vtpm=True, use_tpm1=True, tpm_device_type="tpm-crb",
                       qmp_enable=True, firmware="bios.bin", use_pflash=True, headless=False, display="gtk",
                       use_default_display=True)
    console.Console().run(ctx)
    spec = _spec(ctx)
    assert ctx.workdir is not None
    assert spec.vnc is None and not ctx.cleanups.labels()                       # disable_vnc
    assert spec.tpm is not None and spec.tpm.tpm1 and spec.tpm.model == "tpm-crb"
    assert spec.tpm.state_dir == ctx.workdir / "tpm"
    assert spec.user_qmp == ctx.workdir / "packer-t.monitor"
    assert spec.bios == fw and spec.bios_pflash
    assert (spec.display, spec.use_default_display) == ("gtk", True)
    assert any("TPM 1.2 (tpm-crb)" in e.message for e in events)


def test_generated_vnc_password_lives_in_a_private_file_not_in_the_log(tmp_path: Path) -> None:
    ctx, events = _ctx(tmp_path, vnc_use_password=True, vnc_bind_address="0.0.0.0", vnc_port_min=5950,
                       vnc_port_max=6000)
    console.Console().run(ctx)
    try:
        spec = _spec(ctx)
        assert ctx.workdir is not None and spec.vnc is not None and spec.vnc.password is not None
        pw_file = ctx.workdir / "vnc-password"
        assert pw_file.read_text().strip() == spec.vnc.password
        assert stat.S_IMODE(pw_file.stat().st_mode) == 0o600
        assert spec.vnc.port >= 5950 and spec.vnc.host == "0.0.0.0"
        assert console.state(ctx).vnc_password_source == f"in {pw_file} (random, this build only)"
        machine = QemuMachine(dataclasses.replace(spec, hypervisor_args=(("-S",),), memory_mb=64))
        try:
            machine.start()
            console.announce(ctx, machine)
            console.announce(ctx, machine)                     # the same port is not announced twice
        finally:
            machine.stop()
        text = "\n".join(e.as_json() for e in events)
        assert text.count(f"connect via VNC to vnc://127.0.0.1:{spec.vnc.port} with the password in {pw_file}") == 1
        assert spec.vnc.password not in text
    finally:
        ctx.cleanups.run_all(lambda _m: None)


def test_floppy_step_makes_the_image_in_the_scratch_dir(tmp_path: Path) -> None:
    (tmp_path / "a.xml").write_text("<a/>")
    ctx, events = _ctx(tmp_path, floppy_files=["a.xml", "missing-*.inf"], floppy_label="WINSETUP",
                       floppy_content={"b.txt": "{{ .Name }}"}, disable_vnc=True)
    step = console.Floppy()
    assert step.applies(ctx) and step.options(ctx)["floppy_label"] == "WINSETUP"
    step.run(ctx)
    spec = _spec(ctx)
    assert ctx.workdir is not None and spec.floppy == ctx.workdir / "floppy.img"
    assert spec.floppy.stat().st_size == 1474560
    assert any(e.kind is EventKind.NOTICE and "missing-*.inf" in e.message for e in events)


def test_user_qmp_path_problems_name_the_option(tmp_path: Path) -> None:
    ctx, _ = _ctx(tmp_path, qmp_enable=True, disable_vnc=True, qmp_socket_path="x" * 120)
    with pytest.raises(FactoryError, match=r"qmp_socket_path .* too long for a unix socket"):
        console.Console().run(ctx)
    ctx, _ = _ctx(tmp_path / "2", qmp_enable=True, disable_vnc=True, qmp_socket_path="no/such/dir/q.sock")
    with pytest.raises(FactoryError, match=r"qmp_socket_path .* does not exist"):
        console.Console().run(ctx)


def test_vtpm_without_swtpm_on_path_says_which_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ctx, _ = _ctx(tmp_path, vtpm=True, disable_vnc=True)
    monkeypatch.setenv("PATH", os.fspath(tmp_path))      # a host without swtpm installed
    with pytest.raises(FactoryError, match="'swtpm' was not found") as err:
        console.Console().run(ctx)
    assert err.value.hint and "apt-get install swtpm" in err.value.hint
