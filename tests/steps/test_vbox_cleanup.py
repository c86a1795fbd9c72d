"""The VirtualBox build's cleanup (factory.steps.vbox) against the VBoxManage stand-in (VirtualBox cannot be
installed here): `unregistervm --delete` only for the VM that carries this run's factory/owner mark, logged as
every VBoxManage call is; a VM of the same name that another tool registered is never touched."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures.vbox import StandIn

from factory.events import Event, EventBus
from factory.machine import vbox_commands as cmd
from factory.machine.virtualbox import VirtualBoxDriver
from factory.schema.virtualbox import VirtualBoxOvfSource
from factory.steps.vbox import VBoxContext, _unregister


def _ctx(owner: str) -> tuple[VBoxContext, list[Event]]:
    bus, seen = EventBus(), []
    bus.subscribe(seen.append)
    ctx = VBoxContext(build_name="b", bus=bus, source_type="virtualbox-ovf", source_name="t",
                      config=VirtualBoxOvfSource(vm_name="t"), driver=VirtualBoxDriver(), run_uuid="r")
    ctx.registered, ctx.owner = True, owner
    return ctx, seen


@pytest.mark.parametrize("mark", [None, "otherhost:1:someone-else"], ids=["unmarked", "another-run"])
def test_standin_a_vm_without_this_runs_mark_is_left_registered(vboxmanage: StandIn, tmp_path: Path,
                                                                mark: str | None) -> None:
    vboxmanage("createvm", "--name", "t", "--basefolder", str(tmp_path / "vms"), "--register")
    if mark:
        vboxmanage(*cmd.mark_owner("t", mark))
    ctx, seen = _ctx("here:2:this-run")
    _unregister(ctx)
    assert list(vboxmanage.registered()) == ["t"] and (tmp_path / "vms" / "t").is_dir()
    notices = [e.message for e in seen if "factory leaves it registered" in e.message]
    assert notices == [f"the VM t does not carry this build's factory/owner mark ({mark or 'none'}); factory "
                       "leaves it registered"]


def test_standin_the_vm_this_run_marked_is_unregistered_and_deleted_and_logged(vboxmanage: StandIn,
                                                                               tmp_path: Path) -> None:
    vboxmanage("createvm", "--name", "t", "--basefolder", str(tmp_path / "vms"), "--register")
    vboxmanage(*cmd.mark_owner("t", "here:2:this-run"))
    ctx, seen = _ctx("here:2:this-run")
    _unregister(ctx)
    assert vboxmanage.registered() == {} and not (tmp_path / "vms" / "t").exists()
    assert [e.message for e in seen if e.source == "vboxmanage"] == ["getextradata t factory/owner",
                                                                      "unregistervm t --delete"]


def test_standin_the_vm_with_the_uuid_this_run_recorded_is_unregistered_without_reading_a_mark(
        vboxmanage: StandIn, tmp_path: Path) -> None:
    """virtualbox-iso chooses the UUID (`createvm --uuid`): a Ctrl-C before the mark is set leaves nothing behind."""
    vboxmanage("createvm", "--name", "t", "--basefolder", str(tmp_path / "vms"), "--register", "--uuid",
               "6c1a3e52-1f0b-4c39-9d3b-0d6f4a0e9b11")
    ctx, seen = _ctx("here:2:this-run")
    ctx.vm_uuid = "6c1a3e52-1f0b-4c39-9d3b-0d6f4a0e9b11"
    _unregister(ctx)
    assert vboxmanage.registered() == {}
    assert [e.message for e in seen if e.source == "vboxmanage"] == ["unregistervm t --delete"]
