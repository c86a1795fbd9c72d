"""`factory build TEMPLATE`: run every selected source of every build block (Packer's `packer build`), in
parallel by default as Packer does (`-parallel-builds=N`), with the build's events rendered for people, as
Packer's machine-readable lines, as JSON lines, as Prometheus metrics and as an HTML report."""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer

from factory import ui
from factory.build import EventBus, HumanMonitor, JsonMonitor, OnError, sigterm_as_interrupt
from factory.checkpoints import DEFAULT_MODE, CheckpointMode
from factory.cli import app
from factory.cli.options import ExceptOpt, OnlyOpt, TemplateArg, VarFileOpt, VarOpt, load_template, split
from factory.cli.parallel import Job, run_jobs, selected_pairs
from factory.errors import FactoryError
from factory.events import Event, EventKind
from factory.fsutil import check_output_file
from factory.schema.qemu import QemuSource
from factory.streams.packer import MachineReadableMonitor
from factory.streams.summary import Results, print_step_tables


@app.command()
def build(
    template: TemplateArg,
    var: VarOpt = None,
    var_file: VarFileOpt = None,
    only: OnlyOpt = None,
    except_: ExceptOpt = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty output directory that factory "
                                        "created (it holds .factory-output).")] = False,
    on_error: Annotated[OnError, typer.Option("--on-error", help="cleanup (default), abort (leave the VM and "
                                              "files for inspection), ask (clean up, abort or retry the failed "
                                              "step) or run-cleanup-provisioner (run the error-cleanup-provisioner, "
                                              "then as abort).")] = OnError.CLEANUP,
    checkpoint: Annotated[CheckpointMode, typer.Option("--checkpoint", help="What to keep after boot-to-SSH and "
                                                       "after each provisioner: vm (default: the disk and the "
                                                       "running VM's state, so a resume needs no boot), disk (a "
                                                       "resumed guest boots again), none.")] = DEFAULT_MODE,
    resume: Annotated[str, typer.Option("--resume", metavar="BOOL", help="Reuse the longest stored checkpoint "
                                        "chain that matches this build (default true); -resume=false starts "
                                        "cold.")] = "true",
    force_rebuild: Annotated[bool, typer.Option("--force-rebuild", help="Start cold (as -resume=false): the new "
                                                "checkpoints replace the stored ones that no build uses.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Keep the ephemeral SSH key, show the serial console as "
                                        "it comes, show tracebacks; builds run one at a time.")] = False,
    machine_readable: Annotated[bool, typer.Option(
        "--machine-readable", help="Packer's machine-readable output on stdout: `timestamp,target,type,data...` "
        "lines (commas in data as %!(PACKER_COMMA)).")] = False,
    events: Annotated[str | None, typer.Option(
        "--events", metavar="FILE|-", help="Write every build event (steps, output, progress of downloads and "
        "exports, artifacts) as one JSON object per line to FILE, or to stdout with -.")] = None,
    metrics_file: Annotated[Path | None, typer.Option(
        "--metrics-file", help="Write Prometheus metrics (text exposition format) to this file, atomically, "
        "every few seconds and at the end.")] = None,
    metrics_port: Annotated[int | None, typer.Option(
        "--metrics-port", min=1, max=65535, help="Serve Prometheus metrics on http://127.0.0.1:PORT/metrics "
        "while the builds run.")] = None,
    report: Annotated[Path | None, typer.Option(
        "--report", help="Write one self-contained HTML page: step timeline, screenshots, the serial log's "
        "tail and the artifacts of every build.")] = None,
    parallel_builds: Annotated[int, typer.Option(
        "--parallel-builds", min=0, help="How many builds run at once; 1 runs them one after another, 0 (the "
        "default, as in Packer) means no limit.")] = 0,
    fail_fast: Annotated[bool, typer.Option(
        "--fail-fast", help="When one build fails, stop the others (they clean up) and start no more.")] = False,
) -> None:
    """Build machine images from a Packer HCL2 template."""
    from factory.queue.seal import take_secret_vars
    from factory.steps.plan import BuildOptions, build_name, refuse_unbuildable

    var = [*(var or []), *take_secret_vars()]  # a queue worker's sealed -var values, opened (see queue/seal.py)
    if machine_readable and events == "-":
        raise FactoryError("-machine-readable and --events - both write to stdout",
                           hint="write the JSON events to a file: --events FILE")
    project = load_template(template, var, var_file, only, except_)
    pairs = selected_pairs(project)
    if not pairs:
        raise FactoryError(f"{template}: nothing to build (no build block, or -only/-except excluded every source)")
    for b, source in pairs:  # every build's refusal before any build starts a VM
        refuse_unbuildable(b, source)
    opts = BuildOptions(force=force, on_error=on_error, debug=debug, checkpoint=checkpoint,
                        resume=_bool(resume, "-resume") and not force_rebuild, resume_command=resume_command())
    run_uuid = str(uuid.uuid4())
    # Relative paths in a template (output_directory, iso_url, http_directory ...) resolve against the current
    # directory, as in Packer; templates use path.root to be explicit.
    jobs = [Job(build_name(b, s), template, var or [], var_file or [], split(only), split(except_), i, Path.cwd(),
                opts, run_uuid) for i, (b, s) in enumerate(pairs)]
    limit = 1 if debug else parallel_builds
    if limit != 1 and len(jobs) > 1:
        _refuse_shared_outputs(pairs, opts)
    with _monitors(machine_readable, debug, events, metrics_file, metrics_port, report) as (bus, end):
        if debug and len(jobs) > 1 and parallel_builds != 1:
            bus.emit(Event(EventKind.MESSAGE, "", "Debug mode enabled. Builds will not be parallelized."))
        failures = _run(jobs, pairs, bus, limit, fail_fast, end)
    if failures:
        raise FactoryError("build(s) failed:\n" + "\n".join(f"{name}: {err}" for name, err in failures.items()))


