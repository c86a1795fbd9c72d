"""From a template's builds to step lists, run one source at a time."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from factory.artifact.model import Artifact
from factory.build import EventBus, OnError, Step, run_steps
from factory.checkpoints import DEFAULT_MODE, CheckpointMode
from factory.errors import FactoryError, FactoryErrors
from factory.machine.driver import driver
from factory.options import Kind
from factory.schema import lookup
from factory.schema.common import CommunicatorOptions
from factory.steps import checkpoint, comm, console, finish, null, prepare, unattended, vm
from factory.steps.context import BuildContext
from factory.template.model import Build, SourceRef

# Source types factory builds, and the machine driver each one runs on; `null` runs on no machine.
DRIVERS = {"qemu": "qemu", "virtualbox-iso": "virtualbox", "virtualbox-ovf": "virtualbox",
           "virtualbox-vm": "virtualbox", "libvirt": "libvirt"}
MACHINELESS = ("null",)


def steps_for(ctx: BuildContext) -> list[Step[BuildContext]]:
    if ctx.source_type == "libvirt":
        from factory.steps import libvirt  # its driver and bindings cost every other build ~0.1 s of imports

        return libvirt.steps(ctx)
    s = ctx.s
    steps: list[Step[BuildContext]] = [
        prepare.PrepareOutput(), prepare.Accelerator(), prepare.FetchMedia(), prepare.CreateDisk(),
        prepare.Firmware(), prepare.SshKey(), unattended.Unattended(), prepare.Seed(), console.Floppy(),
        prepare.Http(), prepare.HostPort(), console.Console(),
    ]
    if not s.disk_image:
        steps.append(vm.Install())
    elif s.iso:
        raise FactoryError("iso (a catalog release) and disk_image = true exclude each other")
    steps += [vm.Boot(), vm.Connect(), *finish.provision_steps(ctx), comm.ClearAuthorizedKeys(), vm.Shutdown(),
              finish.Compact(), finish.Finalize(), finish.PostProcess()]
    return steps


@dataclass(frozen=True)
class BuildOptions:
    force: bool = False
    on_error: OnError = OnError.CLEANUP
    debug: bool = False
    driver: str = ""              # a machine driver to run the source on instead of its type's own
    checkpoint: CheckpointMode = DEFAULT_MODE
    resume: bool = True           # reuse the longest stored checkpoint chain (False: start cold)
    resume_command: str = ""      # the command that resumes a failed build (printed when it fails)


def build_name(build: Build, source: SourceRef) -> str:
    name = getattr(build, "name", "") or ""
    return f"{name}.{source.full_name}" if name else str(source.full_name)


def refuse_unbuildable(build: Build, source: SourceRef) -> None:
    """Stop before any VM starts when the build needs what factory declares but cannot run (the winrm
    communicator, Windows provisioners, any post-processor whose schema declares REFUSED): naming the component
    and why, instead of failing half-way."""
    why = []
    if isinstance(source.config, CommunicatorOptions) and source.config.communicator == "winrm":
        why.append(FactoryError(f'source {source.full_name}: communicator = "winrm" cannot be used: factory has no '
                                "WinRM communicator (no Windows guest can be built or tested here)",
                                where=getattr(source, "where", None), hint="use ssh, or build this source with "
                                "Packer"))
    steps = [*(getattr(build, "provisioners", None) or []), getattr(build, "error_cleanup_provisioner", None)]
    for spec in steps:
        if spec is None or not spec.applies_to(source.full_name):
            continue
        reason = getattr(lookup(Kind.PROVISIONER, spec.type), "REFUSED", None)
        if reason:
            why.append(FactoryError(f'provisioner "{spec.type}" cannot run for {source.full_name}: {reason}',
                                    where=spec.where, hint=f"leave it out for this source with except = "
                                    f'["{source.full_name}"], or build this source with Packer'))
    for chain in getattr(build, "post_processors", None) or []:
        for pp in chain:
            reason = getattr(lookup(Kind.POST_PROCESSOR, pp.type), "REFUSED", None)
            if reason and pp.applies_to(source.full_name):
                why.append(FactoryError(f'post-processor "{pp.type}" cannot run for {source.full_name}: {reason}',
                                        where=getattr(pp, "where", None), hint=f"leave it out for this source "
                                        f'with except = ["{source.full_name}"], or publish with Packer'))
    if len(why) == 1:
        raise why[0]
    if why:
        raise FactoryErrors(why)


def context_for(build: Build, source: SourceRef, root: Path, bus: EventBus, opts: BuildOptions,
                run_uuid: str | None = None) -> BuildContext:
    """The context one source of one build block runs in (before any step)."""
    ctx = BuildContext(build_name=build_name(build, source), bus=bus, on_error=opts.on_error,
                       source_type=source.type, source_name=source.name, root=root, config=source.config,
                       build=build, force=opts.force, debug=opts.debug, run_uuid=run_uuid or str(uuid.uuid4()))
    return ctx


def build_source(build: Build, source: SourceRef, root: Path, bus: EventBus, opts: BuildOptions,
                 run_uuid: str | None = None) -> list[Artifact]:
    """Run one source of one build block; returns the artifacts (builder's, then post-processors')."""
    if source.type not in DRIVERS and source.type not in MACHINELESS:
        raise FactoryError(f"factory cannot build source type {source.type!r} yet",
                           hint="supported: " + ", ".join([*DRIVERS, *MACHINELESS]),
                           where=getattr(source, "where", None))
    refuse_unbuildable(build, source)
    if DRIVERS.get(source.type) == "virtualbox":
        return build_virtualbox(build, source, root, bus, opts, run_uuid)
    ctx = context_for(build, source, root, bus, opts, run_uuid)
    if source.type in MACHINELESS:
        run_steps(null.steps(ctx), ctx, on_failure=lambda c, exc: finish.error_cleanup_provisioner(c))
        return ctx.artifacts
    ctx.driver = driver(opts.driver or DRIVERS[source.type])
    ctx.cleanups.push(f"release the {ctx.driver.name} driver", ctx.driver.cleanup)  # a backstop: run last
    checkpoint.setup(ctx, opts.checkpoint, opts.resume, opts.resume_command)
    vm.check_before_start(ctx)  # a typo in a key name must not cost a VM boot to find
    if ctx.source_type != "libvirt":
        unattended.check_vars(ctx)

    def on_failure(c: BuildContext, exc: BaseException) -> None:
        if not isinstance(exc, KeyboardInterrupt) and c.on_error is not OnError.ABORT:
            finish.error_cleanup_provisioner(c)
        vm.keep_diagnostics(c, exc)

    with vm.screendump_on_sigusr1(ctx):
        run_steps(steps_for(ctx), ctx, on_failure=on_failure)
    return ctx.artifacts


def build_virtualbox(build: Build, source: SourceRef, root: Path, bus: EventBus, opts: BuildOptions,
                     run_uuid: str | None = None) -> list[Artifact]:
    """A virtualbox-iso/-ovf/-vm source: its own step list (factory.steps.vbox) on the VirtualBox driver."""
    from factory.steps import vbox

    ctx = vbox.VBoxContext(build_name=build_name(build, source), bus=bus, on_error=opts.on_error,
                           source_type=source.type, source_name=source.name, root=root, config=source.config,
                           build=build, force=opts.force, debug=opts.debug, run_uuid=run_uuid or str(uuid.uuid4()))
    ctx.driver = driver(DRIVERS[source.type])
    ctx.cleanups.push(f"release the {ctx.driver.name} driver", ctx.driver.cleanup)

    def on_failure(c: vbox.VBoxContext, exc: BaseException) -> None:
        if not isinstance(exc, KeyboardInterrupt) and c.on_error is not OnError.ABORT:
            finish.error_cleanup_provisioner(c)

    run_steps(vbox.steps(ctx), ctx, on_failure=on_failure)
    return ctx.artifacts
