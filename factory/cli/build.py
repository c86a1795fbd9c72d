"""`factory build TEMPLATE`: run every selected source of every build block (Packer's `packer build`)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated

import typer

from factory import ui
from factory.build import EventBus, HumanMonitor, JsonMonitor, OnError, sigterm_as_interrupt
from factory.cli import app
from factory.cli.options import ExceptOpt, OnlyOpt, TemplateArg, VarFileOpt, VarOpt, load_template
from factory.errors import FactoryError


@app.command()
def build(
    template: TemplateArg,
    var: VarOpt = None,
    var_file: VarFileOpt = None,
    only: OnlyOpt = None,
    except_: ExceptOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty output directory.")] = False,
    on_error: Annotated[OnError, typer.Option("--on-error", help="cleanup (default), abort (leave the VM and "
                                              "files for inspection) or run-cleanup-provisioner.")
                        ] = OnError.CLEANUP,
    debug: Annotated[bool, typer.Option("--debug", help="Keep the ephemeral SSH key, show the serial console as "
                                        "it comes, show tracebacks.")] = False,
    machine_readable: Annotated[bool, typer.Option("--machine-readable",
                                                   help="Emit build events as JSON lines on stdout.")] = False,
) -> None:
    """Build machine images from a Packer HCL2 template."""
    from factory.steps.plan import BuildOptions, build_source, refuse_unbuildable

    project = load_template(template, var, var_file, only, except_)
    bus = EventBus()
    bus.subscribe(JsonMonitor() if machine_readable else HumanMonitor(show_serial=debug))
    opts = BuildOptions(force=force, on_error=on_error, debug=debug)
    run_uuid = str(uuid.uuid4())
    pairs = [(b, s) for b in project.builds for s in b.sources]
    if not pairs:
        raise FactoryError(f"{template}: nothing to build (no build block, or -only/-except excluded every source)")
    for b, source in pairs:  # every build's refusal before any build starts a VM
        refuse_unbuildable(b, source)
    failures: list[str] = []
    artifacts = []
    with sigterm_as_interrupt():
        for b, source in pairs:
            try:
                # Relative paths in a template (output_directory, iso_url, http_directory ...) resolve against the
                # current directory, as in Packer; templates use path.root to be explicit.
                artifacts += build_source(b, source, Path.cwd(), bus, opts, run_uuid)
            except FactoryError as exc:
                failures.append(f"{source.full_name}: {exc.render()}")
    if failures:
        raise FactoryError("build(s) failed:\n" + "\n".join(failures))
    if not machine_readable:
        ui.success("==> Builds finished. The artifacts of successful builds are:")
        for art in artifacts:
            ui.info(f"--> {art.describe()}")

