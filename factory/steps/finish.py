"""Steps after the VM runs: provisioning, compaction, the output rename and the post-processor chains."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from factory.artifact.model import Artifact
from factory.build import EventKind, Step
from factory.errors import FactoryError
from factory.steps.context import BuildContext
from factory.steps.prepare import output_files, publish_output


def _spec_digest(spec: Any, full_name: str, root: Path) -> Mapping[str, Any]:
    """A provisioner as its stage sees it: type, options, and the files its options say it reads (by content)."""
    import dataclasses

    from factory.options import read_paths

    config = spec.config_for(full_name)
    fields = {f.name: getattr(config, f.name) for f in dataclasses.fields(config)} if dataclasses.is_dataclass(
        config) else {"repr": repr(config)}
    reads = {name: [root / Path(p).expanduser() for p in found] for name, found in read_paths(config).items()}
    return {"type": spec.type, "config": fields, "reads": reads}


def run_provisioner(ctx: BuildContext, spec: Any, index: int) -> None:
    """One provisioner with Packer's meta-arguments (pause_before, max_retries, timeout: H4c's run_with_meta)."""
    from factory.provision import ProvisionContext, run_with_meta

    label = spec.name or spec.type
    env = {"PACKER_HTTP_ADDR": f"{ctx.http.guest_host}:{ctx.http.port}"} if ctx.http is not None else {}
    pctx = ProvisionContext(build_name=ctx.build_name, source_name=ctx.source_name, source_type=ctx.source_type,
                            emit=lambda line: ctx.output(label, line), extra_env=env, root=ctx.root)
    ctx.say(f"provisioning with {spec.type}" + (f" ({spec.name})" if spec.name else "")
            + (f" [provisioner {index}]" if index >= 0 else ""))
    run_with_meta(spec, ctx.comm, pctx)


HOST_SIDE_PROVISIONERS = frozenset({"shell-local", "windows-shell-local"})


class Provision(Step[BuildContext]):
    """One provisioner: a step of its own, so each one's result can be a checkpoint to resume from."""

    resumable = checkpoint = True

    def __init__(self, spec: Any, index: int, count: int) -> None:
        self.spec, self.index = spec, index
        self.name = f"provision-{index + 1}"
        label = spec.type + (f" ({spec.name})" if spec.name else "")
        self.title = f"Provisioning with {label} [{index + 1}/{count}]"
        # What it leaves on the build host would be missing if a checkpoint after it were reused.
        self.host_effects = spec.type in HOST_SIDE_PROVISIONERS or (
            spec.type == "file" and getattr(spec.config, "direction", "upload") == "download")

    def inputs(self, ctx: BuildContext) -> Mapping[str, Any]:
        return {"provisioner": _spec_digest(self.spec, f"{ctx.source_type}.{ctx.source_name}", ctx.root)}

    def run(self, ctx: BuildContext) -> None:
        run_provisioner(ctx, self.spec, self.index)


def provision_steps(ctx: BuildContext) -> list[Step[BuildContext]]:
    """A step per provisioner that applies to this source, in template order."""
    specs = _applicable(ctx)
    return [Provision(spec, i, len(specs)) for i, spec in enumerate(specs)]


def _applicable(ctx: BuildContext) -> list[Any]:
    full = f"{ctx.source_type}.{ctx.source_name}"
    return [p for p in (ctx.build.provisioners if ctx.build else []) if p.applies_to(full)]


def error_cleanup_provisioner(ctx: BuildContext) -> None:
    spec = ctx.build.error_cleanup_provisioner if ctx.build else None
    if spec is None or ctx.comm is None:
        return
    ctx.say(f"running the error-cleanup-provisioner ({spec.type})")
    try:
        run_provisioner(ctx, spec, -1)
    except FactoryError as exc:
        ctx.emit(EventKind.NOTICE, f"error-cleanup-provisioner failed: {exc.message}")


