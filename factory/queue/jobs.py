"""What `factory jobs` reads and changes: the jobs of the build task, their history, results and artifacts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from factory.errors import FactoryError
from factory.queue import blobs, db
from factory.queue.app import make_app

TERMINAL = ("succeeded", "failed", "cancelled", "aborted")


@dataclass(frozen=True)
class Job:
    id: int
    status: str
    queue: str
    attempts: int
    args: dict[str, Any]
    worker: str
    abort_requested: bool
    history: list[tuple[str, datetime]]   # procrastinate's events: deferred, started, succeeded ...

    @property
    def name(self) -> str:
        return str(self.args.get("name", ""))

    def at(self, kind: str, last: bool = False) -> datetime | None:
        times = [t for k, t in self.history if k == kind]
        return (times[-1] if last else times[0]) if times else None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "queue": self.queue, "attempts": self.attempts,
                "template": self.name, "worker": self.worker, "abort_requested": self.abort_requested,
                "args": _shown(self.args),
                "history": [[k, t.isoformat()] for k, t in self.history]}


def _masked(args: dict[str, Any]) -> list[str]:
    """-var values as stored: the plain ones as given, the sealed ones by name only."""
    return [str(v) for v in args.get("vars") or []] + [f"{v['name']}=<sealed>" for v in args.get("secret_vars") or []]


def _shown(args: dict[str, Any]) -> dict[str, Any]:
    """A job's arguments for `jobs show`: sealed values replaced by a marker (they are ciphertext, and long)."""
    files = [f if isinstance(f, str) else f"{f['name']} <sealed>" for f in args.get("var_files") or []]
    kept = {k: v for k, v in args.items() if k not in ("vars", "secret_vars", "var_files")}
    return kept | {"vars": _masked(args), "var_files": files}


_SELECT = ("SELECT j.id, j.status::text, j.queue_name, j.attempts, j.args, coalesce((SELECT r.worker FROM "
           "factory_job_runs r WHERE r.job_id = j.id ORDER BY r.attempt DESC LIMIT 1), ''), j.abort_requested, "
           "coalesce((SELECT array_agg(ARRAY[e.type::text, e.at::text] ORDER BY e.at, e.id) "
           "FROM procrastinate_events e WHERE e.job_id = j.id), '{}') "
           "FROM procrastinate_jobs j ")


def _job(row: Any) -> Job:
    history = [(k, datetime.fromisoformat(t)) for k, t in row[7]]
    return Job(int(row[0]), row[1], row[2], int(row[3]), dict(row[4]), row[5], bool(row[6]), history)


def list_jobs(url: str, status: str | None = None, limit: int = 50) -> list[Job]:
    db.require_schema(url)
    with db.connection(url) as conn:
        rows = conn.execute(_SELECT + "WHERE j.task_name = %s AND (%s::text IS NULL OR j.status::text = %s) "
                            "ORDER BY j.id DESC LIMIT %s", (db.TASK, status, status, limit)).fetchall()
    return [_job(r) for r in rows]


def get(url: str, job_id: int) -> Job:
    db.require_schema(url)
    with db.connection(url) as conn:
        row = conn.execute(_SELECT + "WHERE j.id = %s AND j.task_name = %s", (job_id, db.TASK)).fetchone()
    if row is None:
        raise FactoryError(f"no build job {job_id} in {db.redact(url)}", hint="`factory jobs list` shows the jobs")
    return _job(row)


def workers(url: str) -> list[dict[str, Any]]:
    """The workers registered now: name (host:pid), queues, start, seconds since the last heartbeat, running jobs."""
    db.require_schema(url)
    with db.connection(url) as conn:
        rows = conn.execute(
            "SELECT f.name, f.queues, f.started, extract(epoch FROM now() - w.last_heartbeat), "
            "(SELECT count(*) FROM procrastinate_jobs j WHERE j.worker_id = w.id AND j.status = 'doing') "
            "FROM procrastinate_workers w JOIN factory_workers f ON f.worker_id = w.id ORDER BY f.started").fetchall()
    found: list[tuple[Any, ...]] = rows
    return [{"name": n, "queues": list(q), "started": s.isoformat(), "heartbeat_age": round(float(a), 1),
             "running": int(r)} for n, q, s, a, r in found]


def runs(url: str, job_id: int) -> list[dict[str, Any]]:
    """Each attempt of a job: its worker, start and end times, outcome."""
    with db.connection(url) as conn:
        rows = conn.execute("SELECT attempt, worker, started, ended, outcome FROM factory_job_runs WHERE job_id = %s "
                            "ORDER BY attempt", (job_id,)).fetchall()
    return [{"attempt": int(a) + 1, "worker": w, "started": s, "ended": e, "outcome": o}  # type: ignore[call-overload]
            for a, w, s, e, o in rows]


def result(url: str, job_id: int) -> dict[str, Any] | None:
    with db.connection(url) as conn:
        row = conn.execute("SELECT manifest FROM factory_job_results WHERE job_id = %s", (job_id,)).fetchone()
    return dict(row[0]) if row else None  # type: ignore[call-overload]


def cancel(url: str, job_id: int) -> str:
    """Cancel a waiting job, or ask the worker running it to stop the build; what happened."""
    job = get(url, job_id)
    if job.status in TERMINAL:
        raise FactoryError(f"job {job_id} is already {job.status}")
    app = make_app(url, sync=True)
    with app.open():
        if not app.job_manager.cancel_job_by_id(job_id, abort=True):
            raise FactoryError(f"job {job_id} could not be cancelled (it finished meanwhile?)")
    return "cancelled" if job.status == "todo" else "stop requested (the worker stops the build and cleans up)"


def retry(url: str, job_id: int) -> int:
    """Queue a finished (failed, cancelled…) job again with the same bundle, variables and queue; the new job id."""
    job = get(url, job_id)
    if job.status not in TERMINAL:
        raise FactoryError(f"job {job_id} is {job.status}, not finished", hint="cancel it first to run it again")
    app = make_app(url, sync=True)
    with app.open():
        return int(app.configure_task(name=db.TASK, queue=job.queue).defer(**job.args))


def fetch(url: str, job_id: int, out: Path, store_url: str | None = None) -> list[Path]:
    """Download a finished job's files under out (their paths as the build made them)."""
    manifest = result(url, job_id)
    if manifest is None:
        raise FactoryError(f"job {job_id} has no results", hint="only a succeeded job has artifacts")
    store = blobs.open_store(url, store_url)
    written = []
    for f in manifest["files"]:
        dest = (out / f["path"]).resolve()
        if not dest.is_relative_to(out.resolve()):
            raise FactoryError(f"job {job_id}: refusing artifact path {f['path']!r} outside {out}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        store.get(f["sha256"], dest)
        written.append(dest)
    return written
