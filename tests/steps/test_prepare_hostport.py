"""When the SSH host port is reserved before QEMU starts (the template names it) and when QEMU binds it later."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from factory.build import EventBus
from factory.machine.driver import driver
from factory.schema.qemu import QemuSource
from factory.steps.context import BuildContext
from factory.steps.prepare import HostPort


def _ctx(tmp_path: Path, **options: Any) -> BuildContext:
    config = QemuSource(ssh_username="u", iso_url="x.iso", iso_checksum="none", **options)
    ctx = BuildContext(build_name="t", bus=EventBus(), config=config, root=tmp_path, driver=driver("qemu"))
    ctx.source_name = "t"
    return ctx


@pytest.mark.parametrize(("options", "ahead"), [
    ({}, False),  # the usual case: QEMU binds the forward itself after start
    ({"qemuargs": [["-netdev", "user,id=user.0,hostfwd=tcp::{{ .SSHHostPort }}-:22"]]}, True),
    ({"boot_command": ["linux ssh_port={{ .SSHHostPort }}<enter>"]}, True),  # an installer's keys, typed early
    ({"boot_command": ["{{ .SSHHostPort }}<enter>"], "disk_image": True}, False),  # typed after the forward
    ({"qemuargs": [["-netdev", "user,id=user.0,hostfwd=tcp::{{ .SSHHostPort }}-:22"]], "skip_nat_mapping": True,
      "ssh_host": "192.0.2.7"}, False),
    ({"qemuargs": [["-smp", "{{ .SSHHostPort }}"]], "communicator": "none"}, False),
])
def test_port_reserved_ahead_only_when_the_template_names_it_before_start(tmp_path: Path, options: dict[str, Any],
                                                                          ahead: bool) -> None:
    assert HostPort().applies(_ctx(tmp_path, **options)) is ahead


def test_reserved_ahead_port_is_in_the_template_values_and_released(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, qemuargs=[["-netdev", "user,id=user.0,hostfwd=tcp::{{ .SSHHostPort }}-:22"]],
               host_port_min=48700, host_port_max=48800)
    HostPort().run(ctx)
    assert ctx.ssh_lease is not None and ctx.ssh_lease.held
    assert ctx.template_values["SSHHostPort"] == str(ctx.ssh_lease.port)
    ctx.cleanups.run_all(lambda label: None)
    assert not ctx.ssh_lease.held
