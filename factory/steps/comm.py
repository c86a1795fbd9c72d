"""Communicator steps of a build that are not about waiting for SSH: ssh_clear_authorized_keys."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from factory.build import EventKind, Step
from factory.errors import FactoryError
from factory.steps.context import BuildContext


class ClearAuthorizedKeys(Step[BuildContext]):
    """After provisioning: the ephemeral public key leaves the guest's authorized_keys (Packer's
    StepCleanupTempKeys), and must really be gone from the user's file."""

    name, title = "clear-keys", "Removing the ephemeral SSH key from the guest"

    def applies(self, ctx: BuildContext) -> bool:
        c = ctx.comm_options
        return (c.communicator == "ssh" and c.ssh_clear_authorized_keys
                and ctx.keypair is not None and ctx.comm is not None)

    def options(self, ctx: BuildContext) -> Mapping[str, Any]:
        return {"ssh_clear_authorized_keys": True}

    def run(self, ctx: BuildContext) -> None:
        from factory.comm.authorized import clear_authorized_key

        assert ctx.keypair is not None  # applies() checked it
        outcome = clear_authorized_key(ctx.connected, ctx.keypair, timeout=60.0 * ctx.timeout_factor)
        for path in outcome.removed:
            ctx.say(f"ephemeral key removed from {path}")
        for path in outcome.unchecked:
            ctx.emit(EventKind.NOTICE, f"ssh_clear_authorized_keys: could not check {path} (sudo needs a "
                     "password); remove the key there yourself if factory's user was given it")
        if outcome.kept:
            raise FactoryError("ssh_clear_authorized_keys: the ephemeral key is still in "
                               + ", ".join(outcome.kept) + " after removing it",
                               hint="the file may be immutable (chattr +i) or on a read-only file system; "
                                    "the image would keep accepting a key factory generated")
