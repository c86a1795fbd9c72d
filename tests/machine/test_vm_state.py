"""A VM state saved and loaded through file descriptors QEMU gets over QMP (`getfd`, then `fd:` migration), on
a real QEMU with no disk, started paused (-S): no guest boot needed. And the two ways loading can fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from factory.errors import FactoryError
from factory.machine.driver import MachineSpec
from factory.machine.qemu import QemuMachine


def _spec(tmp_path: Path, name: str, incoming: Path | None = None) -> MachineSpec:
    workdir = tmp_path / name
    workdir.mkdir()
    return MachineSpec(name=name, workdir=workdir, serial_log=workdir / "serial.log", memory_mb=64,
                       hypervisor_args=(("-S",),), incoming=incoming)


def _start_failure(machine: QemuMachine) -> FactoryError:
    with pytest.raises(FactoryError) as err:
        try:
            machine.start()
        finally:
            machine.stop()
    return err.value


def test_a_saved_state_loads_into_a_new_qemu_which_then_runs(tmp_path: Path) -> None:
    state = tmp_path / "state.bin"
    source = QemuMachine(_spec(tmp_path, "source"))
    try:
        source.start()
        assert source.checkpoint([], state) == []
    finally:
        source.stop()
    assert state.stat().st_size > 0 and oct(state.stat().st_mode & 0o777) == "0o644"

    target = QemuMachine(_spec(tmp_path, "target", incoming=state))
    assert target.argv[target.argv.index("-incoming"):][:2] == ["-incoming", "defer"]
    try:
        target.start()  # loads the state, then continues it
        assert target.qmp is not None
        assert target.qmp.execute("query-status")["status"] == "running"
        assert target.qmp.execute("query-migrate")["status"] == "completed"
    finally:
        target.stop()


def test_a_state_that_is_not_one_is_refused_with_a_hint(tmp_path: Path) -> None:
    bogus = tmp_path / "state.bin"
    bogus.write_bytes(b"not a QEMU migration stream\n" * 100)
    err = _start_failure(QemuMachine(_spec(tmp_path, "bogus", incoming=bogus)))
    assert "could not load the checkpoint's VM state" in err.message
    assert "-resume=false" in (err.hint or "")


def test_a_missing_state_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "gone" / "state.bin"
    err = _start_failure(QemuMachine(_spec(tmp_path, "missing", incoming=missing)))
    assert str(missing) in err.message and "No such file" in err.message


def test_a_state_that_cannot_be_written_leaves_a_checkpoint_without_one(tmp_path: Path) -> None:
    machine = QemuMachine(_spec(tmp_path, "nowhere"))
    state = tmp_path / "gone" / "state.bin"
    try:
        machine.start()
        assert machine.checkpoint([], state) == []  # the disks' checkpoint stands; it resumes by booting
        assert machine.running() and machine.qmp is not None
        assert machine.qmp.execute("query-migrate") == {}  # no migration was started
    finally:
        machine.stop()
    assert not state.exists()
