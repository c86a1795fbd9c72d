"""`factory worker`: a Procrastinate worker that outlives database restarts and recovers stalled jobs.

Procrastinate's worker stops when a side task (its heartbeat) fails, and a job whose status cannot be written is
lost. A build host must ride out a database restart instead, so this worker keeps its heartbeat going (and
registers again if it was pruned meanwhile), retries fetching, and retries writing a finished job's status until
the database answers. Every worker also looks for stalled jobs (their worker's heartbeat stopped, e.g. it was
SIGKILLed) and retries each once; a second stall fails the job.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass
from typing import Any

from procrastinate import worker as pworker

from factory.events import EventKind
from factory.queue import db
from factory.queue.app import make_app
from factory.queue.events import EventSink
from factory.queue.runner import WorkerConfig

log = logging.getLogger("factory.queue.worker")
MAX_STALL_RETRIES = 1


@dataclass(frozen=True)
class Timing:
    heartbeat: float = 5.0       # seconds between heartbeats
    stalled_after: float = 30.0  # a worker silent this long is gone: its jobs are retried
    poll: float = 2.0            # job polling, besides LISTEN/NOTIFY


def _retryable(exc: BaseException) -> bool:
    import psycopg
    from procrastinate.exceptions import ConnectorException

    return isinstance(exc, ConnectorException | psycopg.Error | OSError)


class ResilientWorker(pworker.Worker):
    """Procrastinate's worker, made to survive database outages (overrides of its private loop methods, pinned
    to procrastinate 3.x) and to retry stalled jobs."""

    def __init__(self, db_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.db_url = db_url

    async def _update_heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.update_heartbeat_interval)
            try:
                row = await self.app.connector.execute_query_one_async(
                    query="SELECT count(*) AS n FROM procrastinate_workers WHERE id = %(id)s", id=self.worker_id)
                if not row["n"]:  # pruned while the database was away: register again
                    self.worker_id = await self.app.job_manager.register_worker()
                    await self._name_worker()
                    log.warning("worker registered again as %s", self.worker_id)
                await self.app.job_manager.update_heartbeat(self.worker_id)  # type: ignore[arg-type]
            except Exception as exc:
                if not _retryable(exc):
                    raise
                log.warning("heartbeat failed (database away?): %s", exc)

    async def _fetch_and_process_jobs(self) -> None:
        try:
            await super()._fetch_and_process_jobs()
        except Exception as exc:
            if not _retryable(exc):
                raise
            log.warning("fetching jobs failed (database away?): %s", exc)
            await asyncio.sleep(1)

    async def _persist_job_status(self, *args: Any, **kwargs: Any) -> None:
        delay = 0.5
        while True:
            try:
                await super()._persist_job_status(*args, **kwargs)
                return
            except Exception as exc:
                if not _retryable(exc):
                    raise
                log.warning("cannot record a job's status yet (database away?): %s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _name_worker(self) -> None:
        """factory_workers: the host:pid behind Procrastinate's worker id (for `jobs list` and `jobs show`)."""
        await self.app.connector.execute_query_async(
            query="INSERT INTO factory_workers (worker_id, name, queues) VALUES (%(id)s, %(name)s, %(queues)s) "
                  "ON CONFLICT (worker_id) DO NOTHING", id=self.worker_id, name=self.worker_name,
            queues=list(self.queues or []))

    async def _run_loop(self) -> None:
        await self._name_worker()
        await super()._run_loop()

    def _start_side_tasks(self) -> list[asyncio.Task[Any]]:
        # Procrastinate's own list, with a listener that reconnects and the stalled-job check added.
        tasks = [asyncio.create_task(self._update_heartbeat(), name="update_heartbeats"),
                 asyncio.create_task(self._periodic_deferrer(), name="deferrer"),
                 asyncio.create_task(self._poll_jobs_to_abort(), name="poll_jobs_to_abort"),
                 asyncio.create_task(self._recover_stalled(), name="stalled")]
        if self.listen_notify:
            tasks.append(asyncio.create_task(self._listen(), name="listener"))
        return tasks

    async def _listen(self) -> None:
        while True:
            try:
                await self.app.job_manager.listen_for_jobs(on_notification=self._handle_notification,
                                                           queues=self.queues)
            except Exception as exc:
                if not _retryable(exc):
                    raise
                log.warning("LISTEN connection lost (database away?): %s", exc)
                await asyncio.sleep(1)

    async def _recover_stalled(self) -> None:
        while True:
            await asyncio.sleep(self.update_heartbeat_interval)
            try:
                await asyncio.to_thread(recover_stalled, self.db_url, self.stalled_worker_timeout)
            except Exception as exc:
                log.warning("stalled-job check failed: %s", exc)


def recover_stalled(url: str, stalled_after: float) -> list[tuple[int, str]]:
    """Retry (once) or fail each job whose worker stopped sending heartbeats; what was done to which job.

    The row is locked and re-checked in one transaction, so two workers looking at once act on a job once."""
    done = []
    with db.connection(url) as conn:
        stalled = conn.execute(
            "SELECT j.id FROM procrastinate_jobs j LEFT JOIN procrastinate_workers w ON w.id = j.worker_id "
            "WHERE j.status = 'doing' AND j.task_name = %s AND (j.worker_id IS NULL OR "
            "w.last_heartbeat < now() - make_interval(secs => %s))", (db.TASK, stalled_after)).fetchall()
        for (job_id,) in stalled:
            with conn.transaction():
                row = conn.execute(
                    "SELECT j.attempts FROM procrastinate_jobs j LEFT JOIN procrastinate_workers w "
                    "ON w.id = j.worker_id WHERE j.id = %s AND j.status = 'doing' AND (j.worker_id IS NULL OR "
                    "w.last_heartbeat < now() - make_interval(secs => %s)) FOR UPDATE OF j",
                    (job_id, stalled_after)).fetchone()
                if row is None:
                    continue
                if int(row[0]) < MAX_STALL_RETRIES:  # type: ignore[call-overload]
                    conn.execute("SELECT procrastinate_retry_job_v1(%s, now(), NULL, NULL, NULL)", (job_id,))
                    action = "retried"
                else:
                    conn.execute("SELECT procrastinate_finish_job_v1(%s, 'failed', false)", (job_id,))
                    action = "failed"
            done.append((int(job_id), action))  # type: ignore[call-overload]
    for job_id, action in done:
        sink = EventSink(url, job_id, -1)
        sink.worker(f"the worker running job {job_id} stopped answering (no heartbeat for {stalled_after:g}s): "
                    + ("retrying it on another worker" if action == "retried" else
                       "it stalled again, so the job failed"), EventKind.NOTICE)
        sink.close(timeout=5)
    return done


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def run(cfg: WorkerConfig, queues: list[str], concurrency: int, timing: Timing, *, once: bool = False) -> None:
    """Serve queues until SIGINT/SIGTERM (graceful: running builds finish; a second signal stops them)."""
    app = make_app(cfg.db_url)
    async with app.open_async():
        w = ResilientWorker(cfg.db_url, app=app, queues=queues, name=cfg.name, concurrency=concurrency, wait=not once,
                            fetch_job_polling_interval=timing.poll, abort_job_polling_interval=1.0,
                            update_heartbeat_interval=timing.heartbeat, stalled_worker_timeout=timing.stalled_after,
                            additional_context={"factory": cfg}, install_signal_handlers=True)
        await w.run()
