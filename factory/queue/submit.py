"""`factory submit`: validate locally, pack, store, defer one job on the queue the template's sources need."""

from __future__ import annotations

import hashlib
import json
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from factory.errors import FactoryError
from factory.queue import blobs, bundle, db, routing
from factory.queue.app import make_app

if TYPE_CHECKING:
    from factory.template import Project


@dataclass(frozen=True)
class Submitted:
    job_id: int
    queue: str
    bundle: str
    duplicate: bool = False     # the same template+vars was already waiting: job_id is that job


def queueing_lock(bundle_key: str, vars: list[str], only: list[str], except_: list[str]) -> str:
    """One pending job per template content + variables + selection."""
    doc = {"bundle": bundle_key, "vars": sorted(vars), "only": sorted(only), "except": sorted(except_)}
    return "factory:" + hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]


def check_buildable(project: Project, template: Path) -> None:
    """What `factory build` refuses before starting a VM, refused here before anything is queued."""
    from factory.steps.plan import refuse_unbuildable

    pairs = [(b, s) for b in project.builds for s in b.sources]
    if not pairs:
        raise FactoryError(f"{template}: nothing to build (no build block, or -only/-except excluded every source)")
    for b, source in pairs:
        refuse_unbuildable(b, source)


def submit(url: str, project: Project, template: Path, *, vars: list[str], var_files: list[Path],
           only: list[str], except_: list[str]) -> Submitted:
    """Pack and defer a loaded (validated) template; a duplicate of a waiting job is not queued again."""
    from procrastinate.exceptions import AlreadyEnqueued

    db.require_schema(url)
    check_buildable(project, template)
    queue = routing.queue_for(project.builds)
    store = blobs.open_store(url)
    with tempfile.TemporaryDirectory(prefix="factory-submit-") as tmp:
        tar = Path(tmp, "bundle.tar")
        manifest = bundle.pack(template, var_files, project.variables, tar)
        key = store.put(tar)
    lock = queueing_lock(key, vars, only, except_)
    args: dict[str, Any] = {"bundle": key, "template": manifest.template, "vars": vars, "var_files": manifest.var_files,
            "inputs": manifest.inputs, "only": only, "except_": except_, "name": template.name,
            "submitter": socket.gethostname()}
    app = make_app(url, sync=True)
    with app.open():
        try:
            job_id = app.configure_task(name=db.TASK, queue=queue, queueing_lock=lock).defer(**args)
        except AlreadyEnqueued:
            return Submitted(_waiting_job(url, lock), queue, key, duplicate=True)
    return Submitted(job_id, queue, key)


def _waiting_job(url: str, lock: str) -> int:
    with db.connection(url) as conn:
        row = conn.execute("SELECT id FROM procrastinate_jobs WHERE queueing_lock = %s AND status = 'todo' "
                           "ORDER BY id LIMIT 1", (lock,)).fetchone()
    return int(row[0]) if row else 0  # type: ignore[call-overload]
