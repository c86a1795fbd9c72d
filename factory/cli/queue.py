"""Scale-out commands: `factory queue init`, `factory submit`, `factory worker`, `factory jobs …` (a PostgreSQL job
queue, Procrastinate; FACTORY_DATABASE_URL or --db names it)."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from pathlib import Path
from typing import Annotated

import typer

from factory import paths, ui
from factory.cli import app
from factory.cli.options import ExceptOpt, OnlyOpt, TemplateArg, VarFileOpt, VarOpt, load_template, split
from factory.errors import FactoryError

DbOpt = Annotated[str | None, typer.Option("--db", help="PostgreSQL URL of the queue (default: "
                                           "FACTORY_DATABASE_URL).", show_default=False)]
JobArg = Annotated[int, typer.Argument(help="Job id (from `factory jobs list`).")]

queue_app = typer.Typer(help="The job queue's database (PostgreSQL, Procrastinate's schema).", no_args_is_help=True)
jobs_app = typer.Typer(help="Queued builds: list, show, cancel, logs, retry, fetch; the workers.", no_args_is_help=True)
app.add_typer(queue_app, name="queue")
app.add_typer(jobs_app, name="jobs")


@queue_app.command("init")
def queue_init(db: DbOpt = None) -> None:
    """Apply the queue schema (Procrastinate's tables and factory's) to the database; safe to run again."""
    from factory.queue import db as qdb

    url = qdb.database_url(db)
    if qdb.init_schema(url):
        ui.success(f"queue schema applied to {qdb.redact(url)}")
    else:
        ui.info(f"queue schema already present in {qdb.redact(url)}")


@queue_app.command("key")
def queue_key(
    key_file: Annotated[Path, typer.Argument(help="The private key: written (0600) when it does not exist, else "
                                             "read. Install it on every worker (FACTORY_QUEUE_KEY_FILE).",
                                             show_default=False)],
    db: DbOpt = None,
) -> None:
    """Create (or re-register) the queue key: submits seal secret -var values and var files to its public half,
    stored in the database; only workers holding the private file can open them."""
    from factory.queue import db as qdb
    from factory.queue import seal

    url = qdb.database_url(db)
    qdb.require_schema(url)
    if key_file.exists():
        kid, private = seal.load_private(key_file)
        public = seal.public_of(private)
        ui.info(f"using the existing queue key {key_file}")
    else:
        public = seal.generate(key_file)
        kid = seal.key_id(public)
        ui.success(f"wrote the queue's private key to {key_file} (0600): copy it to every worker")
    qdb.register_key(url, kid, public)
    ui.success(f"queue key {kid} registered in {qdb.redact(url)}: submits seal secrets to it")
    print(kid)


@app.command()
def submit(
    template: TemplateArg,
    var: VarOpt = None,
    var_file: VarFileOpt = None,
    only: OnlyOpt = None,
    except_: ExceptOpt = None,
    wait: Annotated[bool, typer.Option("--wait", help="Follow the build's log until it ends; exit 1 unless it "
                                       "succeeded.")] = False,
    db: DbOpt = None,
) -> None:
    """Validate a template here, store it with every file it reads, and queue its build for a worker."""
    from factory.queue import db as qdb
    from factory.queue.submit import submit as do_submit

    url = qdb.database_url(db)
    qdb.require_schema(url)
    project = load_template(template, var, var_file, only, except_)
    done = do_submit(url, project, template, vars=list(var or []), var_files=list(var_file or []),
                     only=split(only), except_=split(except_))
    if done.duplicate:
        ui.notice(f"the same template and variables are already queued as job {done.job_id}: not queued again")
    else:
        ui.success(f"queued job {done.job_id} on queue {done.queue} (bundle {done.bundle[:16]})")
    print(done.job_id)
    if wait:
        _follow(url, done.job_id, must_succeed=True)


@app.command()
def worker(
    queues: Annotated[str, typer.Option("--queues", help="auto (probe this host) or a comma list of kvm, tcg, "
                                        "libvirt, virtualbox; `any` (machineless builds) is always served.")
                      ] = "auto",
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Builds run at once.")] = 1,
    heartbeat: Annotated[float, typer.Option("--heartbeat", min=0.2, help="Seconds between heartbeats.")] = 5.0,
    stalled_after: Annotated[float, typer.Option("--stalled-after", min=1.0, help="A worker silent this many "
                                                 "seconds is gone: its job is retried once elsewhere.")] = 30.0,
    workdir: Annotated[Path | None, typer.Option("--workdir", help="Where builds run (default: the cache "
                                                 "dir's worker/ folder).")] = None,
    once: Annotated[bool, typer.Option("--once", help="Stop when no job is waiting.")] = False,
    db: DbOpt = None,
) -> None:
    """Take build jobs this host can run from the queue and run them (until SIGINT/SIGTERM)."""
    from factory.queue import db as qdb
    from factory.queue import routing, seal
    from factory.queue.runner import WorkerConfig
    from factory.queue.worker import Timing, run, worker_name

    url = qdb.database_url(db)
    qdb.require_schema(url)
    served, notes = routing.host_queues(queues)
    for note in notes:
        ui.info(f"probe: {note}")
    keys = seal.key_files(os.environ.get(seal.KEY_ENV, ""))
    if keys:
        ring = seal.load_keyring(keys)  # a missing or damaged key file stops the worker here, not a job later
        ui.info(f"queue key(s) {', '.join(ring)} open the jobs' sealed secrets")
    elif qdb.queue_key(url) is not None:
        ui.warn(f"{seal.KEY_ENV} is not set: jobs that carry sealed secrets will fail on this worker")
    cfg = WorkerConfig(db_url=url, name=worker_name(), workdir=workdir or paths.cache_dir("worker"),
                       key_files=tuple(keys))
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s")
    ui.success(f"worker {cfg.name} serving queues {', '.join(served)} (concurrency {concurrency})")
    asyncio.run(run(cfg, served, concurrency, Timing(heartbeat, stalled_after, min(2.0, heartbeat)), once=once))


@jobs_app.command("list")
def jobs_list(
    status: Annotated[str | None, typer.Option("--status", help="Only jobs in this state (todo, doing, "
                                               "succeeded, failed, cancelled, aborted).")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
    db: DbOpt = None,
) -> None:
    """The latest build jobs, newest first: id, state, queue, attempts, worker, template."""
    from factory.queue import db as qdb
    from factory.queue import jobs

    found = jobs.list_jobs(qdb.database_url(db), status, limit)
    if as_json:
        print(json.dumps([j.as_dict() for j in found], indent=2))
        return
    for j in found:
        print(f"{j.id:>6}  {j.status:<10} {j.queue:<10} {j.attempts:>2}  {j.worker or '-':<24} {j.name}")


@jobs_app.command("workers")
def jobs_workers(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
    db: DbOpt = None,
) -> None:
    """The workers serving the queue now: name (host:pid), queues, seconds since the last heartbeat, jobs running."""
    from factory.queue import db as qdb
    from factory.queue import jobs

    found = jobs.workers(qdb.database_url(db))
    if as_json:
        print(json.dumps(found, indent=2))
        return
    for w in found:
        print(f"{w['name']:<28} {','.join(w['queues']):<24} heartbeat {w['heartbeat_age']:>5.1f}s ago  "
              f"running {w['running']}")


@jobs_app.command("show")
def jobs_show(job: JobArg, db: DbOpt = None) -> None:
    """One job as JSON: state, queue, arguments (sealed secrets by name only), history, results."""
    from factory.queue import db as qdb
    from factory.queue import jobs

    url = qdb.database_url(db)
    data = jobs.get(url, job).as_dict()
    data["runs"] = jobs.runs(url, job)
    data["result"] = jobs.result(url, job)
    print(json.dumps(data, indent=2, default=str))


@jobs_app.command("cancel")
def jobs_cancel(job: JobArg, db: DbOpt = None) -> None:
    """Cancel a waiting job, or stop a running build (its VM is stopped and cleaned up within seconds)."""
    from factory.queue import db as qdb
    from factory.queue import jobs

    ui.success(f"job {job}: {jobs.cancel(qdb.database_url(db), job)}")


@jobs_app.command("retry")
def jobs_retry(job: JobArg, db: DbOpt = None) -> None:
    """Queue a finished job again (same bundle, variables and queue); prints the new job's id."""
    from factory.queue import db as qdb
    from factory.queue import jobs

    new = jobs.retry(qdb.database_url(db), job)
    ui.success(f"job {job} queued again as job {new}")
    print(new)


