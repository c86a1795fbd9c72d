"""VNC, the user's QMP socket, swtpm and the floppy on a real QEMU, started paused (-S): no guest boot needed;
and a Linux kernel that probes the TPM (a few seconds under TCG: it stops at its missing root fs).

VNC is checked as a client sees it: the RFB banner, the security types offered, and VNC authentication with
the right and a wrong password (DES challenge-response, as every VNC viewer does it).
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fixtures.vnc import rfb_handshake

from factory import secrets
from factory.errors import FactoryError
from factory.machine import vnc
from factory.machine.driver import MachineSpec
from factory.machine.qemu import QemuMachine
from factory.machine.qmp import QmpSession
from factory.machine.tpm import TpmSpec
from factory.media import floppy


def _spec(tmp_path: Path, **kw: object) -> MachineSpec:
    base: dict[str, object] = dict(name="console", workdir=tmp_path, serial_log=tmp_path / "serial.log",
                                   memory_mb=128, hypervisor_args=(("-S",),))
    base.update(kw)
    return MachineSpec(**base)  # type: ignore[arg-type]


@pytest.fixture
def vnc_lease() -> Iterator[tuple[vnc.VncSpec, object]]:
    spec, lease = vnc.reserve_vnc("127.0.0.1", 5900, 6000, "s3cret!")
    yield spec, lease
    lease.release()


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_vnc_password_tpm_floppy_and_user_qmp_on_a_paused_qemu(tmp_path: Path, vnc_lease) -> None:  # type: ignore[no-untyped-def]
    vspec, _lease = vnc_lease
    img = floppy.make_floppy({"Autounattend.xml": b"<unattend/>"}, tmp_path / "floppy.img")
    machine = QemuMachine(_spec(tmp_path, vnc=vspec, tpm=TpmSpec(tmp_path / "tpm"), floppy=img,
                                user_qmp=tmp_path / "user.monitor"))
    assert "s3cret!" not in " ".join(machine.argv) and "password=on" in " ".join(machine.argv)
    try:
        machine.start()
        assert machine.proc is not None and machine.swtpm is not None and machine.swtpm.proc is not None
        cmdline = Path(f"/proc/{machine.proc.pid}/cmdline").read_bytes()
        assert b"s3cret!" not in cmdline
        banner, types, ok = rfb_handshake(vspec.port, "s3cret!")
        assert banner == b"RFB 003.008\n" and types == [2] and ok == 0     # VNC auth offered, and it passes
        assert rfb_handshake(vspec.port, "wrong")[2] != 0
        assert machine.qmp is not None
        assert machine.qmp.execute("query-tpm") == [
            {"model": "tpm-tis", "options": {"type": "emulator", "data": {"chardev": "chrtpm"}}, "id": "tpm0"}]
        assert any(p.name.startswith("tpm2-") for p in (tmp_path / "tpm").iterdir())  # QEMU initialised it
        drives = {b["device"]: b for b in machine.qmp.execute("query-block")}
        assert drives["floppy0"]["inserted"]["file"] == str(img)
        user = QmpSession("user")
        user.connect(tmp_path / "user.monitor")
        try:
            assert user.execute("query-status")["status"] == "prelaunch"          # the same (paused) VM
        finally:
            user.close()
        swtpm_pid = machine.swtpm.proc.pid
    finally:
        machine.stop()
    assert not _pid_alive(swtpm_pid)
    assert not (tmp_path / "swtpm.sock").exists() and not (tmp_path / "user.monitor").exists()


def test_vnc_without_password_offers_no_authentication(tmp_path: Path) -> None:
    spec, lease = vnc.reserve_vnc("127.0.0.1", 5900, 6000, None)
    machine = QemuMachine(_spec(tmp_path, vnc=spec))
    try:
        machine.start()
        banner, types, _ = rfb_handshake(spec.port)
        assert banner.startswith(b"RFB 003.") and types == [1]
    finally:
        machine.stop()
        lease.release()


def test_tpm_state_carries_over_from_the_install_phase_to_the_run_phase(tmp_path: Path) -> None:
    def start_stop(workdir: Path, name: str) -> bytes:
        machine = QemuMachine(_spec(workdir, name=name, tpm=TpmSpec(workdir / "tpm")))
        try:
            machine.start()
            assert machine.qmp is not None and machine.qmp.execute("query-tpm")[0]["id"] == "tpm0"
        finally:
            machine.stop()
        assert machine.swtpm is not None and machine.swtpm.proc is None
        return (workdir / "tpm" / "tpm2-00.permall").read_bytes()

    installed = start_stop(tmp_path, "install")       # two VM starts of one build, as Install then Boot do
    assert start_stop(tmp_path, "run") == installed    # the same TPM (its seeds), not a new one
    (tmp_path / "other").mkdir()
    assert start_stop(tmp_path / "other", "other") != installed   # a new TPM would look different


def test_a_port_taken_after_the_check_makes_qemu_move_on_not_fail(tmp_path: Path) -> None:
    spec, lease = vnc.reserve_vnc("127.0.0.1", 5900, 6000, None)
    intruder = socket.socket()        # a program outside factory binds the port between check and QEMU's start
    intruder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    machine = QemuMachine(_spec(tmp_path, vnc=spec))
    try:
        intruder.bind(("127.0.0.1", spec.port))
        intruder.listen()
        machine.start()
        port = machine.vnc_port()
        assert port is not None and spec.port < port <= 6000
        assert rfb_handshake(port)[1] == [1]
    finally:
        machine.stop()
        intruder.close()
        lease.release()
    assert machine.vnc_port() is None


def test_tpm1_and_a_swtpm_that_cannot_start(tmp_path: Path) -> None:
    state = tmp_path / "tpm"
    machine = QemuMachine(_spec(tmp_path, tpm=TpmSpec(state, tpm1=True)))
    (tmp_path / "second").mkdir()
    # A second swtpm on the same state directory fails on swtpm's own lock: a clear error, nothing left over.
    second = QemuMachine(_spec(tmp_path / "second", tpm=TpmSpec(state)))
    try:
        machine.start()
        assert machine.swtpm is not None and "--tpm2" not in machine.swtpm.argv
        assert machine.qmp is not None and machine.qmp.execute("query-tpm")[0]["model"] == "tpm-tis"
        with pytest.raises(FactoryError, match="tpm-emulator") as err:
            try:
                second.start()
            finally:
                second.stop()
        assert "swtpm: " in err.value.message and "lock" in err.value.message.lower()   # swtpm's own words
        assert second.swtpm is not None and second.swtpm.proc is None
        assert not (tmp_path / "second" / "swtpm.sock").exists()
    finally:
        machine.stop()


def test_two_reservations_get_different_ports_and_bad_options_are_named() -> None:
    one, lease1 = vnc.reserve_vnc("127.0.0.1", 5900, 6000, None)
    two, lease2 = vnc.reserve_vnc("127.0.0.1", 5900, 6000, None)
    try:
        assert one.port != two.port
        with pytest.raises(FactoryError, match="no free port"):
            vnc.reserve_vnc("127.0.0.1", one.port, one.port, None)
    finally:
        lease1.release()
        lease2.release()
    with pytest.raises(FactoryError, match=r"vnc_port_min\.\.vnc_port_max is empty"):
        vnc.reserve_vnc("127.0.0.1", 5990, 5980, None)
    with pytest.raises(FactoryError, match="vnc_port_min 5800 is below 5900"):
        vnc.reserve_vnc("127.0.0.1", 5800, 5900, None)
    with pytest.raises(FactoryError, match="vnc_password is 9 bytes") as err:
        vnc.reserve_vnc("127.0.0.1", 5900, 6000, "123456789")
    assert err.value.hint and "8" in err.value.hint and "123456789" not in err.value.message
    with pytest.raises(FactoryError, match="vnc_bind_address"):
        vnc.reserve_vnc("::1", 5900, 6000, None)


def test_password_is_registered_as_a_secret_and_the_message_never_shows_it() -> None:
    spec, lease = vnc.reserve_vnc("0.0.0.0", 5900, 6000, "pa55wd")
    try:
        assert secrets.mask("pw pa55wd") == f"pw {secrets.MASK}"
        msg = vnc.connection_message(spec, "from vnc_password")
        assert f"vnc://127.0.0.1:{spec.port}" in msg and "pa55wd" not in msg and "pa55wd" not in repr(spec)
        generated = vnc.generate_password()
        assert len(generated) == 8 and generated.isalnum()
    finally:
        lease.release()
        time.sleep(0)


DI_KERNEL = Path("/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64/linux")


@pytest.mark.vm
@pytest.mark.parametrize(("tpm1", "seen"), [(False, "2.0 TPM"), (True, "1.2 TPM")])
def test_a_linux_guest_finds_the_swtpm_device(tmp_path: Path, tpm1: bool, seen: str) -> None:
    """Debian's kernel (no initrd: it panics right after the drivers probe) finds the TPM and talks to it."""
    from factory.machine.driver import DirectBoot

    spec = _spec(tmp_path, hypervisor_args=(), memory_mb=256, no_reboot=True, tpm=TpmSpec(tmp_path / "tpm", tpm1),
                 direct_boot=DirectBoot(DI_KERNEL, None, "console=ttyS0 panic=-1 loglevel=7"))
    machine = QemuMachine(spec)
    try:
        machine.start()
        assert machine.wait_poweroff(120), "the kernel did not reach its root-fs panic"
    finally:
        machine.stop()
    log = spec.serial_log.read_text(errors="replace")
    assert re.search(rf"tpm_tis \S+: {re.escape(seen)} \(device-id", log), log[-3000:]