def _refuse_shared_outputs(pairs: list[tuple[Any, Any]], opts: Any) -> None:
    """Builds that run at once must not publish to the same output directory (the last rename would win)."""
    from factory.steps.plan import context_for

    seen: dict[Path, str] = {}
    for b, source in pairs:
        if not isinstance(source.config, QemuSource):
            continue
        ctx = context_for(b, source, Path.cwd(), EventBus(), opts)
        out = ctx.output_directory.resolve()
        if out in seen:
            raise FactoryError(f"builds {seen[out]} and {ctx.build_name} both write {out}: run at the same time, "
                               "one would replace the other's output", where=getattr(source, "where", None),
                               hint="give each source its own output_directory (e.g. \"output-${source.name}\"), "
                               "or run them one after another with -parallel-builds=1")
        seen[out] = ctx.build_name


def _run(jobs: list[Job], pairs: list[tuple[Any, Any]], bus: EventBus, limit: int, fail_fast: bool,
         end: dict[str, bool]) -> dict[str, str]:
    """Run the builds (in this process one at a time, else each in its own process); their errors by name."""
    with sigterm_as_interrupt():
        if limit == 1 or len(jobs) == 1:
            return _run_here(jobs, pairs, bus, fail_fast)
        try:
            return run_jobs(jobs, bus, limit, fail_fast)
        except KeyboardInterrupt:
            end["interrupted"] = True
            raise


