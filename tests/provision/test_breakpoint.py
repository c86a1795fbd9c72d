"""breakpoint: Packer's messages; waits for Enter on a real TTY; fails when stdin has nothing to read."""

from __future__ import annotations

import dataclasses
import io
import os
import threading
import time

import pytest

from factory.errors import FactoryError
from factory.provision import ProvisionContext, run
from factory.schema.provisioners import BreakpointProvisioner


def test_disabled_breakpoint_says_so_and_continues(ctx: ProvisionContext, out: list[str]) -> None:
    run("breakpoint", BreakpointProvisioner(note="first", disable=True), None,
        dataclasses.replace(ctx, stdin=io.StringIO("")))
    assert out == ['Breakpoint provisioner with note "first" disabled; continuing...']


def test_waits_for_enter_on_a_terminal(ctx: ProvisionContext, out: list[str]) -> None:
    master, slave = os.openpty()
    with os.fdopen(slave, "r") as tty:
        def press_enter() -> None:
            time.sleep(0.5)
            os.write(master, b"\n")

        start = time.monotonic()  # before the thread starts its 0.5 s, or the wait can measure a hair less
        threading.Thread(target=press_enter).start()
        run("breakpoint", BreakpointProvisioner(note="inspect"), None, dataclasses.replace(ctx, stdin=tty))
        assert time.monotonic() - start >= 0.5
    os.close(master)
    assert out == ['Pausing at breakpoint provisioner with note "inspect".', "Press enter to continue."]


def test_without_input_it_fails_rather_than_skip(ctx: ProvisionContext, out: list[str]) -> None:
    with pytest.raises(FactoryError, match="no input") as info:
        run("breakpoint", BreakpointProvisioner(), None, dataclasses.replace(ctx, stdin=io.StringIO("")))
    assert info.value.hint and "disable = true" in info.value.hint
    assert out[0] == "Pausing at breakpoint provisioner."
    run("breakpoint", BreakpointProvisioner(), None, dataclasses.replace(ctx, stdin=io.StringIO("\n")))
