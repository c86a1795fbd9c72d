"""The null builder's steps: connect to an existing host (or to nothing), provision, post-process.

There is no machine, disk or output directory; the artifact has no files, as Packer's null builder's, so a
chain such as shell-local then artifice can still make one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from factory.artifact.model import Artifact
from factory.build import EventKind, Step
from factory.steps import finish
from factory.steps.context import BuildContext


class ConnectExisting(Step[BuildContext]):
    name, title = "connect", "Connecting to the existing host"

    def applies(self, ctx: BuildContext) -> bool:
        return ctx.comm_options.communicator == "ssh"

    def options(self, ctx: BuildContext) -> Mapping[str, Any]:
        return {"target": ctx.ssh.target}

    def run(self, ctx: BuildContext) -> None:
        from factory.comm.ssh import connect

        # ssh_host and ssh_port are the host's own: no port forward, no ephemeral key (nothing to inject it into).
        settings = dataclasses.replace(ctx.ssh, keypair=None)
        ctx.say(f"waiting up to {settings.timeout:g}s for SSH on {settings.target}")
        ctx.comm = connect(settings, notify=lambda m: ctx.output("ssh", m))
        ctx.cleanups.push("close SSH", ctx.comm.close)
        ctx.say("connected over SSH")


class NullArtifact(Step[BuildContext]):
    name, title = "artifact", "Recording the (empty) artifact"

    def run(self, ctx: BuildContext) -> None:
        ctx.artifact = Artifact(builder_id="factory.null", build_name=ctx.build_name, builder_type="null",
                                files=(), artifact_id="Null")
        ctx.artifacts.append(ctx.artifact)
        ctx.emit(EventKind.ARTIFACT, "did not export anything (null builder)",
                 data=ctx.artifact.event_data())


def steps(ctx: BuildContext) -> list[Step[BuildContext]]:
    return [ConnectExisting(), *finish.provision_steps(ctx), NullArtifact(), finish.PostProcess()]