@jobs_app.command("logs")
def jobs_logs(
    job: JobArg,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing until the job ends.")] = False,
    machine_readable: Annotated[bool, typer.Option("--machine-readable", help="The events as JSON lines.")
                                ] = False,
    db: DbOpt = None,
) -> None:
    """A job's build log (the events its worker streamed), as `factory build` prints it."""
    from factory.queue import db as qdb

    _follow(qdb.database_url(db), job, must_succeed=False, follow=follow, machine_readable=machine_readable)


@jobs_app.command("fetch")
def jobs_fetch(
    job: JobArg,
    out: Annotated[Path, typer.Option("--out", help="Folder to write the artifacts into.")] = Path("."),
    db: DbOpt = None,
) -> None:
    """Download a succeeded job's artifacts (the files its build made, under their paths)."""
    from factory.queue import db as qdb
    from factory.queue import jobs

    for path in jobs.fetch(qdb.database_url(db), job, out):
        ui.info(f"--> {path}")


def _follow(url: str, job_id: int, *, must_succeed: bool, follow: bool = True, machine_readable: bool = False
            ) -> None:
    from factory.build import HumanMonitor
    from factory.queue import events, jobs

    jobs.get(url, job_id)  # a wrong id fails here, with its message
    monitor = HumanMonitor()
    state = {"status": ""}

    def finished() -> bool:
        try:
            state["status"] = jobs.get(url, job_id).status
        except FactoryError:  # the database is restarting: keep following
            time.sleep(1)
            return False
        return state["status"] in jobs.TERMINAL

    for data in events.follow(url, job_id, finished=finished if follow else None):
        if machine_readable:
            print(json.dumps(data, sort_keys=True), flush=True)
        elif (ev := events.to_event(data)) is not None:
            monitor(ev)
    if must_succeed:
        if state["status"] != "succeeded":
            raise FactoryError(f"job {job_id} {state['status'] or 'did not finish'}",
                               hint=f"`factory jobs logs {job_id}` shows its whole log")
        ui.success(f"job {job_id} succeeded; `factory jobs fetch {job_id}` downloads its artifacts")