def _run_here(jobs: list[Job], pairs: list[tuple[Any, Any]], bus: EventBus, fail_fast: bool) -> dict[str, str]:
    from factory.steps.plan import build_source

    failures: dict[str, str] = {}
    ended: set[str] = set()
    bus.subscribe(lambda ev: ended.add(ev.build) if ev.kind in (EventKind.BUILD_FINISHED,
                                                                  EventKind.BUILD_FAILED) else None)
    for job, (b, source) in zip(jobs, pairs, strict=True):
        if failures and fail_fast:
            failures[job.name] = "not started: another build failed (-fail-fast)"
            bus.emit(Event(EventKind.BUILD_FAILED, job.name, failures[job.name]))
            continue
        try:
            build_source(b, source, job.root, bus, job.opts, job.run_uuid)
        except FactoryError as exc:
            failures[job.name] = exc.render()
            if job.name not in ended:  # refused before its steps ran
                bus.emit(Event(EventKind.BUILD_FAILED, job.name, exc.message))
    return failures


@contextlib.contextmanager
def _monitors(machine_readable: bool, debug: bool, events: str | None, metrics_file: Path | None,
              metrics_port: int | None, report: Path | None) -> Iterator[tuple[EventBus, dict[str, bool]]]:
    """The bus and its monitors for one run; at the end (also after a failure or Ctrl-C) the summary, the step
    tables, the last metrics and the report."""
    bus = EventBus()
    results = Results()
    bus.subscribe(results)
    packer = MachineReadableMonitor() if machine_readable else None
    bus.subscribe(packer or HumanMonitor(show_serial=debug))
    end = {"interrupted": False}
    started = time.monotonic()
    if report is not None:
        _check_report(report)
    with contextlib.ExitStack() as stack:
        if events:
            bus.subscribe(JsonMonitor(stack.enter_context(_event_stream(events))))
        if metrics_file or metrics_port:
            from factory.streams.metrics import Metrics

            metrics = stack.enter_context(Metrics(metrics_file, metrics_port))
            bus.subscribe(metrics)
        try:
            yield bus, end
        except KeyboardInterrupt:
            end["interrupted"] = True
            raise
        finally:
            if packer is not None:
                packer.summary(results, time.monotonic() - started, end["interrupted"])
            else:
                _human_summary(results, end["interrupted"])
            if report is not None:
                from factory.streams.report import write_report

                try:
                    write_report(report, results)
                except OSError as exc:
                    raise FactoryError(f"--report {report}: cannot write: {exc.strerror or exc}",
                                       hint="the builds ran: their artifacts and --events are unaffected") from exc


def _human_summary(results: Results, interrupted: bool) -> None:
    print_step_tables(results)
    if interrupted:
        return
    done = [r for r in results.succeeded() if r.artifacts]
    if done:
        ui.success("==> Builds finished. The artifacts of successful builds are:")
        for rec in done:
            for art in rec.artifacts:
                ui.info(f"--> {rec.name}: {art.get('string', '')}")


def _check_report(report: Path) -> None:
    """Refuse a --report path that could not be written, before any build starts (the page is written last)."""
    check_output_file(report, {}, option="--report", example="report.html")
    folder = next(p for p in (report.absolute().parent, *report.absolute().parent.parents) if p.exists())
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        raise FactoryError(f"--report {report}: cannot write in {folder}",
                           hint="choose a path in a folder you can write to")


@contextlib.contextmanager
def _event_stream(target: str) -> Iterator[TextIO]:
    if target == "-":
        yield sys.stdout
        return
    try:
        fh = open(target, "w", encoding="utf-8", buffering=1)  # noqa: SIM115 (closed below, after the run)
    except OSError as exc:
        raise FactoryError(f"--events {target}: cannot write: {exc.strerror}") from exc
    with fh:
        yield fh


def _bool(value: str, option: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "t", "yes"):
        return True
    if lowered in ("false", "0", "f", "no"):
        return False
    raise FactoryError(f"{option}={value}: not a boolean", hint=f"{option}=true or {option}=false")


def resume_command(argv: list[str] | None = None) -> str:
    """This command line as the one that resumes it: without what forces a cold start."""
    args = list(sys.argv[1:] if argv is None else argv)
    kept = [a for a in args if a.lstrip("-").split("=", 1)[0] not in ("force-rebuild", "resume")]
    return "factory " + shlex.join(kept)
