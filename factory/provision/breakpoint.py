"""`breakpoint`: pause the build until Enter is pressed (Packer's messages and behaviour).

Like Packer, it reads a line from standard input; when there is no input to read (stdin closed, as in CI)
the provisioner fails rather than silently continuing, so a forgotten breakpoint is noticed.
"""

from __future__ import annotations

import sys
from typing import Any

from factory.comm.ssh import Communicator
from factory.errors import FactoryError
from factory.provision.base import ProvisionContext, Provisioner, ProvisionerType
from factory.schema.provisioners import BreakpointProvisioner


class Breakpoint(Provisioner, kind=ProvisionerType.BREAKPOINT):
    needs_communicator = False

    def provision(self, config: Any, comm: Communicator | None, ctx: ProvisionContext) -> None:
        assert isinstance(config, BreakpointProvisioner)
        note = f' with note "{config.note}"' if config.note else ""
        if config.disable:
            ctx.emit(f"Breakpoint provisioner{note} disabled; continuing...")
            return
        ctx.emit(f"Pausing at breakpoint provisioner{note}.")
        stream = ctx.stdin or sys.stdin
        tty = stream.isatty()
        ctx.emit("Press enter to continue." if tty else
                 "Press enter to continue. (stdin is not a terminal: reading one line from it)")
        line = stream.readline()
        if not line:
            raise FactoryError("breakpoint reached but there is no input to continue from (stdin is closed)",
                               hint="run factory from a terminal, feed a newline on stdin, or set disable = true")