class Compact(Step[BuildContext]):
    """The final disk, written by the driver without unused space (optionally compressed); or the disk as is."""

    name, title = "compact", "Writing the final disk"

    def options(self, ctx: BuildContext) -> Mapping[str, Any]:
        s = ctx.s
        return {"format": s.format.value, "skip_compaction": s.skips_compaction, "compress": s.disk_compression,
                "convert_args": list(s.qemu_img_args.convert)}

    def run(self, ctx: BuildContext) -> None:
        s = ctx.s
        assert ctx.disk is not None and ctx.staging is not None and ctx.driver is not None
        final = ctx.staging / ctx.vm_name
        if s.skips_compaction:
            os.replace(ctx.disk, final)
        else:
            self._compact(ctx, final)
            ctx.disk.unlink()
        ctx.disk = final
        ctx.say(f"disk: {final.name} ({final.stat().st_size / 1048576:.1f} MiB on disk)")

    @staticmethod
    def _compact(ctx: BuildContext, final: Path) -> None:
        from factory.steps.checkpoint import active

        assert ctx.disk is not None and ctx.driver is not None
        s = ctx.s
        cps = active(ctx)
        pre = cps.precompaction() if cps is not None else None
        started = time.monotonic()
        why = pre.finish(ctx.disk, final) if pre is not None else None
        if why == "":
            ctx.say(f"disk: the checkpoints' layers were compacted while the machine ran; its last layer went in "
                    f"{time.monotonic() - started:.1f}s")
            return
        if why:
            ctx.say(f"disk: compacting every layer: the background compaction {why}")
        ctx.driver.compact_disk(ctx.disk, final, s.format, compress=s.disk_compression, args=s.qemu_img_args)


class Finalize(Step[BuildContext]):
    """Rename the staging directory onto output_directory: the artifact appears whole or not at all."""

    name, title = "finalize", "Publishing the artifact"

    def options(self, ctx: BuildContext) -> Mapping[str, Any]:
        return {"output_directory": str(ctx.output_directory), "efi_drop_efivars": ctx.s.efi_drop_efivars}

    def run(self, ctx: BuildContext) -> None:
        s = ctx.s
        assert ctx.staging is not None and ctx.disk is not None
        out = ctx.output_directory
        if s.efi_drop_efivars and ctx.efi_vars is not None:
            ctx.efi_vars.unlink(missing_ok=True)
        publish_output(ctx)
        disk = out / ctx.disk.name
        files = output_files(out)
        ctx.artifact = Artifact(builder_id=f"factory.{ctx.source_type}", build_name=ctx.build_name,
                                builder_type=ctx.source_type, files=files, disk=disk,
                                disk_format=s.format, hardware=ctx.hardware, vm_name=ctx.vm_name,
                                state={"accelerator": ctx.accel, "stage_id": ctx.stage_ids.get("compact", "")})
        ctx.artifacts.append(ctx.artifact)
        ctx.emit(EventKind.ARTIFACT, "artifact: " + ", ".join(str(f) for f in files),
                 data=ctx.artifact.event_data())


class PostProcess(Step[BuildContext]):
    name, title = "post-processors", "Running post-processors"

    def applies(self, ctx: BuildContext) -> bool:
        return bool(ctx.build and ctx.build.post_processors)

    def run(self, ctx: BuildContext) -> None:
        chains = ctx.build.post_processors if ctx.build else []
        full = f"{ctx.source_type}.{ctx.source_name}"
        chains = [[p for p in chain if p.applies_to(full)] for chain in chains]
        chains = [c for c in chains if c]
        if not chains or ctx.artifact is None:
            return
        from factory.post import PostContext, run_chains

        pctx = PostContext(build_name=ctx.build_name, source_type=ctx.source_type, source_name=ctx.source_name,
                           run_uuid=ctx.run_uuid, force=ctx.force, emit=lambda line: ctx.output("post", line),
                           root=ctx.root)
        results = run_chains(chains, ctx.artifact, pctx)
        for art in results:
            if art is not ctx.artifact:
                ctx.artifacts.append(art)
                ctx.emit(EventKind.ARTIFACT, "artifact: " + art.describe(), data=art.event_data())
